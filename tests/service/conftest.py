"""The build service as its own process on loopback (random port, temp state, token)."""

from __future__ import annotations

import os
import pty
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from imagebuild_nb.builders import BuildRequest, InMemoryContext
from imagebuild_nb.builders.remote import RemoteBuildClient
from tests.support.services import free_port, write_docker_config

SERVICE_SCRIPT = Path(sys.executable).parent / "jupyter-imagebuild"
# The local builder pinned to the Engine API (its cancel leaves containers to check); the
# host's default driver is tested apart.
DOCKER_API_RUNNER = (
    "--ImageBuildServiceApp.runner_class=imagebuild_nb.service.engine_runner.DockerApiRunner"
)


@dataclass
class ServiceProcess:
    root: Path
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    port: int = field(default_factory=free_port)
    options: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    script: Path = SERVICE_SCRIPT  # jupyter-server: the service embedded in a Jupyter Server
    # stdin a terminal, the service in a session of its own: how a Hub run from a terminal
    # starts its services. Otherwise no terminal, as under systemd or Kubernetes.
    on_a_terminal: bool = False
    process: subprocess.Popen[bytes] | None = None
    _terminal: int | None = None  # our end of its terminal
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def log_path(self) -> Path:
        return self.root / "service.log"

    def start(self) -> ServiceProcess:
        environ = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(self.root / "jupyter-config"),
            "JUPYTER_DATA_DIR": str(self.root / "jupyter-data"),
            "JUPYTER_RUNTIME_DIR": str(self.root / "jupyter-runtime"),
            **self.env,
        }
        command = [
            str(self.script),
            "--allow-root",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            f"--ImageBuildServiceApp.state_dir={self.state_dir}",
            "--ImageBuildServiceApp.keepalive_interval=1",
            *self.options,
        ]
        log = self.log_path.open("ab")
        if self._terminal is not None:  # the last run's
            os.close(self._terminal)
        leader, terminal = pty.openpty() if self.on_a_terminal else (None, None)
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL if terminal is None else terminal, stdout=log,
            stderr=log, env=environ, start_new_session=self.on_a_terminal)
        log.close()
        if terminal is not None:  # the child has its copy; the other end stays open meanwhile
            os.close(terminal)
        self._terminal = leader
        self.starts += 1
        deadline = time.monotonic() + 120  # generous: imports alone take 15 s on a loaded machine
        while True:
            try:
                response = httpx.get(f"{self.url}/imagebuild/api/health", headers=self.headers)
                if response.status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def stop(self, *, kill: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._terminal is not None:
            os.close(self._terminal)
            self._terminal = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=30)

    def client(self, **kwargs: object) -> RemoteBuildClient:
        return RemoteBuildClient(self.url, self.token, **kwargs)  # type: ignore[arg-type]


@contextmanager
def running_services(directory: Path) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(**kwargs: object) -> ServiceProcess:
        root = directory / f"service-{len(started)}"
        root.mkdir()
        service = ServiceProcess(root, **kwargs)  # type: ignore[arg-type]
        started.append(service)
        return service.start()

    try:
        yield start
    finally:
        for service in started:
            service.stop()


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start services (``start_service(options=(...), env={...})``); all stop at test end."""
    with running_services(tmp_path) as start:
        yield start


def _service_docker_config(directory: Path) -> Path:
    """A Docker config with the Basic-auth registry's credentials, for the service only."""
    from tests.support.services import AUTH_PASSWORD, AUTH_REGISTRY, AUTH_USER

    return write_docker_config(directory, {AUTH_REGISTRY: (AUTH_USER, AUTH_PASSWORD)})


def default_service_options(directory: Path) -> dict[str, object]:
    """What the ``service`` fixtures start with: the Engine-API runner, and a Docker config
    with the Basic-auth registry's credentials (in ``directory``)."""
    config = _service_docker_config(directory / "service-docker-config")
    return {"env": {"DOCKER_CONFIG": str(config)}, "options": (DOCKER_API_RUNNER,)}


@pytest.fixture
def service(start_service: Callable[..., ServiceProcess], tmp_path: Path) -> ServiceProcess:
    """A service of this test's own (tests that stop, kill or restart it)."""
    return start_service(**default_service_options(tmp_path))


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One service for a whole test module (starting one takes seconds on a loaded machine)."""
    directory = tmp_path_factory.mktemp("shared-service")
    with running_services(directory) as start:
        yield start(**default_service_options(directory))


def busybox_request(
    base: str, uri: str, run: str, *, files: dict[str, str | bytes] | None = None
) -> BuildRequest:
    """A Dockerfile on the busybox base with one RUN, which starts with a nonce so that the
    cache never hits (BuildKit keys a RUN's cache by its command, not by a LABEL above it)."""
    dockerfile = f"FROM {base}\nRUN : {uuid.uuid4().hex}; {run}\n"
    return BuildRequest(
        dockerfile=dockerfile,
        context=InMemoryContext({"Dockerfile": dockerfile, **(files or {})}),
        tags=(uri,),
        push=True,
    )


# RUN lines for builds that must be in flight while the test acts.
SLOW_RUN = "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); sleep 0.05; done"
