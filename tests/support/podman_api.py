"""podman's Docker-compatible API on a socket of the test's own (rootful, private storage).

``podman system service`` serves the Docker Engine API (1.41 in podman 4.3), so the project's
Engine-API driver and an ``imagebuild-agent --docker-host unix://...`` build through it. Its
registries.conf marks the loopback registry insecure (plain HTTP), as ENVIRONMENT.md says.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import stop_process
from tests.support.unix_ping import engine_answers


@dataclass
class PodmanApi:
    root: Path
    process: subprocess.Popen[bytes]

    @property
    def socket(self) -> Path:
        return self.root / "p.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def answers(self) -> bool:
        return engine_answers(self.socket)


def podman_command(root: Path) -> list[str]:
    return ["podman", "--root", str(root / "storage"), "--runroot", str(root / "run"),
            "--storage-driver", "overlay"]


@contextmanager
def podman_api(*, registries: tuple[str, ...] = (), images: tuple[str, ...] = ()
               ) -> Iterator[PodmanApi]:
    root = Path(tempfile.mkdtemp(prefix="ibp-", dir="/tmp"))  # short: a socket path
    conf = root / "registries.conf"
    conf.write_text("".join(f'[[registry]]\nlocation = "{registry}"\ninsecure = true\n'
                            for registry in registries))
    env = {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(conf)}
    for image in images:
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        subprocess.run([*podman_command(root), "load", "-q"], stdin=save.stdout, env=env,
                       check=True, capture_output=True)
        assert save.stdout is not None
        save.stdout.close()
        assert save.wait(60) == 0
    log = (root / "service.log").open("ab")
    process = subprocess.Popen(
        [*podman_command(root), "system", "service", "--time=0", f"unix://{root / 'p.sock'}"],
        stdout=log, stderr=log, env=env)
    log.close()
    api = PodmanApi(root, process)
    try:
        deadline = time.monotonic() + 60
        while not api.answers():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("podman system service did not start: "
                                   + (root / "service.log").read_text()[-2000:])
            time.sleep(0.2)
        yield api
    finally:
        stop_process(process, 30)
        subprocess.run([*podman_command(root), "system", "reset", "-f"], capture_output=True,
                       env=env, check=False)
        subprocess.run(["umount", "-R", str(root / "storage")], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
