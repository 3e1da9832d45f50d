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

import re
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
# A platform in a step's stage (BuildKit's stage names cannot hold a slash), and the lines the
# per-platform builder (builders/platforms.py) writes between platforms and before the index.
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?$")
_PLATFORM_START = re.compile(r"^building ([a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?) as (\S+)$")
_INDEX_START = re.compile(r"^pushing the index of \S")
_INDEX_PUSH = re.compile(r"image list signatures|images in list")  # podman manifest push --all


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
    platform: str = ""  # the platform it was built for, in a multi-platform build


@dataclass(frozen=True)
class Failure:
    message: str
    step: str | None = None  # the row label that failed ("2/5", "push") when known
    exit_code: int | None = None
    lines: tuple[str, ...] = ()
    platform: str = ""  # in a multi-platform build, the platform that failed


@dataclass(frozen=True)
class PlatformView:
    """One platform's part of a multi-platform build: ``linux/arm64  Building 1/3 4.2s``."""

    platform: str
    status: str  # building | built | failed | cancelled
    summary: str
    elapsed: float | None
    done: int
    total: int | None


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
    platforms: tuple[PlatformView, ...] = ()  # one per platform of a multi-platform build

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


@dataclass
class _Lane:
    """The rows of one platform's build ("" for a single-platform build: the only lane)."""

    platform: str = ""
    prepare: _Row = field(default_factory=lambda: _Row("prepare", "prepare"))
    push: _Row | None = None
    steps: dict[int, _Row] = field(default_factory=dict)  # the user's step number -> row
    by_builder: dict[tuple[str, int], _Row] = field(default_factory=dict)  # (stage, number)
    latest: dict[int, _Row] = field(default_factory=dict)  # builder's number -> its last row
    internal_seen: set[int] = field(default_factory=set)
    marker: InternalMarker = field(default_factory=InternalMarker)
    builder_total: int | None = None
    user_total: int | None = None
    last: _Row | None = None
    started: float | None = None
    ended: float | None = None
    tag: str = ""  # where the per-platform builder pushes this platform's image

    def rows(self) -> list[_Row]:
        rows = [self.prepare, *(self.steps[n] for n in sorted(self.steps))]
        return rows + ([self.push] if self.push is not None else [])

    def total(self) -> int | None:
        if self.user_total is not None:
            return self.user_total
        if self.builder_total is not None:
            return self.builder_total - len(self.internal_seen)
        return None

    def end(self, at: float, final: str) -> None:
        for row in self.rows():
            if row.state == "running":
                row.close(at, final)
            elif row.state == "queued" and row is not self.prepare:
                row.state = "skipped"
        if self.prepare.state == "queued":
            self.prepare.state = "skipped"
        if self.ended is None:
            self.ended = at


