"""Progress: events in, the user's steps with states, durations and folded tails out."""

from __future__ import annotations

import doctest
import threading
import tracemalloc

from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    BuildStarted,
    CacheHit,
    LogLine,
    PushProgress,
    StepStarted,
)
from imagebuild_nb.progress import model as model_module
from imagebuild_nb.progress.model import Progress

DOCKERFILE = """\
FROM base
RUN [ -x /opt/venv/bin/python ] || python3 -m venv /opt/venv
ENV VIRTUAL_ENV=/opt/venv PATH="/opt/venv/bin:$PATH"
RUN pip install six
RUN make
LABEL "io.imagebuild-nb.spec-hash"="abc"
"""


def rows(progress: Progress, now: float = 100.0) -> list[tuple[str, str, str, float | None]]:
    return [(s.label, s.instruction, s.state, s.duration) for s in progress.view(now).steps]


def started(at: float = 0.0, dockerfile: str = DOCKERFILE) -> BuildStarted:
    return BuildStarted(uri="r/x:1", builder="local", driver="docker-api", reason="missing",
                        dockerfile=dockerfile, time=at)


def test_doctests() -> None:
    assert doctest.testmod(model_module).failed == 0


def test_legacy_numbering_folds_our_steps_into_prepare_and_knows_the_total_up_front() -> None:
    p = Progress()
    p.feed(started(0.0))
    p.feed(StepStarted(number=1, total=6, instruction="FROM base", time=1.0))
    # From the first step on, the user's 3 steps are listed (queued) and counted.
    assert [(s.label, s.state) for s in p.view(1.5).steps] == [
        ("prepare", "done"), ("1/3", "running"), ("2/3", "queued"), ("3/3", "queued")]
    assert p.view(1.5).header == "Building 1.5s (0/3)"
    for number, at in ((2, 2.0), (3, 2.5)):  # our venv steps: prepare runs again
        p.feed(StepStarted(number=number, total=6, instruction="(ours)", time=at))
    p.feed(StepStarted(number=4, total=6, instruction="RUN pip install six", time=3.0))
    p.feed(LogLine(text="Collecting six", step=4, time=3.5))
    p.feed(StepStarted(number=5, total=6, instruction="RUN   make", time=5.0))
    p.feed(StepStarted(number=6, total=6, instruction="LABEL ...", time=6.0))
    p.feed(BuildFinished(uri="r/x:1", digest="sha256:ab", pushed=False, time=6.25))
    assert rows(p) == [("prepare", "prepare", "done", 2.25), ("1/3", "FROM base", "done", 1.0),
                       ("2/3", "RUN pip install six", "done", 2.0),
                       ("3/3", "RUN make", "done", 1.0)]
    view = p.view()
    assert view.header == "Built in 6.2 s" and (view.done, view.total) == (3, 3)
    assert [s.open for s in view.steps] == [False] * 4  # finished steps are folded
    assert view.steps[2].tail == ("Collecting six",)


def test_buildkit_numbering_and_a_cached_step_reported_out_of_order() -> None:
    p = Progress()
    p.feed(started(0.0))
    # BuildKit: vertices only (FROM, venv RUN, 2 user RUNs) = 4; step 3 is reported cached
    # before step 2 runs.
    p.feed(StepStarted(number=1, total=4, instruction="FROM docker.io/base@sha256:1", time=1.0))
    p.feed(CacheHit(step=1, time=1.0))
    p.feed(StepStarted(number=3, total=4, instruction="RUN pip install six", time=1.1))
    p.feed(CacheHit(step=3, time=1.1))
    p.feed(StepStarted(number=2, total=4, instruction="RUN venv", time=1.2))
    p.feed(StepStarted(number=4, total=4, instruction="RUN make", time=2.0))
    p.feed(LogLine(text="exporting to image", stream="system", time=3.0))
    assert [(s.label, s.state) for s in p.view(3.0).steps] == [
        ("prepare", "done"), ("1/3", "cached"), ("2/3", "cached"), ("3/3", "running")]
    assert p.view(3.0).header == "Building 3.0s (2/3)"
    assert "exporting to image" in p.view(3.0).steps[0].tail  # the builder's own work


def test_without_a_dockerfile_our_steps_are_recognised_and_the_total_settles() -> None:
    p = Progress()
    p.feed(StepStarted(number=1, total=3, instruction="FROM base", time=0.0))
    p.feed(StepStarted(number=2, total=3, instruction="RUN make", time=1.0))
    p.feed(StepStarted(number=3, total=3, instruction='LABEL "io.imagebuild-nb.spec-hash"="1"',
                       time=2.0))
    p.feed(BuildFinished(uri="r/x:1", time=2.1))
    assert [(s.label, s.state) for s in p.view().steps] == [
        ("prepare", "done"), ("1/2", "done"), ("2/2", "done")]


