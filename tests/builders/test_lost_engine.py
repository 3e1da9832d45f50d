"""An engine killed mid-build is "lost the Docker engine" (BuilderUnavailableError with a hint),
not a crash with a ProtocolError; what it leaves behind goes at the next start.

Against a second dockerd this test starts itself (the shared engine is never touched).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from imagebuild_nb.builders import BuildRequest, InMemoryContext
from imagebuild_nb.builders.base import Builder
from imagebuild_nb.builders.buildkit_cli import BuildKitCliBuilder, find_cli
from imagebuild_nb.builders.docker_api import DockerApiBuilder
from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.events import BuildEvent, LogLine
from tests.support.second_engine import SecondEngine, second_engine
from tests.support.services import MIRRORED_BUSYBOX, containers_with

pytestmark = [pytest.mark.engine, pytest.mark.slow]
DRIVERS: dict[str, Callable[[], Builder]] = {
    "docker-api": DockerApiBuilder,
    "buildkit": lambda: BuildKitCliBuilder(find_cli("docker")),
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory,
           docker_client) -> Iterator[SecondEngine]:  # type: ignore[no-untyped-def]
    with second_engine(tmp_path_factory.mktemp("second-engine"),
                       images=(MIRRORED_BUSYBOX,)) as running:
        yield running


# docker-py leaks the socket of a connection attempt to a dead engine (the product lets it go
# quietly, but a leak can also surface at a garbage collection of pytest's choosing).
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning")
@pytest.mark.timeout(300)
@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_an_engine_killed_mid_build_is_lost_the_engine_and_its_leftovers_go_at_next_start(
        driver: str, engine: SecondEngine, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", engine.host)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    marker = uuid.uuid4().hex
    dockerfile = f"FROM {MIRRORED_BUSYBOX}\nRUN echo started-$((6*7)) {marker} && sleep 60\n"
    request = BuildRequest(dockerfile=dockerfile,
                           context=InMemoryContext({"Dockerfile": dockerfile}),
                           tags=(f"imagebuild-test/lost:{marker[:8]}",), network_mode="host",
                           no_cache=True)
    builder = DRIVERS[driver]()
    request_builder_close = getattr(builder, "close", lambda: None)
    builder.ensure_available()
    events: list[BuildEvent] = []
    outcome: list[BaseException] = []
    started = threading.Event()

    def run() -> None:
        try:
            for event in builder.build(request, threading.Event()):
                events.append(event)
                if isinstance(event, LogLine) and event.text.startswith("started-42"):
                    started.set()
        except BaseException as error:  # what the build thread of ImageBuild would see
            outcome.append(error)
        finally:
            started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(120), "the RUN did not start"
    engine.kill()
    killed = time.monotonic()
    thread.join(90)
    assert not thread.is_alive(), "the build did not notice that its engine died"
    assert time.monotonic() - killed < 60
    assert outcome, f"no error raised; the build ended with {events[-1:]}"
    error = outcome[0]
    assert isinstance(error, BuilderUnavailableError), repr(error)
    assert "lost the Docker engine" in str(error) and engine.host in str(error)
    assert error.hint and "restarted" in error.hint

    # The engine comes back (its RUN container Exited, as dockerd leaves it after a crash);
    # the next builder to start removes what the lost build left.
    engine.start()
    fresh = DRIVERS[driver]()
    try:
        fresh.ensure_available()
        with closing(engine.client()) as client:
            assert not containers_with(client, marker)
            assert not client.images.list(name=request.primary_tag)
    finally:
        getattr(fresh, "close", lambda: None)()
        request_builder_close()
