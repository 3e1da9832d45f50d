"""Follow a running build in the foreground cell: batched log output plus one progress line.

The log goes to the cell as stream output (``print`` from the kernel's main thread lands in the
right cell), flushed a few times per second in one write, and capped: past ``max_lines`` the
cell shows a note and the rest stays on the build's full log. The progress line (step n/m,
elapsed) is one display updated in place.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO

from imagebuild_nb.events import (
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


@dataclass
class FollowPrinter:
    """Consume events; write log lines in batches; keep a one-line progress display current."""

    max_lines: int = 1000
    flush_interval: float = 0.25
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    show_progress: Callable[[str], None] | None = None
    _pending: list[str] = field(default_factory=list)
    _printed: int = 0
    _hidden: int = 0
    _last_flush: float = field(default_factory=time.monotonic)
    _started: float = field(default_factory=time.monotonic)
    _step: str = ""

    def feed(self, event: BuildEvent) -> None:
        if isinstance(event, LogLine):
            self._add(event.text)
        elif isinstance(event, StepStarted):
            total = f"/{event.total}" if event.total else ""
            self._step = f"step {event.number}{total}"
            self._add(f"[{event.number}{total}] {event.instruction}")
            self._progress()
        elif isinstance(event, CacheHit):
            self._add("    (cached)")
        elif isinstance(event, OutputClipped):
            self._add(f"    [builder clipped output: {event.message}]")
        elif isinstance(event, PushProgress):
            self._step = f"pushing {event.layer[:12]} {event.status}".strip()
            self._progress()
        elif isinstance(event, BuildStarted):
            why = f" ({event.reason})" if event.reason else ""
            self._add(f"Building {event.uri} with {event.builder}/{event.driver}{why}")
        elif isinstance(event, BuildFinished):
            self._step = "done"
            self._progress()
        elif isinstance(event, BuildFailed):
            self._step = "failed"
            self._progress()
        if time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def follow(self, events: Iterable[BuildEvent | None]) -> None:
        """Feed every event; ``None`` items are idle ticks that let pending output flush."""
        for event in events:
            if event is None:
                if self._pending and time.monotonic() - self._last_flush >= self.flush_interval:
                    self.flush()
                continue
            self.feed(event)
        self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if self._pending:
            self.out.write("\n".join(self._pending) + "\n")
            self.out.flush()
            self._pending.clear()

    def close(self, note_full_log: str = "") -> None:
        self.flush()
        if self._hidden:
            self.out.write(f"... {self._hidden} more log lines not shown here{note_full_log}\n")
            self.out.flush()

    def _add(self, line: str) -> None:
        if self._printed >= self.max_lines:
            self._hidden += 1
            return
        self._printed += 1
        self._pending.append(line)

    def _progress(self) -> None:
        if self.show_progress is not None:
            elapsed = time.monotonic() - self._started
            self.show_progress(f"{self._step} · {elapsed:.1f}s")