def test_a_failure_opens_the_failing_step_and_skips_the_rest() -> None:
    p = Progress()
    p.feed(started(0.0))
    p.feed(StepStarted(number=1, total=6, instruction="FROM base", time=0.5))
    p.feed(StepStarted(number=4, total=6, instruction="RUN pip install six", time=1.0))
    for n in range(40):
        p.feed(LogLine(text=f"line {n}", step=4, time=1.1))
    p.feed(BuildFailed(message="RUN pip returned a non-zero code: 1", step="step 4: RUN pip",
                       exit_code=1, lines=("line 38", "line 39"), time=2.0))
    view = p.view()
    assert view.status == "failed" and view.header == "Failed at step 2/3 after 2.0 s"
    assert [(s.label, s.state, s.open) for s in view.steps] == [
        ("prepare", "done", False), ("1/3", "done", False), ("2/3", "failed", True),
        ("3/3", "skipped", False)]
    assert view.failure is not None and view.failure.step == "2/3"
    assert view.failure.exit_code == 1 and view.failure.lines == ("line 38", "line 39")
    assert view.steps[2].tail[-1] == "line 39" and view.steps[2].lines == 40


def test_cancel_marks_the_running_step_and_push_is_its_own_row() -> None:
    p = Progress()
    p.feed(started(0.0, dockerfile="FROM base\nRUN sleep 60\n"))
    p.feed(StepStarted(number=1, total=2, instruction="FROM base", time=0.1))
    p.feed(StepStarted(number=2, total=2, instruction="RUN sleep 60", time=0.2))
    p.feed(BuildCancelled(time=5.0))
    assert [(s.label, s.state) for s in p.view().steps][-1] == ("2/2", "cancelled")
    assert p.view().header == "Cancelled after 5.0 s (1/2)"

    pushed = Progress()
    pushed.feed(started(0.0, dockerfile="FROM base\nRUN true\n"))
    pushed.feed(StepStarted(number=1, total=2, instruction="FROM base", time=0.1))
    pushed.feed(StepStarted(number=2, total=2, instruction="RUN true", time=0.2))
    for current in (None, 10, 20, None):
        status = "Pushed" if current is None and pushed.view().steps[-1].label == "push" \
            else "Pushing"
        pushed.feed(PushProgress(layer="abcdef0123456789", status=status, current=current,
                                 total=20, time=1.0))
    pushed.feed(BuildFinished(uri="r/x:1", digest="sha256:ab", pushed=True, time=1.5))
    last = pushed.view().steps[-1]
    assert (last.label, last.state, last.duration) == ("push", "done", 0.5)
    assert last.tail == ("abcdef012345 Pushing", "abcdef012345 Pushed")  # no byte counts


def test_memory_is_bounded_whatever_the_log_length() -> None:
    p = Progress()
    p.feed(started(0.0, dockerfile="FROM base\nRUN chatty\n"))
    p.feed(StepStarted(number=1, total=2, instruction="FROM base", time=0.1))
    p.feed(StepStarted(number=2, total=2, instruction="RUN chatty", time=0.2))
    tracemalloc.start()
    try:
        for n in range(2_000):
            p.feed(LogLine(text=f"line {n} " + "x" * 80, step=2, time=1.0))
        after_warmup = tracemalloc.get_traced_memory()[0]
        for n in range(20_000):
            p.feed(LogLine(text=f"line {n} " + "x" * 80, step=2, time=1.0))
        grown = tracemalloc.get_traced_memory()[0] - after_warmup
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown
    assert p.view().lines == 22_000 and len(p.view().steps[-1].tail) <= 12


def test_feeding_from_a_thread_while_viewing_from_another() -> None:
    p = Progress()
    events: list[BuildEvent] = [started(0.0, dockerfile="FROM base\nRUN x\n"),
                                StepStarted(number=1, total=2, instruction="FROM base"),
                                StepStarted(number=2, total=2, instruction="RUN x"),
                                *(LogLine(text=f"l{n}", step=2) for n in range(20_000)),
                                BuildFinished(uri="r/x:1")]
    feeder = threading.Thread(target=lambda: [p.feed(e) for e in events])
    feeder.start()
    while feeder.is_alive():
        p.view()
    feeder.join()
    assert p.view().status == "built" and p.view().lines == 20_000


def test_buildkit_stages_keep_the_installer_stage_in_prepare() -> None:
    dockerfile = ("FROM base AS imagebuild-nb-uv\nRUN python3 -m venv /opt/imagebuild-nb/uv\n"
                  "FROM base\nRUN [ -x /opt/venv/bin/python ] || python3 -m venv /opt/venv\n"
                  "RUN uv pip install six\nRUN make\n")
    p = Progress()
    p.feed(started(0.0, dockerfile=dockerfile))
    steps = [("imagebuild-nb-uv", 1, 2, "FROM base"), ("stage-1", 1, 4, "FROM base"),
             ("imagebuild-nb-uv", 2, 2, "RUN python3 -m venv /opt/imagebuild-nb/uv"),
             ("stage-1", 2, 4, "RUN venv"), ("stage-1", 3, 4, "RUN uv pip install six"),
             ("stage-1", 4, 4, "RUN make")]
    for at, (stage, number, total, instruction) in enumerate(steps, start=1):
        p.feed(StepStarted(number=number, total=total, instruction=instruction, stage=stage,
                           time=float(at)))
        p.feed(LogLine(text=f"out of {stage} {number}", step=number, time=at + 0.5))
    p.feed(BuildFinished(uri="r/x:1", time=8.0))
    assert [(s.label, s.instruction, s.state) for s in p.view().steps] == [
        ("prepare", "prepare", "done"), ("1/3", "FROM base", "done"),
        ("2/3", "RUN uv pip install six", "done"), ("3/3", "RUN make", "done")]