class Progress:
    """Folds build events into rows. Thread-safe: feed from the build, view from a renderer.

    A multi-platform build runs one build per platform in turn, its step events naming the
    platform as their stage: each platform gets its own lane of rows (prepare, steps, push),
    so the second platform's steps do not reuse the first one's rows.
    """

    def __init__(self, *, dockerfile: str = "") -> None:
        self._lock = threading.RLock()
        self._plan = StepPlan.from_dockerfile(dockerfile) if dockerfile else StepPlan()
        self._lane = _Lane()
        self._lanes: list[_Lane] = [self._lane]
        self._index: _Row | None = None  # pushing a multi-platform index, after the lanes
        self._pushed_lines: set[tuple[str, str]] = set()
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
                row = self._lane.latest.get(event.step)
                if row is not None and row is not self._lane.prepare:
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
        self._lane.started = event.time
        self._lane.prepare.begin(event.time)

    def _enter(self, platform: str, at: float) -> _Lane:
        """The lane of ``platform``; a new platform ends the one before it (they run in turn)."""
        lane = self._lane
        if lane.platform == platform:
            return lane
        if not lane.platform and not lane.steps:
            lane.platform = platform  # what came before the first platform's steps is its own
            return lane
        known = next((other for other in self._lanes if other.platform == platform), None)
        lane.end(at, "done")
        if known is None:
            known = _Lane(platform, started=at)
            self._lanes.append(known)
        known.ended = None
        self._lane = known
        return known

    def _step(self, event: StepStarted) -> None:
        self.status = "building"
        platform = event.stage if _PLATFORM.match(event.stage) else ""
        lane = self._enter(platform, event.time) if platform else self._lane
        stage = "" if platform else event.stage  # the platform took the stage's place
        if event.total:
            lane.builder_total = event.total
        planned = self._plan.locate(event.number, event.total, stage) if self._plan else None
        internal = planned.internal if planned else lane.marker.is_internal(event.instruction)
        # The step that was running before this one is over (builders run them in order;
        # BuildKit may report a cached later step first, which must not end an earlier one).
        for (other, number), row in list(lane.by_builder.items()):
            if row.state == "running" and (other != stage or number < event.number):
                row.close(event.time)
        if lane.prepare.state == "running" and not internal:
            lane.prepare.close(event.time)
        if internal:
            lane.internal_seen.add(event.number)
            lane.by_builder[(stage, event.number)] = lane.prepare
            lane.latest[event.number] = lane.prepare
            lane.prepare.begin(event.time)
            lane.last = lane.prepare
            if planned is not None:
                lane.user_total = planned.user_total
            return
        if planned is not None and planned.user_number is not None:
            number, lane.user_total = planned.user_number, planned.user_total
            for user_number, instruction in self._plan.user_steps(event.total, stage):
                lane.steps.setdefault(user_number, _Row("", shown(instruction), user_number))
        else:
            number = event.number - sum(1 for n in lane.internal_seen if n < event.number)
        row = lane.steps.get(number)
        if row is None:
            row = lane.steps[number] = _Row("", shown(event.instruction), number)
        row.instruction = shown(event.instruction)
        lane.by_builder[(stage, event.number)] = row
        lane.latest[event.number] = row
        row.begin(event.time)
        lane.last = row

    def _log(self, event: LogLine) -> None:
        self.lines += 1
        text = collapse_cr(strip_ansi(event.text.rstrip("\r\n")))
        if event.step is None:
            switch = _PLATFORM_START.match(text)
            index = _INDEX_START.match(text)
            if switch and (self._multi() or not self._lane.steps):  # the per-platform builder says which platform comes next
                lane = self._enter(switch.group(1), event.time)
                lane.tag = switch.group(2)
                lane.prepare.begin(event.time)
                lane.last = None
            elif index and self._multi():
                self._index_push(event.time)
        self._row_for(event.step, system=event.stream in ("system", "status")).add(text)

    def _index_push(self, at: float) -> None:
        if self._index is None:
            self._lane.end(at, "done")
            self._index = _Row("index", self.uri or "index")
            self._index.begin(at)

    def _row_for(self, step: int | None, *, system: bool = False) -> _Row:
        lane = self._lane
        if self._index is not None and step is None:
            return self._index
        if step is not None and step in lane.latest:
            return lane.latest[step]
        if system or lane.last is None:
            return lane.prepare
        return lane.last

    def _push_progress(self, event: PushProgress) -> None:
        lane = self._lane
        if self._index is None and lane.push is None and self._multi() and \
                _INDEX_PUSH.search(event.status):
            self._index_push(event.time)  # podman pushes every platform's image in one go
        if self._index is None and lane.push is None:
            for row in lane.rows():
                if row.state == "running":
                    row.close(event.time)
            lane.push = _Row("push", lane.tag or self.uri or "push")
            lane.push.begin(event.time)
            lane.last = lane.push
        target = self._index if self._index is not None else lane.push
        assert target is not None
        key = (lane.platform, event.layer, event.status)
        if event.current is None and key not in self._pushed_lines:  # byte counts: no line
            self._pushed_lines.add(key)
            target.add(f"{event.layer[:12]} {event.status}".strip())

    def _failed(self, event: BuildFailed) -> None:
        running = [(lane, row) for lane, row in self._all_rows() if row.state == "running"]
        if event.step == "push" and self._index is not None:
            running = [(None, self._index)]
        elif event.step == "push" and self._lane.push is not None:
            running = [(self._lane, self._lane.push)]
        elif not running and self._lane.last is not None:
            running = [(self._lane, self._lane.last)]
        for _, row in running:
            row.close(event.time, "failed")
        lane, where = running[-1] if running else (None, None)
        lines = tuple(event.lines) or (tuple(where.tail) if where is not None else ())
        self.failure = Failure(event.message,
                               _label_of(where, lane.total() if lane else None),
                               event.exit_code, lines, lane.platform if lane else "")
        self._end(event.time, "failed")

    def _end(self, at: float, status: str) -> None:
        final = {"built": "done", "failed": "failed", "cancelled": "cancelled"}[status]
        for lane in self._lanes:
            lane.end(at, final)
        if self._index is not None and self._index.state == "running":
            self._index.close(at, final)
        self.status, self.ended_at = status, at

    def _all_rows(self) -> list[tuple[_Lane | None, _Row]]:
        rows: list[tuple[_Lane | None, _Row]] = [
            (lane, row) for lane in self._lanes for row in lane.rows()]
        return rows + ([(None, self._index)] if self._index is not None else [])

    # -- viewing ------------------------------------------------------------------------------

    def label_of(self, builder_number: int) -> str | None:
        """The label of the row the builder's step ``builder_number`` went to (in the platform
        building now)."""
        with self._lock:
            row = self._lane.latest.get(builder_number)
            return _label_of(row, self._lane.total()) if row is not None else None

    def platform_of(self, builder_number: int) -> str:
        """The platform whose step ``builder_number`` ran last ("" in a single-platform build)."""
        with self._lock:
            return self._lane.platform if builder_number in self._lane.latest else ""

    def _multi(self) -> bool:
        return any(lane.platform for lane in self._lanes)

    def _total(self) -> int | None:
        totals = [lane.total() for lane in self._lanes]
        if any(total is None for total in totals):
            known = [total for total in totals if total is not None]
            return sum(known) if known and self._multi() else None
        return sum(total for total in totals if total is not None)

    def view(self, now: float | None = None, *, tail: int = 5) -> View:
        """The picture to draw; ``tail`` lines of the running (or failed) step are unfolded."""
        with self._lock:
            now = time.time() if now is None else now
            total = self._total()
            steps = tuple(self._view_row(row, lane.total(), now, tail, lane.platform)
                          for lane in self._lanes for row in lane.rows()
                          if self._shown(lane, row))
            if self._index is not None:
                steps += (self._view_row(self._index, None, now, tail, ""),)
            done = sum(1 for s in steps if s.number is not None and s.state in ("done", "cached"))
            elapsed = None
            if self.started_at is not None:
                elapsed = max(0.0, (self.ended_at if self.ended_at is not None else now)
                              - self.started_at)
            running = [s for s in steps if s.state == "running"]
            current = ""
            if running:
                step = running[-1]
                where = f"{step.platform} " if step.platform else ""
                current = f"{where}{step.label} {step.instruction}"
            platforms = tuple(self._view_lane(lane, steps, now) for lane in self._lanes) \
                if self._multi() else ()
            return View(
                status=self.status, header=_header(self.status, elapsed, done, total, self.failure),
                elapsed=elapsed, done=done, total=total, steps=steps, uri=self.uri,
                builder=self.builder, reason=self.reason, digest=self.digest, pushed=self.pushed,
                failure=self.failure, clipped=self.clipped, lines=self.lines, current=current,
                platforms=platforms)

    def _view_lane(self, lane: _Lane, steps: tuple[StepView, ...], now: float) -> PlatformView:
        mine = [s for s in steps if s.platform == lane.platform]
        done = sum(1 for s in mine if s.number is not None and s.state in ("done", "cached"))
        states = {s.state for s in mine}
        if lane.ended is None:
            status = "building"
        elif "failed" in states:
            status = "failed"
        elif "cancelled" in states or (self.status == "cancelled" and lane is self._lane):
            status = "cancelled"
        else:
            status = "built"
        elapsed = None
        if lane.started is not None:
            elapsed = max(0.0, (lane.ended if lane.ended is not None else now) - lane.started)
        total = lane.total()
        failed = next((s.label for s in mine if s.state == "failed"), None)
        return PlatformView(lane.platform, status,
                            _lane_summary(status, elapsed, done, total, failed), elapsed, done,
                            total)

    def _shown(self, lane: _Lane, row: _Row) -> bool:
        if row is lane.prepare:  # only when it did something
            return row.segments > 0 or row.lines > 0
        return True

    def _view_row(self, row: _Row, total: int | None, now: float, tail: int,
                  platform: str) -> StepView:
        label = row.label or _label_of(row, total) or "?"
        state = row.state
        opened = state in ("running", "failed")
        lines = tuple(row.tail)[-tail:] if state == "running" else tuple(row.tail)
        return StepView(label, row.instruction, state, row.duration(now), row.lines,
                        lines if opened else tuple(row.tail), opened, row.number, platform)


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
            if failure.platform:
                where = f" at {failure.platform}" + where.removeprefix(" at")
        return f"Failed{where} after {spaced(elapsed)}"
    if status == "cancelled":
        return f"Cancelled after {spaced(elapsed)}{count}"
    if status == "waiting":
        return "Waiting for the build to start"
    return f"Building {seconds(elapsed)}{count}"


def _lane_summary(status: str, elapsed: float | None, done: int, total: int | None,
                  failed: str | None) -> str:
    """A platform's line: ``Built 3/3 in 2.1 s``, ``Building 1/3 4.2s``."""
    count = f" {done}/{total}" if total else ""
    if status == "built":
        return f"Built{count} in {spaced(elapsed)}"
    if status == "failed":
        where = f" at step {failed}" if failed and failed[0].isdigit() else \
            (f" at {failed}" if failed else "")
        return f"Failed{where} after {spaced(elapsed)}"
    if status == "cancelled":
        return f"Cancelled{count} after {spaced(elapsed)}"
    return f"Building{count} {seconds(elapsed)}"
