"""ImageBuildEngine: the build() rules (fast tier, fake builder and checker) and identical
concurrent builds. Real builds through both drivers: test_engine_drivers.py."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagebuild_nb import Image
from imagebuild_nb.builders.base import BuildRequest
from imagebuild_nb.checkers import ExistenceResult
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.errors import BuilderUnavailableError, ImageBuildError
from imagebuild_nb.events import BuildEvent, BuildStarted
from imagebuild_nb.settings import Settings
from tests.support.engine_parts import DRIVERS, FakeBuilder, FakeChecker, fake_engine, target


def test_existing_image_is_returned_without_a_build() -> None:
    engine, builder, _ = fake_engine("exists")
    build = engine.build(target())
    assert build.found and not build.built and build.digest == "sha256:" + "2" * 64
    assert builder.requests == []


def test_missing_image_is_built_and_events_say_why() -> None:
    engine, builder, _ = fake_engine("missing")
    build = engine.build(target())
    assert build.built and len(builder.requests) == 1 and not builder.requests[0].no_cache
    started = build.events[0]
    assert isinstance(started, BuildStarted) and started.reason == "missing"
    assert [e.seq for e in build.events] == list(range(1, len(build.events) + 1))


def test_latest_is_always_built_and_force_skips_the_check() -> None:
    engine, builder, checker = fake_engine("exists")
    assert engine.build(target("latest")).built
    forced = engine.build(target(), force=True)
    assert forced.built and builder.requests[-1].no_cache and checker.calls == 0


def test_unknown_existence_builds_and_says_why_or_fails_when_strict() -> None:
    engine, builder, _ = fake_engine("unknown", reason="unreachable: refused")
    build = engine.build(target())
    assert build.built and "unreachable: refused" in build.reason
    strict, builder, _ = fake_engine("unknown", reason="denied: 403",
                                     unknown_existence_policy="fail")
    with pytest.raises(ImageBuildError, match="denied: 403"):
        strict.build(target())
    assert builder.requests == []


def test_image_exists_keeps_the_seed_contract() -> None:
    for state, expected in (("exists", True), ("missing", False), ("unknown", True)):
        engine, _, _ = fake_engine(state, reason="timed out")
        assert (engine.image_exists(target()) is not None) is expected
    engine, _, checker = fake_engine("missing")
    assert engine.image_exists(target("latest")) == "localhost:5001/fast/demo:latest"
    assert checker.calls == 0


def test_dry_run_renders_without_touching_anything() -> None:
    engine, builder, checker = fake_engine("missing")
    build = engine.build(target(), dry_run=True)
    assert build.status == "dry-run" and build.dry_run is not None
    assert build.dry_run.command == "fake build localhost:5001/fast/demo:1"
    assert build.dry_run.context_files == ("Dockerfile",) and build.dry_run.push
    assert builder.requests == [] and checker.calls == 0


def test_class_level_calls_use_the_configured_default(monkeypatch: pytest.MonkeyPatch) -> None:
    builder = FakeBuilder()
    monkeypatch.setattr("imagebuild_nb.engine.get_builder", lambda name, s: builder)
    monkeypatch.setattr(ImageBuildEngine, "_default", None)
    engine = ImageBuildEngine.configure(network_mode="host")
    engine._checker = FakeChecker("missing")
    assert ImageBuildEngine.build(target()).built
    assert builder.requests[0].network_mode == "host"


def test_images_without_a_registry_go_to_the_configured_one() -> None:
    engine, builder, checker = fake_engine("missing", registry="localhost:5001")
    image = Image.from_base("localhost:5001/library/busybox:latest", name="fast/placed"
                            ).with_commands(["true"])
    assert image.registry is None
    build = engine.build(image)
    assert build.uri == f"localhost:5001/fast/placed:{image.tag}"
    assert builder.requests[0].push and builder.requests[0].primary_tag == build.uri
    elsewhere = engine.build(image.with_registry("localhost:5002"), dry_run=True)
    assert elsewhere.uri.startswith("localhost:5002/")  # an image's own registry wins


@pytest.mark.parametrize("driver", DRIVERS)
def test_stopped_engine_gives_the_clear_error_first(
        driver: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    engine = ImageBuildEngine(Settings(local_driver=driver))  # type: ignore[arg-type]
    checker = FakeChecker("missing")
    engine._checker = checker
    with pytest.raises(BuilderUnavailableError) as caught:
        engine.build(target())
    text = str(caught.value)
    assert "does not answer" in text and "DOCKER_HOST" in text and "remote" in text
    assert checker.calls == 0


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
    engine, _, _ = fake_engine("missing", delay=0.3)

    async def cell() -> tuple[float, str]:
        started = time.monotonic()
        build = engine.build(target("async"), wait=False)
        elapsed = time.monotonic() - started
        await build
        return elapsed, build.status

    elapsed, status = asyncio.run(cell())
    assert elapsed < 0.2 and status == "built"


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
