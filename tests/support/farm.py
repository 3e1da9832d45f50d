"""Build-farm parts as separate processes for the tests: agents (``imagebuild-agent``) and helpers
to put contexts and builds into the farm's database directly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from imagebuild_nb.farm.affinity import family
from imagebuild_nb.farm.store import FarmStore
from imagebuild_nb.wire import BuildInfo
from tests.support.context_tar import context_tar
from tests.support.processes import stop_process


def submit(store: FarmStore, uri: str, dockerfile: str, *, push: bool = True,
           platform: str | None = None) -> BuildInfo:
    raw, digest = context_tar(dockerfile)
    store.put_context(digest, raw)
    info, _ = store.submit(uri=uri, context=digest, dedup_key=f"{uri}|{digest}", push=push,
                           family=family(uri), platform=platform)
    return info


def wait_for(store: FarmStore, build_id: str, predicate, timeout: float = 120) -> BuildInfo:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        info = store.get(build_id)
        assert info is not None
        if predicate(info):
            return info
        if time.monotonic() > deadline:
            raise AssertionError(f"build {build_id} never got there: {info}")
        time.sleep(0.1)


def event_dicts(store: FarmStore, build_id: str) -> list[dict[str, object]]:
    return [json.loads(text) for _, text in store.events(build_id)]


@dataclass
class AgentProcess:
    database_url: str
    engine: str
    root: Path
    slots: int = 2
    lease: float = 3.0
    steal_after: float = 3.0
    docker_host: str | None = None
    context_grace: float = 0.0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.root / f"agent-{self.engine}.log"

    def start(self) -> AgentProcess:
        command = [sys.executable, "-m", "imagebuild_nb.farm.agent",
                   "--database-url", self.database_url, "--engine", self.engine,
                   "--slots", str(self.slots), "--lease", str(self.lease),
                   "--steal-after", str(self.steal_after), "--network-mode", "host",
                   "--work-dir", str(self.root / "work"),
                   "--context-grace", str(self.context_grace)]
        env = dict(os.environ)
        if self.docker_host:
            command += ["--docker-host", self.docker_host]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process, 60)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]
