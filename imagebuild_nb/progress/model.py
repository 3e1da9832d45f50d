"""The progress model: a build's steps, states, durations and folded logs, from its events.

:class:`Progress` folds events one at a time (from any thread) and keeps only bounded state: per
step the last lines of its log, never the whole log. :meth:`Progress.view` returns an immutable
:class:`View` that the renderers (text, HTML, the service page) draw without further logic, so
every face of the project shows the same steps, numbers, states and durations.

Steps are numbered as the user wrote them: the engine's own instructions (virtual environment,
build CAs, the spec label) and the builder's own work (loading the context, exporting) fold into
one "prepare" row; pushing is a "push" row after the steps.

>>> from imagebuild_nb.events import BuildStarted, StepStarted, LogLine, CacheHit, BuildFinished
>>> p = Progress()
>>> for e in [BuildStarted(uri="r/x:1", builder="local", time=0.0),
...           StepStarted(number=1, total=2, instruction="FROM base", time=0.5),
...           CacheHit(step=1, time=0.5),
...           StepStarted(number=2, total=2, instruction="RUN make", time=0.6),
...           LogLine(text="compiling", step=2, time=1.0)]:
...     p.feed(e)
>>> view = p.view(now=3.0)
>>> view.header, [(s.label, s.state) for s in view.steps]
('Building 3.0s (1/2)', [('prepare', 'done'), ('1/2', 'cached'), ('2/2', 'running')])
>>> p.feed(BuildFinished(uri="r/x:1", time=4.2)); p.view().header
'Built in 4.2 s'
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    BuildStarted,
    CacheHit,
    LogLine,
    OutputClipped,
    PushProgress,
    StepStarted,
)
from imagebuild_nb.notebook.logview import collapse_cr, strip_ansi
from imagebuild_nb.progress.plan import InternalMarker, StepPlan, shown
from imagebuild_nb.progress.states import seconds, spaced

TAIL_LINES = 12  # per step, in memory; a view shows fewer while running
_LINE_CHARS = 400


@dataclass(frozen=True)
class StepView:
    """One row: ``label`` is "2/5", "prepare" or "push"."""

    label: str
    instruction: str
    state: str  # queued | running | cached | done | failed | cancelled | skipped
    duration: float | None
    lines: int  # log lines seen under this row
    tail: tuple[str, ...]  # its last lines
    open: bool  # unfolded: the running step, the failing one
    number: int | None = None  # the user's step number (None for prepare and push)


@dataclass(frozen=True)
class Failure:
    message: str
    step: str | None = None  # the row label that failed ("2/5", "push") when known
    exit_code: int | None = None
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class View:
    """An immutable picture of a build's progress; renderers only draw it."""

    status: str  # waiting | building | built | failed | cancelled
    header: str
    elapsed: float | None
    done: int  # user steps finished (done or cached)
    total: int | None  # user steps in the build, when known
    steps: tuple[StepView, ...]
    uri: str = ""
    builder: str = ""
    reason: str = ""
    digest: str | None = None
    pushed: bool = False
    failure: Failure | None = None
    clipped: int = 0
    lines: int = 0
    current: str = ""  # the running row's label and instruction, for one-line status

    @property
    def finished(self) -> bool:
        return self.status in ("built", "failed", "cancelled")


@dataclass
class _Row:
    label: str
    instruction: str
    number: int | None = None
    state: str = "queued"
    started: float | None = None
    ended: float | None = None
    spent: float = 0.0  # time in closed segments (the prepare row has several)
    lines: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    segments: int = 0

    def begin(self, at: float) -> None:
        if self.state != "running":
            self.state, self.started, self.ended = "running", at, None
            self.segments += 1

    def close(self, at: float, state: str = "done") -> None:
        if self.state == "running" and self.started is not None:
            self.spent += max(0.0, at - self.started)
            self.ended = at
        if self.state in ("running", "queued") or state in ("failed", "cancelled"):
            self.state = state

    def duration(self, now: float) -> float | None:
        if self.state == "running" and self.started is not None:
            return self.spent + max(0.0, now - self.started)
        return self.spent if self.segments else None

    def add(self, text: str) -> None:
        self.lines += 1
        self.tail.append(text if len(text) <= _LINE_CHARS else text[:_LINE_CHARS] + " …")


