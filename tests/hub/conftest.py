"""One real JupyterHub for the package: users alice and bob (each with a server and a kernel),
carol (granted the operator's build-admin scope by the recipe) and the Hub admin "admin".

The build service joins it as the Hub-managed service "imagebuild" through the documented
recipe (``imagebuild_nb.service.hub.configure_hub``), with per-user limits; a second one,
"imagebuild-fair", has one build slot and no per-user limit, for the fairness test.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import pytest

from imagebuild_nb.builders import BuildRequest
from imagebuild_nb.builders.remote import RemoteBuildClient
from imagebuild_nb.wire import TERMINAL_STATUSES
from tests.service.conftest import busybox_request
from tests.support.http_gate import Gate
from tests.support.jupyterhub import Hub
from tests.support.kernel_ws import Kernel
from tests.support.processes import stop_process
from tests.support.services import (
    MIRRORED_BUSYBOX,
    PLAIN_REGISTRY,
    free_port,
    remove_images_tagged,
)

USERS = ("alice", "bob", "carol", "admin")
ADMINS = ("admin",)
BUILD_ADMIN = "carol"
MAX_BUILDS_PER_USER = 2
MAX_CONCURRENT_BUILDS = 3
EXTERNAL = "imagebuild-ext"
EXTERNAL_TOKEN = secrets.token_hex(24)


@dataclass(frozen=True)
class BuildService:
    """A Hub-managed build service: its internal URL (what user servers are told) and the
    public one behind the Hub's proxy (what browsers open)."""

    name: str
    internal_url: str
    hub_url: str

    @property
    def base(self) -> str:
        """The Jupyter Server base URL of the service (its API is under ``/imagebuild/api``)."""
        return f"{self.internal_url}/services/{self.name}"

    @property
    def public_base(self) -> str:
        return f"{self.hub_url}/services/{self.name}"

    def client(self, token: str) -> RemoteBuildClient:
        return RemoteBuildClient(self.base, token)

    def http(self, token: str, *, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"token {token}"},
                            timeout=timeout)


