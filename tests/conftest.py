"""Fixtures for the real services: Docker engine, registries, base images, isolated configs."""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.support.services import (
    AUTH_PASSWORD,
    AUTH_REGISTRY,
    AUTH_USER,
    BUSYBOX_IMAGE,
    DEBIAN_PYTHON_IMAGE,
    MIRRORED_BUSYBOX,
    MIRRORED_PYTHON_BASE,
    PLAIN_REGISTRY,
    SETUP_HINT,
    Registry,
    throwaway_registry,
    write_docker_config,
)


def pytest_configure(config: pytest.Config) -> None:
    # A script's background job starts with SIGINT ignored (scripts/test runs a tier so), and
    # every process the tests start would inherit that: the Hub's SIGINT to its services and a
    # build's SIGINT to the docker CLI would do nothing. Processes start as under a shell.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """The real engine. Fails (never skips) when it does not answer."""
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException as error:
        pytest.fail(f"the Docker engine does not answer ({error}); {SETUP_HINT}")
    yield client
    client.close()


def _running(registry: Registry) -> Registry:
    if not registry.answers():
        pytest.fail(f"registry {registry.host} does not answer; {SETUP_HINT}")
    return registry


@pytest.fixture(scope="session")
def plain_registry() -> Registry:
    return _running(Registry(PLAIN_REGISTRY))


@pytest.fixture(scope="session")
def auth_registry() -> Registry:
    return _running(Registry(AUTH_REGISTRY, AUTH_USER, AUTH_PASSWORD))


@pytest.fixture
def make_registry(tmp_path: Path) -> Iterator[Callable[..., Registry]]:
    """Start throwaway registries (own port, own storage) that stop when the test ends."""
    from contextlib import ExitStack

    with ExitStack() as stack:

        def start(*, credentials: tuple[str, str] | None = None,
                  extra_config: str = "") -> Registry:
            workdir = tmp_path / f"registry-{uuid.uuid4().hex[:8]}"
            return stack.enter_context(
                throwaway_registry(workdir, credentials=credentials, extra_config=extra_config)
            )

        yield start


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Point DOCKER_CONFIG at a temp dir holding the given credentials:
    ``docker_config({host: (u, p)})``."""

    def write(auths: dict[str, tuple[str, str]]) -> Path:
        directory = write_docker_config(tmp_path / f"docker-config-{uuid.uuid4().hex[:6]}", auths)
        monkeypatch.setenv("DOCKER_CONFIG", str(directory))
        return directory

    empty = write_docker_config(tmp_path / "docker-config-empty", {})
    monkeypatch.setenv("DOCKER_CONFIG", str(empty))
    return write


@pytest.fixture(scope="session")
def python_base(docker_client: docker.DockerClient, plain_registry: Registry) -> str:
    """The Debian bookworm + python3 base, as the mirrored default base in the plain registry."""
    _require_image(docker_client, DEBIAN_PYTHON_IMAGE)
    repository, tag = MIRRORED_PYTHON_BASE.split("/", 1)[1].rsplit(":", 1)
    if plain_registry.manifest_digest(repository, tag) is None:
        pytest.fail(f"{MIRRORED_PYTHON_BASE} is not in the registry; run scripts/base-images.sh")
    return MIRRORED_PYTHON_BASE


@pytest.fixture(scope="session")
def busybox_base(docker_client: docker.DockerClient, plain_registry: Registry) -> str:
    _require_image(docker_client, BUSYBOX_IMAGE)
    return MIRRORED_BUSYBOX


def _require_image(client: docker.DockerClient, name: str) -> None:
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        pytest.fail(f"base image {name} is missing from the engine; run scripts/base-images.sh")


@pytest.fixture(scope="session")
def ca_bundle() -> Path:
    """The host's CA bundle: builds need it to reach PyPI/Debian through the TLS-inspecting
    proxy."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.fail("no CA bundle found (SSL_CERT_FILE or /etc/ssl/certs/ca-certificates.crt)")


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A repository name no other test uses: ``test/<test-name>-<random>``."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"test/{slug}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def remove_images(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Tests append image tags they create; they are removed from the engine afterwards."""
    created: list[str] = []
    yield created
    for name in created:
        try:
            docker_client.images.remove(name, force=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture
def make_engine(ca_bundle: Path) -> Iterator[Callable[[str], object]]:
    """Real engines for one test, by driver, closed afterwards (their checkers hold registry
    connections); settings from tests/support/engine_parts.py."""
    from imagebuild_nb.engine import ImageBuildEngine
    from tests.support.engine_parts import real_settings

    engines: list[ImageBuildEngine] = []

    def make(driver: str) -> ImageBuildEngine:
        engines.append(ImageBuildEngine(real_settings(driver, ca_bundle, "localhost:5001")))
        return engines[-1]

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture(scope="session", autouse=True)
def release_process_wide_state() -> Iterator[None]:
    """At the end, close what lives for the process (the default engine, cached builders,
    widgets), so nothing is left to the interpreter's exit (ResourceWarnings, widget __del__)."""
    yield
    import sys

    from imagebuild_nb.builders.select import close_builders
    from imagebuild_nb.engine import ImageBuildEngine

    close_builders()
    if ImageBuildEngine._default is not None:
        ImageBuildEngine._default.close()
    if "ipywidgets" in sys.modules:
        sys.modules["ipywidgets"].Widget.close_all()
