"""The ImageBuild handle: events, replay, subscription, waiting, cancelling, reprs (fast tier)."""

from __future__ import annotations

import _thread
import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from imagebuild_nb.build import DryRun, ImageBuild
from imagebuild_nb.errors import BuildCancelledError, BuildFailedError
from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    LogLine,
    StepStarted,
)

URI = "localhost:5001/demo:1"


def _script(*events: BuildEvent, pause: float = 0.0):  # type: ignore[no-untyped-def]
    def run(cancel: threading.Event) -> Iterator[BuildEvent]:
        for event in events:
            if cancel.wait(pause):
                yield BuildCancelled(message="stopped")
                return
            yield event

    return run


def test_events_are_numbered_and_replayed_to_late_subscribers() -> None:
    build = ImageBuild(URI, builder="local", driver="fake").start(_script(
        StepStarted(number=1, total=2, instruction="RUN a"), LogLine(text="x"),
        BuildFinished(uri=URI, digest="sha256:ab", image_id="sha256:cd")))
    build.wait(5)
    seen: list[BuildEvent] = []
    unsubscribe = build.subscribe(seen.append)
    assert [e.seq for e in seen] == [1, 2, 3] and build.digest == "sha256:ab"
    assert [e.kind for e in build] == ["step", "log", "finished"]
    assert build.built and build.duration is not None and build.logs == "x"
    unsubscribe()


def test_follow_yields_idle_ticks_while_nothing_happens() -> None:
    build = ImageBuild(URI, builder="local").start(_script(
        LogLine(text="a"), BuildFinished(uri=URI), pause=0.3))
    items = list(build.follow(idle_tick=0.05))
    assert None in items and [e.kind for e in items if e is not None] == ["log", "finished"]


def test_a_failed_build_raises_with_step_exit_code_and_tail_and_keeps_the_log() -> None:
    build = ImageBuild(URI, builder="local").start(_script(
        LogLine(text="compiling"), LogLine(text="boom"),
        BuildFailed(message="exit 2", step="step 3: RUN make", exit_code=2,
                    lines=("compiling", "boom"))))
    with pytest.raises(BuildFailedError) as caught:
        build.wait(5)
    assert caught.value.step == "step 3: RUN make" and caught.value.exit_code == 2
    assert caught.value.log_tail == ["compiling", "boom"] and "boom" in str(caught.value)
    assert build.logs == "compiling\nboom"
    assert build.wait(raise_on_error=False).status == "failed"
    assert "failed" in build._repr_html_() and "boom" in build._repr_html_()


def test_cancel_ends_the_build_as_cancelled() -> None:
    build = ImageBuild(URI, builder="local").start(_script(LogLine(text="a"), pause=30))
    build.cancel()
    with pytest.raises(BuildCancelledError):
        build.wait(5)
    assert build.status == "cancelled"


def test_wait_times_out_without_stopping_the_build() -> None:
    build = ImageBuild(URI, builder="local").start(_script(BuildFinished(uri=URI), pause=0.5))
    with pytest.raises(TimeoutError):
        build.wait(0.05)
    assert build.wait(5).built


def test_keyboard_interrupt_during_wait_cancels_then_propagates() -> None:
    build = ImageBuild(URI, builder="local").start(_script(BuildFinished(uri=URI), pause=30))
    threading.Timer(0.2, _thread.interrupt_main).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        build.wait()
    assert build.status == "cancelled" and time.monotonic() - started < 5


def test_a_crashing_builder_fails_the_build_instead_of_hanging() -> None:
    def run(cancel: threading.Event) -> Iterator[BuildEvent]:
        yield LogLine(text="a")
        raise RuntimeError("bug")

    build = ImageBuild(URI, builder="local").start(run)
    assert build.wait(5, raise_on_error=False).status == "failed"


def test_a_failing_subscriber_does_not_break_the_build() -> None:
    build = ImageBuild(URI, builder="local")
    build.subscribe(lambda event: 1 / 0)
    build.start(_script(BuildFinished(uri=URI)))
    assert build.wait(5).built


def test_await_inside_a_running_loop() -> None:
    async def cell() -> str:
        build = ImageBuild(URI, builder="local").start(_script(BuildFinished(uri=URI), pause=0.1))
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.ensure_future(ticker())
        await build
        task.cancel()
        assert ticks > 3  # the loop kept running while we waited
        return build.status

    assert asyncio.run(cell()) == "built"


def test_outcomes_without_a_build_and_their_reprs() -> None:
    found = ImageBuild.found_existing(URI, digest="sha256:ab", builder="local")
    assert found.found and found.done and "exists" in repr(found)
    plan = DryRun(uri=URI, dockerfile="FROM busybox\n", context_files=("Dockerfile",),
                  command="docker build ...", builder="local", driver="buildkit", push=True)
    dry = ImageBuild.planned(plan)
    assert dry.status == "dry-run" and dry.dry_run is plan
    assert "FROM busybox" in str(dry) and "docker build" in dry._repr_html_()
    assert found.remote_run is None
