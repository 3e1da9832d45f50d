"""Live build progress for a terminal: log lines plus, on a tty, one status line kept at the bottom.

On a tty the status line (``step 2/3 · 4.1s · RUN pip install ...``) is redrawn in place and
step headers are bold; anywhere else (CI logs, pipes, files) the output is plain lines with no
ANSI codes and no carriage returns, so logs read the same in every viewer.

>>> import io
>>> from imagebuild_nb.events import StepStarted, LogLine
>>> out = io.StringIO()
>>> progress = TerminalProgress(out, tty=False)
>>> progress.feed(StepStarted(number=1, total=2, instruction="RUN echo hi"))
>>> progress.feed(LogLine(text="hi"))
>>> print(out.getvalue(), end="")
[1/2] RUN echo hi
  hi
"""

from __future__ import annotations

import time
from typing import IO

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

_CLEAR_LINE = "\r\x1b[2K"
_BOLD, _DIM, _RESET = "\x1b[1m", "\x1b[2m", "\x1b[0m"
_REDRAW_EVERY = 0.1


class TerminalProgress:
    """Consumes build events and writes them to ``out`` (stderr for ``build``)."""

    def __init__(self, out: IO[str], *, tty: bool, show_failure: bool = False) -> None:
        self.out = out
        self.tty = tty
        # ``build`` reports a failure itself (step, exit code, log tail); ``logs`` has only this.
        self.show_failure = show_failure
        self._started = time.monotonic()
        self._step = "starting"
        self._instruction = ""
        self._pushed: set[tuple[str, str]] = set()
        self._status_shown = False
        self._last_draw = 0.0

    def feed(self, event: BuildEvent) -> None:
        line = self._line_for(event)
        if line is not None:
            self._write(line)
        # Redraw at once on a new step; for log lines at most every _REDRAW_EVERY (long logs).
        self.tick(force=isinstance(event, (StepStarted, BuildStarted)))

    def tick(self, *, force: bool = False) -> None:
        """Redraw the status line (tty only); called on idle ticks so the clock moves."""
        if not self.tty or (not force and time.monotonic() - self._last_draw < _REDRAW_EVERY):
            return
        self._last_draw = time.monotonic()
        elapsed = time.monotonic() - self._started
        text = " · ".join(part for part in (self._step, f"{elapsed:.1f}s", self._instruction)
                          if part)
        self.out.write(f"{_CLEAR_LINE}{_DIM}{text[:_width() - 1]}{_RESET}")
        self.out.flush()
        self._status_shown = True

    def note(self, text: str) -> None:
        """A line of our own (e.g. "cancelling ...") between the log lines."""
        self._write(text)
        self.tick(force=True)

    def close(self) -> None:
        if self._status_shown:
            self.out.write(_CLEAR_LINE)
            self._status_shown = False
        self.out.flush()

    def _line_for(self, event: BuildEvent) -> str | None:
        if isinstance(event, LogLine):
            return f"  {event.text}"
        if isinstance(event, StepStarted):
            total = f"/{event.total}" if event.total else ""
            self._step, self._instruction = f"step {event.number}{total}", event.instruction
            return self._bold(f"[{event.number}{total}] {event.instruction}")
        if isinstance(event, CacheHit):
            return f"  (cached) {event.instruction}".rstrip()
        if isinstance(event, OutputClipped):
            return f"  [the builder clipped output: {event.message}]"
        if isinstance(event, PushProgress):
            return self._push_line(event)
        if isinstance(event, BuildStarted):
            why = f" ({event.reason})" if event.reason else ""
            driver = f"/{event.driver}" if event.driver else ""
            return self._bold(f"Building {event.uri} with {event.builder}{driver}{why}")
        if isinstance(event, BuildFinished):
            self._step, self._instruction = "done", ""
            return self._bold(f"Built {event.uri}" + (" and pushed it" if event.pushed else ""))
        if isinstance(event, BuildFailed):
            self._step = "failed"
            if not self.show_failure:
                return None
            step = f" at {event.step}" if event.step else ""
            code = f" (exit code {event.exit_code})" if event.exit_code is not None else ""
            return f"Failed{step}{code}: {event.message}"
        if isinstance(event, BuildCancelled):
            self._step = "cancelled"
            return f"Cancelled: {event.message}"
        return None

    def _push_line(self, event: PushProgress) -> str | None:
        self._step, self._instruction = "pushing", f"{event.layer[:12]} {event.status}".strip()
        # Byte counts only move the status line; each (layer, status) is logged once.
        key = (event.layer, event.status)
        if event.current is not None or key in self._pushed:
            return None
        self._pushed.add(key)
        return f"  push {event.layer[:12]} {event.status}".rstrip()

    def _write(self, line: str) -> None:
        prefix = _CLEAR_LINE if self._status_shown else ""
        self._status_shown = False
        self.out.write(f"{prefix}{line}\n")
        self.out.flush()

    def _bold(self, text: str) -> str:
        return f"{_BOLD}{text}{_RESET}" if self.tty else text


def _width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 20)).columns
