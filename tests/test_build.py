"""The ImageBuild handle: events, replay, subscription, waiting, cancelling, reprs (fast tier)."""

from __future__ import annotations

import _thread
import asyncio
import gc
import os
import signal
import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from imagebuild_nb.build import DryRun, ImageBuild
from imagebuild_nb.errors import BuildCancelledError, BuildFailedError, ImageBuildError
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
    assert build.status == "cancelled" and time.monotonic() - started < 15  # not the 30 s


def _signal_after_release(condition: threading.Condition) -> None:
    """Ctrl-C in the narrowest window of ``condition.wait``: just after it released its lock,
    before the ``try`` that takes it back (where CI's one exit-6 ``imagebuild build`` came from:
    the ``with`` around the wait then failed with "cannot release un-acquired lock")."""
    release = condition._release_save  # type: ignore[attr-defined]

    def release_then_interrupt():  # type: ignore[no-untyped-def]
        state = release()
        os.kill(os.getpid(), signal.SIGINT)  # its handler runs on this function's next bytecode
        return state

    condition._release_save = release_then_interrupt  # type: ignore[attr-defined]


def test_ctrl_c_while_following_is_a_keyboard_interrupt_whenever_it_lands() -> None:
    build = ImageBuild(URI, builder="local").start(_script(BuildFinished(uri=URI), pause=30))
    _signal_after_release(build._changed)
    with pytest.raises(KeyboardInterrupt):
        for _ in build.follow(idle_tick=0.05):
            pass
    build.cancel()
    assert build.wait(5, raise_on_error=False).status == "cancelled"


def test_ctrl_c_while_following_a_silent_build_is_not_held_until_the_next_event() -> None:
    build = ImageBuild(URI, builder="local").start(_script(BuildFinished(uri=URI), pause=30))
    threading.Timer(0.3, _thread.interrupt_main).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        for _ in build:  # no idle ticks: the deferral must end with each wait, not the loop
            pass
    assert time.monotonic() - started < 15  # not the build's 30 s of silence
    build.cancel()
    assert build.wait(5, raise_on_error=False).status == "cancelled"


def test_ctrl_c_while_waiting_cancels_whenever_it_lands() -> None:
    build = ImageBuild(URI, builder="local").start(_script(BuildFinished(uri=URI), pause=30))
    _signal_after_release(build._ended._cond)  # type: ignore[attr-defined]
    with pytest.raises(KeyboardInterrupt):
        build.wait()
    assert build.status == "cancelled"


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


def _log_lines(count: int, *, halfway: threading.Event | None = None,  # type: ignore[no-untyped-def]
               gate: threading.Event | None = None, finish: bool = True):
    def run(cancel: threading.Event) -> Iterator[BuildEvent]:
        for number in range(count):
            if gate is not None and halfway is not None and number == count // 2:
                halfway.set()
                gate.wait(30)  # half the log is out; the rest follows once the test says so
            yield LogLine(text=f"line {number} of a long build log")
        if finish:
            yield BuildFinished(uri=URI)

    return run


@pytest.mark.slow
def test_a_long_build_keeps_memory_bounded_and_replays_every_event() -> None:
    # 200,000 lines: all in memory they peaked at ~51 MB (256 MB for a million), far over the
    # bound below; the bounded window stays near 1 MB however long the build runs.
    lines = 200_000
    # The builder repeats 1000 line objects, so what is traced is the build's memory, not the
    # producer's (the build numbers a copy of each, as it would a fresh one).
    pool = [LogLine(text=f"line {n} of a long build log") for n in range(1000)]

    def run(cancel: threading.Event) -> Iterator[BuildEvent]:
        for number in range(lines):
            yield pool[number % 1000]
        yield BuildFinished(uri=URI)

    tracemalloc.start()
    try:
        build = ImageBuild(URI, builder="local").start(run)
        assert build.wait(900).built
        _, building_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        expected, wrong = 1, 0
        for event in build:  # a replay from the start
            wrong += event.seq != expected or (
                expected <= lines and event.text != pool[(expected - 1) % 1000].text)
            expected += 1
        _, replay_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (expected - 1, wrong) == (lines + 1, 0)
    # The window (1000 events, 1 MiB of text) is far below 16 MiB.
    assert building_peak < 16 * 2**20 and replay_peak < 16 * 2**20, (building_peak, replay_peak)
    build.close()


def test_replay_from_any_sequence_number_reads_the_spool_then_the_window() -> None:
    lines = 5000  # five times the window: most of it is on disk
    build = ImageBuild(URI, builder="local").start(_log_lines(lines))
    build.wait(60)
    assert build._log.in_memory < 1000 < lines
    for after in (0, 1, 1023, 1024, 1025, 2500, lines - 1, lines, lines + 1, lines + 5):
        assert [e.seq for e in build.replay(after=after)] == list(range(after + 1, lines + 2))
    assert [e.seq for e in build.follow(after=4000)] == list(range(4001, lines + 2))
    assert build.logs.split("\n") == [f"line {n} of a long build log" for n in range(lines)]
    events = build.events  # a snapshot, read from the spool only as used
    assert len(events) == lines + 1 and events[-1].kind == "finished" and events[0].seq == 1
    assert [e.seq for e in events[1023:1026]] == [1024, 1025, 1026]
    assert [e.seq for e in events[::1000]] == [1, 1001, 2001, 3001, 4001, 5001]
    assert sum(1 for _ in events) == lines + 1
    with pytest.raises(IndexError, match="out of range"):
        events[lines + 1]
    seen: list[int] = []
    build.subscribe(lambda event: seen.append(event.seq), after=10)
    assert seen == list(range(11, lines + 2))


def test_a_subscriber_joining_mid_build_gets_every_event_once_in_order() -> None:
    halfway, gate = threading.Event(), threading.Event()
    lines = 20_000
    build = ImageBuild(URI, builder="local").start(_log_lines(lines, halfway=halfway, gate=gate))
    assert halfway.wait(30)  # the first half is out (and mostly spooled)
    seen: list[int] = []
    followed: list[int] = []
    follower = threading.Thread(target=lambda: followed.extend(e.seq for e in build))
    follower.start()

    def slow_subscriber(event: BuildEvent) -> None:
        seen.append(event.seq)
        if event.seq % 500 == 0:
            time.sleep(0.001)  # lets the build publish while the subscriber catches up

    gate.set()  # the second half streams while the subscriber catches up on the first
    build.subscribe(slow_subscriber)
    build.wait(60)
    follower.join(60)
    assert seen == list(range(1, lines + 2)) and followed == seen


def test_the_spool_is_freed_on_close_and_when_the_build_is_collected() -> None:
    build = ImageBuild(URI, builder="local").start(_log_lines(5000))
    build.wait(60)
    spool = build._log._spool
    assert spool is not None and not spool.closed
    window_start = 5001 - build._log.in_memory
    build.close()
    assert spool.closed
    with pytest.raises(ImageBuildError, match="discarded when it was closed") as caught:
        list(build.replay())
    assert "before closing" in (caught.value.hint or "")
    assert [e.seq for e in build.replay(after=window_start)][-1] == 5001  # the window stays
    with ImageBuild(URI, builder="local") as running:
        running.start(_script(BuildFinished(uri=URI), pause=30))
        with pytest.raises(ImageBuildError, match="running"):
            running.close()
        running.cancel()
        running.wait(10, raise_on_error=False)
    collected = ImageBuild(URI, builder="local").start(_log_lines(5000))
    collected.wait(60)
    spool = collected._log._spool
    assert spool is not None and not spool.closed
    del collected
    gc.collect()
    assert spool.closed
