"""A second dockerd of the test's own, to kill and restart without touching the shared engine.

The recipe of /work/shared/ENVIRONMENT.md ("A second dockerd"): its own data-root, a short
exec-root (unix socket paths are limited), its own socket and pidfile, and a bridge of its own
(never ``--bridge=none``, which deletes the host's docker0; never the default bridge).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import docker

from tests.support.processes import stop_process
from tests.support.unix_ping import engine_answers


@dataclass
class SecondEngine:
    data_root: Path
    exec_root: Path
    bridge: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def socket(self) -> Path:
        return self.exec_root / "d.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, version="auto", timeout=60)

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            ["dockerd", "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
             "--pidfile", str(self.exec_root / "d.pid"), "-H", self.host,
             "--iptables=false", "--ip6tables=false", f"--bridge={self.bridge}"],
            stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 60
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"second dockerd did not start: {self.log_tail()}")
            time.sleep(0.2)

    def answers(self) -> bool:
        return engine_answers(self.socket)

    def kill(self) -> None:
        """SIGKILL, as a crash would. Its containerd dies with it (parent-death signal) but may
        stay a zombie here (no reaping init): the pidfile would then make the next dockerd wait
        for a containerd that will never answer, so it goes. The RUN's shim lives on."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
        pidfile = self.exec_root / "containerd" / "containerd.pid"
        deadline = time.monotonic() + 10
        while pidfile.exists() and time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pidfile.read_text().strip()}/stat").read_text()
            except (OSError, ValueError):
                break
            if state.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                break
            time.sleep(0.1)
        pidfile.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process, 30)
        # The containerd it started, and shims of containers that outlived a kill: ours, by
        # our exec-root in their command line.
        found = subprocess.run(["pgrep", "-f", str(self.exec_root)], capture_output=True,
                               text=True).stdout.split()
        for pid in found:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ValueError, ProcessLookupError):
                pass
        subprocess.run(["umount", "-l", str(self.exec_root / "netns" / "default")],
                       capture_output=True, check=False)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


@contextmanager
def second_engine(workdir: Path, *, images: tuple[str, ...] = ()) -> Iterator[SecondEngine]:
    """A running second dockerd, with ``images`` copied from the shared engine."""
    tag = uuid.uuid4().hex[:6]
    engine = SecondEngine(
        data_root=workdir / "data", exec_root=Path(tempfile.mkdtemp(prefix="ibe-", dir="/tmp")),
        bridge=f"ibbr{tag}", log_path=workdir / "dockerd.log")
    engine.data_root.mkdir(parents=True)
    subnet = f"10.{200 + int(tag[:2], 16) % 50}.{int(tag[2:4], 16)}"
    subprocess.run(["ip", "link", "add", engine.bridge, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{subnet}.1/24", "dev", engine.bridge], check=True)
        subprocess.run(["ip", "link", "set", engine.bridge, "up"], check=True)
        engine.start()
        for image in images:
            save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
            subprocess.run(["docker", "-H", engine.host, "load", "-q"], stdin=save.stdout,
                           check=True, capture_output=True)
            assert save.stdout is not None
            save.stdout.close()
            assert save.wait(60) == 0
        yield engine
    finally:
        engine.stop()
        subprocess.run(["ip", "link", "delete", engine.bridge], check=False)
        shutil.rmtree(engine.exec_root, ignore_errors=True)
        subprocess.run(["umount", "-R", str(engine.data_root)], capture_output=True, check=False)
        shutil.rmtree(engine.data_root, ignore_errors=True)
