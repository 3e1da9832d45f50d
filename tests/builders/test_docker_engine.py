"""Every wait on the engine is bounded: an engine socket that accepts and never answers gives a
clear error within the ping timeout (it used to hold ``build()`` for the client's 3600 s)."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest
import requests

from imagebuild_nb.builders import InMemoryContext, docker_engine
from imagebuild_nb.builders.buildkit_cli import BuildKitCliBuilder, Cli
from imagebuild_nb.builders.docker_api import DockerApiBuilder
from imagebuild_nb.builders.target import BuildTarget
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.settings import Settings
from tests.support.services import BUSYBOX_IMAGE


@pytest.fixture
def wedged_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """DOCKER_HOST pointing at a socket that accepts every connection and never answers."""
    folder = Path(tempfile.mkdtemp(prefix="ibw-", dir="/tmp"))  # short: unix socket paths
    path = folder / "docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setattr(docker_engine, "PING_TIMEOUT", PING_TIMEOUT)
    try:
        with never_answering(server):
            yield f"unix://{path}"
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()


@contextlib.contextmanager
def never_answering(server: socket.socket) -> Iterator[None]:
    """Accept every connection to the listening ``server`` and answer nothing, until the end."""
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)  # read nothing, answer nothing

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        server.close()
        for conn in held:
            conn.close()
        thread.join(5)


PING_TIMEOUT = 3.0  # the shipped 10 s, shortened to keep the suite quick
# Generous on a loaded machine, far below the 3600 s the client waited before.
BOUND = PING_TIMEOUT * 3 + 10


@pytest.mark.timeout(BOUND * 2 + 30)
@pytest.mark.parametrize("make", [DockerApiBuilder,
                                  lambda: BuildKitCliBuilder(Cli("/usr/bin/docker", "classic"))],
                         ids=["docker-api", "buildkit"])
def test_a_wedged_engine_socket_is_a_clear_error_within_the_ping_timeout(
        wedged_engine: str, make) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    with pytest.raises(BuilderUnavailableError) as caught:
        make().ensure_available()
    assert time.monotonic() - started < BOUND
    assert wedged_engine in str(caught.value) and "does not answer" in str(caught.value)
    assert caught.value.hint and "DOCKER_HOST" in caught.value.hint


@pytest.mark.timeout(BOUND * 2 + 30)
def test_build_against_a_wedged_engine_fails_with_the_reason_within_the_timeout(
        wedged_engine: str) -> None:
    target = BuildTarget(uri=f"imagebuild-test/wedged:{int(time.time())}",
                         dockerfiles={"plain": "FROM scratch\n"}, context=InMemoryContext({}))
    engine = ImageBuildEngine(Settings(local_driver="docker-api"))
    started = time.monotonic()
    with pytest.raises(BuilderUnavailableError, match="does not answer"):
        engine.build(target)
    assert time.monotonic() - started < BOUND



@pytest.fixture
def stalled_registry() -> Iterator[str]:
    """host:port of a registry that accepts connections and never answers (a wedged proxy)."""
    server = socket.create_server(("127.0.0.1", 0))
    with never_answering(server):
        yield f"127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.engine
def test_a_push_to_a_registry_that_never_answers_is_a_failed_push_not_a_crash(
        stalled_registry: str):
    tag = f"{stalled_registry}/stalled/app:1"
    client = docker_engine.connect(timeout=3.0)  # the shipped 120 s, shortened
    client.tag(BUSYBOX_IMAGE, f"{stalled_registry}/stalled/app", "1")
    try:
        events, pushing = [], docker_engine.push(client, tag, threading.Event())
        started = time.monotonic()
        with pytest.raises(StopIteration) as ended:
            while True:
                events.append(next(pushing))
        assert ended.value.value is None  # no digest
        failure = events[-1]
        assert failure.kind == "failed" and failure.step == "push", events
        assert f"push of {tag} failed: the Docker engine sent nothing for 3 s" in failure.message
        assert stalled_registry in failure.message
        assert time.monotonic() - started < 60
    finally:
        client.remove_image(tag)
        client.close()


class _RemovalAlreadyInProgress:
    """The real engine, but removing a container answers what dockerd says while it removes
    that container itself (a cancelled legacy build's forcerm): 409 "removal ... already in
    progress", until its own removal, ``after`` seconds on (None: never), is done."""

    def __init__(self, client: docker.APIClient, after: float | None) -> None:
        self._client, self._after = client, after
        self._removed: dict[str, threading.Event] = {}  # set once the engine's removal is done

    def remove_container(self, container_id: str, force: bool = False) -> None:
        if container_id not in self._removed:
            self._removed[container_id] = threading.Event()
            if self._after is not None:
                threading.Thread(target=self._engine_removes, args=(container_id,)).start()
        if not self._removed[container_id].is_set():
            response = requests.Response()
            response.status_code = 409
            raise docker.errors.APIError("Conflict", response=response, explanation=(
                f"removal of container {container_id[:12]} is already in progress"))
        self._client.remove_container(container_id, force=force)  # 404 now: it is gone

    def _engine_removes(self, container_id: str) -> None:
        time.sleep(self._after or 0)
        self._client.remove_container(container_id, force=True)
        self._removed[container_id].set()


@pytest.fixture
def sleeping_container() -> Iterator[tuple[docker.APIClient, str]]:
    client = docker_engine.connect(timeout=30)
    container = client.create_container(BUSYBOX_IMAGE, "sleep 60")["Id"]
    client.start(container)
    try:
        yield client, container
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            client.remove_container(container, force=True)
        client.close()


@pytest.mark.engine
def test_removing_a_container_the_engine_is_already_removing_waits_until_it_is_gone(
        sleeping_container: tuple[docker.APIClient, str]) -> None:
    client, container = sleeping_container
    assert docker_engine.remove_containers(_RemovalAlreadyInProgress(client, after=1.0),
                                           [container])
    assert not client.containers(all=True, filters={"id": container})


@pytest.mark.engine
def test_a_removal_that_never_ends_is_reported_after_the_timeout(
        sleeping_container: tuple[docker.APIClient, str]) -> None:
    client, container = sleeping_container
    started = time.monotonic()
    assert not docker_engine.remove_containers(_RemovalAlreadyInProgress(client, after=None),
                                               [container], timeout=1.0)
    assert time.monotonic() - started < 30  # not waiting on forever