def _service_recipe(root: Path, name: str, url: str, args: list[str],
                    build_admins: tuple[str, ...]) -> str:
    """The recipe's call, as an operator writes it in jupyterhub_config.py."""
    state = root / name
    environment = {
        # The embedded default of this machine (scripts/embedded-env.sh: host networking for
        # RUN steps, bases through the local mirror, the host's CA bundle): the service's
        # settings, never the user servers'.
        **{key: value for key, value in os.environ.items() if key.startswith("IMAGEBUILD_NB_")},
        "JUPYTER_CONFIG_DIR": str(state / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(state / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(state / "jupyter-runtime"),
    }
    service_args = [
        "--ServerApp.allow_root=True",  # the Hub runs it as this (root) user
        f"--ImageBuildServiceApp.state_dir={state / 'state'}",
        "--ImageBuildServiceApp.keepalive_interval=1",
        *args,
    ]
    return (f"configure_hub(c, name={name!r}, url={url!r}, service_args={service_args!r},\n"
            f"              environment={environment!r}, build_admins={list(build_admins)!r})\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[pytest.TestReport]:
    """A failing test shows the end of the Hub's log (the Hub's, the services' and the user
    servers' lines) and the state and log of the builds it submitted, once."""
    report: pytest.TestReport = yield
    hub = getattr(item, "funcargs", {}).get("hub")
    if report.failed and isinstance(hub, Hub) and not item.stash.get(_REPORTED, False):
        item.stash[_REPORTED] = True
        lines = hub.log_path.read_text(errors="replace").splitlines()[-HUB_LOG_LINES:]
        report.sections.append((f"JupyterHub log (last {HUB_LOG_LINES} lines)", "\n".join(lines)))
        for service, token, build_id in _SUBMITTED:
            report.sections.append((f"build {build_id} on {service.name}",
                                    _build_state(service, token, build_id)))
    if report.when == "teardown":
        _SUBMITTED.clear()
    return report


_REPORTED = pytest.StashKey[bool]()
HUB_LOG_LINES = 80
# The builds the running test submitted (service, token, id): a failing test shows their state.
_SUBMITTED: list[tuple[BuildService, str, str]] = []


def _build_state(service: BuildService, token: str, build_id: str) -> str:
    try:  # briefly: a stuck service is a usual reason for the failure being reported
        with service.http(token, timeout=5) as http:
            record = http.get(f"/imagebuild/api/builds/{build_id}").json()
            log = http.get(f"/imagebuild/api/builds/{build_id}/log").text.splitlines()[-15:]
    except (httpx.HTTPError, ValueError) as error:
        return f"could not read it: {error!r}"
    fields = {key: record.get(key) for key in ("status", "owner", "created", "started",
                                               "finished", "error")}
    return "\n".join([json.dumps(fields), *log])


@pytest.fixture(scope="package")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    root = tmp_path_factory.mktemp("jupyterhub")
    urls = {name: f"http://127.0.0.1:{free_port()}" for name in ("imagebuild", "imagebuild-fair")}
    urls[EXTERNAL] = f"http://127.0.0.1:{free_port()}"
    recipe = "\n".join([
        "from imagebuild_nb.service.hub import configure_hub",
        # The Kubernetes form (operator-guide.md): declared to the Hub, started by someone else.
        f"configure_hub(c, name={EXTERNAL!r}, url={urls[EXTERNAL]!r}, command=(),"
        f" api_token={EXTERNAL_TOKEN!r})",
        _service_recipe(root, "imagebuild", urls["imagebuild"], [
            f"--ImageBuildServiceApp.max_concurrent_builds={MAX_CONCURRENT_BUILDS}",
            f"--ImageBuildServiceApp.max_builds_per_user={MAX_BUILDS_PER_USER}",
        ], build_admins=(BUILD_ADMIN,)),
        _service_recipe(root, "imagebuild-fair", urls["imagebuild-fair"], [
            "--ImageBuildServiceApp.max_concurrent_builds=1",
        ], build_admins=()),
    ])
    hub = Hub(root, users=USERS, admins=ADMINS, extra_config=recipe,
              services=urls).start()
    try:
        yield hub
    finally:
        left = hub.stop()
        assert not left, f"processes of the Hub outlived it (killed now): {left}"


@pytest.fixture(scope="package")
def build_service(hub: Hub) -> BuildService:
    return BuildService("imagebuild", hub.services["imagebuild"], hub.url)


@pytest.fixture(scope="package")
def external_service(hub: Hub, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[BuildService]:
    """The service as an external Hub service: started here with exactly the environment the
    operator guide lists for a Kubernetes pod (what a Hub-managed service gets from the Hub)."""
    root = tmp_path_factory.mktemp(EXTERNAL)
    url = hub.services[EXTERNAL]
    prefix = f"/services/{EXTERNAL}/"
    environment = {
        **{key: value for key, value in os.environ.items()
           if key.startswith("IMAGEBUILD_NB_") or key in ("PATH", "HOME", "DOCKER_HOST")},
        "JUPYTERHUB_SERVICE_NAME": EXTERNAL,
        "JUPYTERHUB_SERVICE_URL": url,
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{hub.hub_port}/hub/api",
        "JUPYTERHUB_API_TOKEN": EXTERNAL_TOKEN,
        "JUPYTERHUB_CLIENT_ID": f"service-{EXTERNAL}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "JUPYTER_DATA_DIR": str(root / "data"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
    }
    log = (root / "service.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "imagebuild_nb.service", "--ServerApp.allow_root=True",
         f"--ImageBuildServiceApp.state_dir={root / 'state'}"],
        stdout=log, stderr=log, env=environment)
    log.close()
    service = BuildService(EXTERNAL, url, hub.url)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:  # any HTTP answer: it listens (every route needs a Hub user)
                httpx.get(f"{service.base}/imagebuild/api/health", timeout=5)
                break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the external service did not start:\n"
                                   f"{(root / 'service.log').read_text()}")
            time.sleep(0.2)
        yield service
    finally:
        stop_process(process, 30)


@pytest.fixture(scope="package")
def fair_service(hub: Hub) -> BuildService:
    return BuildService("imagebuild-fair", hub.services["imagebuild-fair"], hub.url)


def _kernel(hub: Hub, user: str) -> Iterator[Kernel]:
    kernel = Kernel(hub.start_server(user), hub.token(user)).start()
    yield kernel
    kernel.shutdown()


@pytest.fixture(scope="package")
def alice_kernel(hub: Hub) -> Iterator[Kernel]:
    """A kernel of alice's single-user server, reached through the Hub's proxy."""
    yield from _kernel(hub, "alice")


@pytest.fixture(scope="package")
def bob_kernel(hub: Hub) -> Iterator[Kernel]:
    yield from _kernel(hub, "bob")


@pytest.fixture
def gate() -> Iterator[Gate]:
    """Holds builds in their RUN step; opened (every held build finishes) at the test's end."""
    gate = Gate()
    yield gate
    gate.close()


RUN = uuid.uuid4().hex[:6]  # in every image name of this run: removed from the engine after it


def unique_uri(label: str) -> str:
    return f"{PLAIN_REGISTRY}/test/hub-{RUN}-{label}-{uuid.uuid4().hex[:8]}:latest"


@pytest.fixture(scope="package", autouse=True)
def remove_built_images(docker_client: docker.DockerClient) -> Iterator[None]:
    """The service builds in the shared engine: its images of this run go when the package ends
    (they stay in the registry, under unique names)."""
    yield
    prefix = f"{PLAIN_REGISTRY}/test/hub-{RUN}-"
    remove_images_tagged(docker_client, lambda tag: tag.startswith(prefix))


def gated_request(gate: Gate, key: str, *, first: str = "") -> BuildRequest:
    """A busybox build whose RUN step (after printing ``first``) waits at the gate under
    ``key``; pushed when done."""
    run = f"echo {first}; {gate.run_line(key)}" if first else gate.run_line(key)
    return busybox_request(MIRRORED_BUSYBOX, unique_uri(key), run)  # never cached: it knocks


def submit(service: BuildService, token: str, request: object) -> str:
    """Submit as the token's user through the project's own client; the build's id."""
    with service.client(token) as client:
        build_id = client.submit_request(request).id  # type: ignore[arg-type]
    _SUBMITTED.append((service, token, build_id))
    return build_id


def wait_ended(service: BuildService, token: str, build_id: str, *, timeout: float = 300) -> str:
    """Poll the record (as a user allowed to read it) until the build ended; its status."""
    deadline = time.monotonic() + timeout
    with service.http(token) as http:
        while True:
            status = str(http.get(f"/imagebuild/api/builds/{build_id}").json()["status"])
            if status in TERMINAL_STATUSES:
                return status
            assert time.monotonic() < deadline, f"build {build_id} still {status}"
            time.sleep(0.3)
