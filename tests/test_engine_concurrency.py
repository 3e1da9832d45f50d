"""ImageBuildEngine with calls at the same time: identical builds join one build (the engine's
single flight; fast tier with fake parts, and fifty real builds on the engine), unrelated builds
never wait for it, and ``wait=False`` returns at once."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from imagebuild_nb import Image
from imagebuild_nb.builders.base import BuildRequest
from imagebuild_nb.checkers import ExistenceResult
from imagebuild_nb.errors import ImageBuildError
from imagebuild_nb.events import BuildEvent
from tests.support.engine_parts import FakeChecker, fake_engine, target


class GatedChecker(FakeChecker):
    """Holds every existence check until released, so other calls can join the first."""

    def __init__(self, state: str, reason: str | None = None) -> None:
        super().__init__(state, reason)
        self.entered, self.release = threading.Event(), threading.Event()

    def check(self, ref: str, **kwargs: Any) -> ExistenceResult:
        self.entered.set()
        self.release.wait(30)
        return super().check(ref, **kwargs)


def _joined(key: tuple[str, str], count: int) -> None:
    from imagebuild_nb.engine import _flights

    deadline = time.monotonic() + 30
    while _flights.joiners(key) < count:
        assert time.monotonic() < deadline, "the calls never joined the first one"
        time.sleep(0.01)


def test_identical_concurrent_builds_run_once() -> None:
    engine, builder, _ = fake_engine("missing", delay=0.5)
    handles = [engine.build(target("sf"), wait=False) for _ in range(3)]
    threads = [threading.Thread(target=engine.build, args=(target("sf"),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(h) for h in handles}) == 1 and len(builder.requests) == 1
    assert engine.build(target("sf")).built and len(builder.requests) == 2  # later: new build


def test_calls_joining_a_failed_decision_each_make_it_themselves() -> None:
    engine, builder, _ = fake_engine("unknown", unknown_existence_policy="fail")
    checker = engine._checker = GatedChecker("unknown", reason="denied: 403")
    errors: list[BaseException] = []

    def call() -> None:
        try:
            engine.build(target("decide"))
        except ImageBuildError as error:
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    _joined(("local", target("decide").uri), 3)
    checker.release.set()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 4 and all("denied: 403" in str(e) for e in errors)
    assert builder.requests == [] and checker.calls == 4


def test_a_forced_call_rebuilds_what_the_call_it_joined_found() -> None:
    engine, builder, _ = fake_engine("exists")
    checker = engine._checker = GatedChecker("exists")
    found: list[Any] = []
    plain = threading.Thread(target=lambda: found.append(engine.build(target("forced"))))
    forced = threading.Thread(target=lambda: found.append(engine.build(target("forced"),
                                                                       force=True)))
    plain.start()
    assert checker.entered.wait(10)  # the plain call leads and is checking
    forced.start()
    _joined(("local", target("forced").uri), 1)
    checker.release.set()
    plain.join(10)
    forced.join(10)
    assert sorted(b.status for b in found) == ["built", "exists"]
    assert len(builder.requests) == 1 and builder.requests[0].no_cache


def test_wait_false_returns_at_once_even_inside_a_running_loop() -> None:
    engine, _, _ = fake_engine("missing", delay=3)

    async def cell() -> tuple[bool, str]:
        build = engine.build(target("async"), wait=False)
        running = not build.done  # it returned before the 3 s build ended
        await build
        return running, build.status

    assert asyncio.run(cell()) == (True, "built")


class _Gate:
    """An HTTP endpoint on loopback that answers only once opened. A RUN step that fetches it
    (host network) holds its build until the test opens the gate; it counts the fetches."""

    def __init__(self) -> None:
        import http.server

        self.opened = threading.Event()
        self.hits = 0
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                gate.hits += 1
                gate.opened.wait(300)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.opened.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.engine
def test_fifty_identical_concurrent_builds_are_one_engine_build_and_block_nobody(
        busybox_base: str, make_engine: Any, monkeypatch: pytest.MonkeyPatch,
        remove_images: list[str]) -> None:
    marker = uuid.uuid4().hex[:8]
    engine = make_engine("docker-api")  # host network: the RUN step reaches the gate
    existing = Image.from_base(busybox_base, name=f"test/existing-{marker}").with_commands(
        ["echo there > /there"])
    remove_images.append(engine.plan(existing).uri)  # docker-api: the build CA is in the tag
    assert engine.build(existing).built
    gate = _Gate()
    shared = Image.from_base(busybox_base, name=f"test/once-{marker}").with_commands(
        [f"wget -q -O /dev/null http://127.0.0.1:{gate.port}/{marker}"])
    remove_images.append(engine.plan(shared).uri)
    builder = __import__("imagebuild_nb.engine", fromlist=["get_builder"]).get_builder(
        "local", engine.settings)
    engine_builds: list[str] = []
    real_build = builder.build

    def counting_build(request: BuildRequest, cancel: threading.Event) -> Iterator[BuildEvent]:
        engine_builds.append(request.primary_tag)
        return real_build(request, cancel)

    monkeypatch.setattr(builder, "build", counting_build)
    results: list[Any] = []

    def build_shared() -> None:
        try:
            results.append(engine.build(shared))
        except BaseException as error:  # reported by the assertion below
            results.append(error)

    threads = [threading.Thread(target=build_shared, daemon=True) for _ in range(50)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 120
        while gate.hits == 0:  # the shared build is in its RUN step, held by the gate
            assert time.monotonic() < deadline, "the shared build never reached its RUN step"
            time.sleep(0.05)
        answered: list[Any] = []
        other = threading.Thread(target=lambda: answered.append(engine.build(existing)),
                                 daemon=True)
        other.start()
        other.join(30)  # generous; it needs milliseconds unless something blocks it
        assert answered and answered[0].found, "an unrelated build waited on the shared one"
        assert not gate.opened.is_set() and gate.hits == 1  # the shared build still runs
    finally:
        gate.close()
    for thread in threads:
        thread.join(120)
    # Every caller joined the one build (or, arriving after it ended, found its image).
    assert len(results) == 50, results
    assert all(getattr(r, "built", False) or getattr(r, "found", False) for r in results), results
    assert engine_builds == [engine.plan(shared).uri] and gate.hits == 1
    assert len({id(r) for r in results if r.built}) == 1