class Progress:
    """Folds build events into rows. Thread-safe: feed from the build, view from a renderer."""

    def __init__(self, *, dockerfile: str = "") -> None:
        self._lock = threading.RLock()
        self._plan = StepPlan.from_dockerfile(dockerfile) if dockerfile else StepPlan()
        self._marker = InternalMarker()
        self._prepare = _Row("prepare", "prepare")
        self._push: _Row | None = None
        self._steps: dict[int, _Row] = {}  # the user's step number -> row
        self._by_builder: dict[tuple[str, int], _Row] = {}  # (stage, builder's number) -> row
        self._latest: dict[int, _Row] = {}  # builder's number -> the row that last had it
        self._internal_seen: set[int] = set()
        self._builder_total: int | None = None
        self._user_total: int | None = None
        self._pushed_lines: set[tuple[str, str]] = set()
        self._last: _Row | None = None
        self.status = "waiting"
        self.uri = self.builder = self.reason = ""
        self.digest: str | None = None
        self.pushed = False
        self.failure: Failure | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.clipped = 0
        self.lines = 0

    # -- folding ------------------------------------------------------------------------------

    def feed(self, event: BuildEvent) -> None:
        with self._lock:
            if self.started_at is None:
                self.started_at = event.time
            if isinstance(event, LogLine):
                self._log(event)
            elif isinstance(event, StepStarted):
                self._step(event)
            elif isinstance(event, CacheHit):
                row = self._latest.get(event.step)
                if row is not None and row is not self._prepare:
                    row.close(event.time, "cached")
            elif isinstance(event, PushProgress):
                self._push_progress(event)
            elif isinstance(event, OutputClipped):
                self.clipped += 1
                self._row_for(event.step).add(f"[output clipped: {event.message}]")
            elif isinstance(event, BuildStarted):
                self._started(event)
            elif isinstance(event, BuildFinished):
                self._end(event.time, "built")
                self.digest, self.pushed = event.digest, event.pushed
            elif isinstance(event, BuildFailed):
                self._failed(event)
            elif isinstance(event, BuildCancelled):
                self._end(event.time, "cancelled")

    def feed_all(self, events: list[BuildEvent] | tuple[BuildEvent, ...]) -> Progress:
        for event in events:
            self.feed(event)
        return self

    def _started(self, event: BuildStarted) -> None:
        self.status = "building"
        self.uri, self.builder, self.reason = event.uri, event.builder, event.reason
        self.started_at = event.time
        if event.dockerfile and not self._plan:  # streams of plug-in builders may have none
            self._plan = StepPlan.from_dockerfile(event.dockerfile)
        self._prepare.begin(event.time)

    def _step(self, event: StepStarted) -> None:
        self.status = "building"
        if event.total:
            self._builder_total = event.total
        planned = self._plan.locate(event.number, event.total, event.stage) if self._plan \
            else None
        internal = planned.internal if planned else self._marker.is_internal(event.instruction)
        # The step that was running before this one is over (builders run them in order;
        # BuildKit may report a cached later step first, which must not end an earlier one).
        for (stage, number), row in list(self._by_builder.items()):
            if row.state == "running" and (stage != event.stage or number < event.number):
                row.close(event.time)
        if self._prepare.state == "running" and not internal:
            self._prepare.close(event.time)
        if internal:
            self._internal_seen.add(event.number)
            self._by_builder[(event.stage, event.number)] = self._prepare
            self._latest[event.number] = self._prepare
            self._prepare.begin(event.time)
            self._last = self._prepare
            if planned is not None:
                self._user_total = planned.user_total
            return
        if planned is not None and planned.user_number is not None:
            number, self._user_total = planned.user_number, planned.user_total
            self._queue_planned(event.total, event.stage)
        else:
            number = event.number - sum(1 for n in self._internal_seen if n < event.number)
        row = self._steps.get(number)
        if row is None:
            row = self._steps[number] = _Row("", shown(event.instruction), number)
        row.instruction = shown(event.instruction)
        self._by_builder[(event.stage, event.number)] = row
        self._latest[event.number] = row
        row.begin(event.time)
        self._last = row

    def _queue_planned(self, total: int | None, stage: str) -> None:
        for number, instruction in self._plan.user_steps(total, stage):
            self._steps.setdefault(number, _Row("", shown(instruction), number))

    def _log(self, event: LogLine) -> None:
        self.lines += 1
        text = collapse_cr(strip_ansi(event.text.rstrip("\r\n")))
        self._row_for(event.step, system=event.stream in ("system", "status")).add(text)

    def _row_for(self, step: int | None, *, system: bool = False) -> _Row:
        if step is not None and step in self._latest:
            return self._latest[step]
        if system or self._last is None:
            return self._prepare
        return self._last

    def _push_progress(self, event: PushProgress) -> None:
        if self._push is None:
            for row in self._rows():
                if row.state == "running":
                    row.close(event.time)
            self._push = _Row("push", self.uri or "push")
            self._push.begin(event.time)
            self._last = self._push
        key = (event.layer, event.status)
        if event.current is None and key not in self._pushed_lines:  # byte counts: no line
            self._pushed_lines.add(key)
            self._push.add(f"{event.layer[:12]} {event.status}".strip())

    def _failed(self, event: BuildFailed) -> None:
        running = [row for row in self._rows() if row.state == "running"]
        if event.step == "push" and self._push is not None:
            running = [self._push]
        elif not running and self._last is not None:
            running = [self._last]
        for row in running:
            row.close(event.time, "failed")
        where = running[-1] if running else None
        lines = tuple(event.lines) or (tuple(where.tail) if where is not None else ())
        self.failure = Failure(event.message, _label_of(where, self._total()),
                               event.exit_code, lines)
        self._end(event.time, "failed")

    def _end(self, at: float, status: str) -> None:
        final = {"built": "done", "failed": "failed", "cancelled": "cancelled"}[status]
        for row in self._rows():
            if row.state == "running":
                row.close(at, "done" if final == "done" else final)
            elif row.state == "queued":
                row.state = "skipped"
        if self._prepare.state == "queued":
            self._prepare.state = "skipped"
        self.status, self.ended_at = status, at

    def _rows(self) -> list[_Row]:
        rows = [self._prepare, *(self._steps[n] for n in sorted(self._steps))]
        return rows + ([self._push] if self._push is not None else [])

    # -- viewing ------------------------------------------------------------------------------

    def label_of(self, builder_number: int) -> str | None:
        """The label of the row the builder's step ``builder_number`` went to."""
        with self._lock:
            row = self._latest.get(builder_number)
            return _label_of(row, self._total()) if row is not None else None

    def _total(self) -> int | None:
        if self._user_total is not None:
            return self._user_total
        if self._builder_total is not None:
            return self._builder_total - len(self._internal_seen)
        return None

    def view(self, now: float | None = None, *, tail: int = 5) -> View:
        """The picture to draw; ``tail`` lines of the running (or failed) step are unfolded."""
        with self._lock:
            now = time.time() if now is None else now
            total = self._total()
            steps = tuple(self._view_row(row, total, now, tail) for row in self._rows()
                          if self._shown(row))
            done = sum(1 for s in steps if s.number is not None and s.state in ("done", "cached"))
            elapsed = None
            if self.started_at is not None:
                elapsed = max(0.0, (self.ended_at if self.ended_at is not None else now)
                              - self.started_at)
            running = [s for s in steps if s.state == "running"]
            current = f"{running[-1].label} {running[-1].instruction}" if running else ""
            return View(
                status=self.status, header=_header(self.status, elapsed, done, total, self.failure),
                elapsed=elapsed, done=done, total=total, steps=steps, uri=self.uri,
                builder=self.builder, reason=self.reason, digest=self.digest, pushed=self.pushed,
                failure=self.failure, clipped=self.clipped, lines=self.lines, current=current)

    def _shown(self, row: _Row) -> bool:
        if row is self._prepare:  # only when it did something
            return row.segments > 0 or row.lines > 0
        return True

    def _view_row(self, row: _Row, total: int | None, now: float, tail: int) -> StepView:
        label = row.label or _label_of(row, total) or "?"
        state = row.state
        opened = state in ("running", "failed")
        lines = tuple(row.tail)[-tail:] if state == "running" else tuple(row.tail)
        return StepView(label, row.instruction, state, row.duration(now), row.lines,
                        lines if opened else tuple(row.tail), opened, row.number)


def _label_of(row: _Row | None, total: int | None) -> str | None:
    if row is None:
        return None
    if row.number is None:
        return row.label
    return f"{row.number}/{total}" if total else str(row.number)


def _header(status: str, elapsed: float | None, done: int, total: int | None,
            failure: Failure | None) -> str:
    count = f" ({done}/{total})" if total else ""
    if status == "built":
        return f"Built in {spaced(elapsed)}"
    if status == "failed":
        where = ""
        if failure is not None and failure.step:
            where = " at step " + failure.step if failure.step[0].isdigit() else \
                f" at {failure.step}"
        return f"Failed{where} after {spaced(elapsed)}"
    if status == "cancelled":
        return f"Cancelled after {spaced(elapsed)}{count}"
    if status == "waiting":
        return "Waiting for the build to start"
    return f"Building {seconds(elapsed)}{count}"
