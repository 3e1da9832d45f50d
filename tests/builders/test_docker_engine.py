"""Every wait on the engine is bounded: an engine socket that accepts and never answers gives a
clear error within the ping timeout (it used to hold ``build()`` for the client's 3600 s)."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagebuild_nb.builders import InMemoryContext
from imagebuild_nb.builders.buildkit_cli import BuildKitCliBuilder, Cli
from imagebuild_nb.builders.docker_api import DockerApiBuilder
from imagebuild_nb.builders import docker_engine
from imagebuild_nb.builders.target import BuildTarget
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.settings import Settings


@pytest.fixture
def wedged_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """DOCKER_HOST pointing at a socket that accepts every connection and never answers."""
    folder = Path(tempfile.mkdtemp(prefix="ibw-", dir="/tmp"))  # short: unix socket paths
    path = folder / "docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
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
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setattr(docker_engine, "PING_TIMEOUT", PING_TIMEOUT)
    try:
        yield f"unix://{path}"
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        server.close()
        for conn in held:
            conn.close()
        thread.join(5)
        path.unlink(missing_ok=True)
        folder.rmdir()


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

