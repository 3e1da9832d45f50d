"""The mutable rows :class:`~imagebuild_nb.progress.model.Progress` folds events into.

A :class:`Row` is one line of the steps view (a user's step, "prepare", "push" or a
multi-platform build's "index") with its state, its time and the last lines of its log; a
:class:`Lane` is one platform's rows ("" for a single-platform build, the only lane). Rows keep
only bounded state: ``TAIL_LINES`` lines of at most ``LINE_CHARS`` characters each.

>>> row = Row("", "RUN make", number=2)
>>> row.begin(1.0); row.add("compiling"); row.close(3.5)
>>> row.state, row.duration(now=9.0), row.lines, row_label(row, 5)
('done', 2.5, 1, '2/5')
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from imagebuild_nb.progress.plan import InternalMarker

TAIL_LINES = 12  # per step, in memory; a view shows fewer while running
LINE_CHARS = 400


@dataclass
class Row:
    """One row of the steps view; ``label`` is "" for a user's step (numbered by ``number``)."""

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
        self.tail.append(text if len(text) <= LINE_CHARS else text[:LINE_CHARS] + " …")


@dataclass
class Lane:
    """The rows of one platform's build ("" for a single-platform build: the only lane)."""

    platform: str = ""
    prepare: Row = field(default_factory=lambda: Row("prepare", "prepare"))
    push: Row | None = None
    steps: dict[int, Row] = field(default_factory=dict)  # the user's step number -> row
    by_builder: dict[tuple[str, int], Row] = field(default_factory=dict)  # (stage, number)
    latest: dict[int, Row] = field(default_factory=dict)  # builder's number -> its last row
    internal_seen: set[int] = field(default_factory=set)
    marker: InternalMarker = field(default_factory=InternalMarker)
    builder_total: int | None = None
    user_total: int | None = None
    last: Row | None = None
    started: float | None = None
    ended: float | None = None
    tag: str = ""  # where the per-platform builder pushes this platform's image

    def rows(self) -> list[Row]:
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


def row_label(row: Row | None, total: int | None) -> str | None:
    """The label the row is shown with: "2/5" (or "2" while the total is unknown), "push"."""
    if row is None:
        return None
    if row.number is None:
        return row.label
    return f"{row.number}/{total}" if total else str(row.number)
