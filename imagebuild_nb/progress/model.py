"""The progress model: a build's steps, states, durations and folded logs, from its events.

:class:`Progress` folds events one at a time (from any thread) and keeps only bounded state: per
step the last lines of its log, never the whole log. :meth:`Progress.view` returns an immutable
:class:`View` that the renderers (text, HTML, the service page) draw without further logic, so
every face of the project shows the same steps, numbers, states and durations.

Steps are numbered as the user wrote them: the engine's own instructions (virtual environment,
build CAs, the spec label) and the builder's own work (loading the context, exporting) fold into
one "prepare" row; pushing is a "push" row after the steps. The rows being folded are in
:mod:`~imagebuild_nb.progress.rows`; the picture's values are in
:mod:`~imagebuild_nb.progress.view`.

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
from collections.abc import Iterable

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
from imagebuild_nb.progress.plan import StepPlan, shown
from imagebuild_nb.progress.rows import Lane, Row, row_label
from imagebuild_nb.progress.view import Failure, PlatformView, StepView, View, header, lane_summary
from imagebuild_nb.terminal_text import collapse_cr, strip_ansi

# A platform in a step's stage (BuildKit's stage names cannot hold a slash), and the lines the
# per-platform builder (builders/platforms.py) writes between platforms and before the index.
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?$")
_PLATFORM_START = re.compile(r"^building ([a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?) as (\S+)$")
_INDEX_START = re.compile(r"^pushing the index of \S")
_INDEX_PUSH = re.compile(r"image list signatures|images in list")  # podman manifest push --all


class Progress:
    """Folds build events into rows. Thread-safe: feed from the build, view from a renderer.

    A multi-platform build runs one build per platform in turn, its step events naming the
    platform as their stage: each platform gets its own lane of rows (prepare, steps, push),
    so the second platform's steps do not reuse the first one's rows.
    """

    def __init__(self, *, dockerfile: str = "") -> None:
        self._lock = threading.RLock()
        self._plan = StepPlan.from_dockerfile(dockerfile) if dockerfile else StepPlan()
        self._lane = Lane()
        self._lanes: list[Lane] = [self._lane]
        self._index: Row | None = None  # pushing a multi-platform index, after the lanes
        self._pushed_lines: set[tuple[str, str, str]] = set()  # (platform, layer, status)
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

    def feed_all(self, events: Iterable[BuildEvent]) -> Progress:
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

    def _enter(self, platform: str, at: float) -> Lane:
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
            known = Lane(platform, started=at)
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
                lane.steps.setdefault(user_number, Row("", shown(instruction), user_number))
        else:
            number = event.number - sum(1 for n in lane.internal_seen if n < event.number)
        if number not in lane.steps:
            lane.steps[number] = Row("", shown(event.instruction), number)
        row = lane.steps[number]
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
            # the per-platform builder says which platform comes next
            if switch and (self._multi() or not self._lane.steps):
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
            self._index = Row("index", self.uri or "index")
            self._index.begin(at)

    def _row_for(self, step: int | None, *, system: bool = False) -> Row:
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
            lane.push = Row("push", lane.tag or self.uri or "push")
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
                               row_label(where, lane.total() if lane else None),
                               event.exit_code, lines, lane.platform if lane else "")
        self._end(event.time, "failed")

    def _end(self, at: float, status: str) -> None:
        final = {"built": "done", "failed": "failed", "cancelled": "cancelled"}[status]
        for lane in self._lanes:
            lane.end(at, final)
        if self._index is not None and self._index.state == "running":
            self._index.close(at, final)
        self.status, self.ended_at = status, at

    def _all_rows(self) -> list[tuple[Lane | None, Row]]:
        rows: list[tuple[Lane | None, Row]] = [
            (lane, row) for lane in self._lanes for row in lane.rows()]
        return rows + ([(None, self._index)] if self._index is not None else [])

    # -- viewing ------------------------------------------------------------------------------

    def label_of(self, builder_number: int) -> str | None:
        """The label of the row the builder's step ``builder_number`` went to (in the platform
        building now)."""
        with self._lock:
            row = self._lane.latest.get(builder_number)
            return row_label(row, self._lane.total()) if row is not None else None

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
                status=self.status, header=header(self.status, elapsed, done, total, self.failure),
                elapsed=elapsed, done=done, total=total, steps=steps, uri=self.uri,
                builder=self.builder, reason=self.reason, digest=self.digest, pushed=self.pushed,
                failure=self.failure, clipped=self.clipped, lines=self.lines, current=current,
                platforms=platforms)

    def _view_lane(self, lane: Lane, steps: tuple[StepView, ...], now: float) -> PlatformView:
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
                            lane_summary(status, elapsed, done, total, failed), elapsed, done,
                            total)

    def _shown(self, lane: Lane, row: Row) -> bool:
        if row is lane.prepare:  # only when it did something
            return row.segments > 0 or row.lines > 0
        return True

    def _view_row(self, row: Row, total: int | None, now: float, tail: int,
                  platform: str) -> StepView:
        label = row.label or row_label(row, total) or "?"
        state = row.state
        opened = state in ("running", "failed")
        lines = tuple(row.tail)[-tail:] if state == "running" else tuple(row.tail)
        return StepView(label, row.instruction, state, row.duration(now), row.lines,
                        lines if opened else tuple(row.tail), opened, row.number, platform)
