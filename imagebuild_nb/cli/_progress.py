"""Build progress for a terminal: a BuildKit-like frame on a TTY, plain lines anywhere else.

Both draw the shared progress model (:mod:`imagebuild_nb.progress`). On a TTY the frame (header,
one row per step, the running step's last lines) is redrawn in place and stays as the summary.
Anywhere else (CI logs, pipes, files) the whole log is printed as plain lines, with a header per
step in the views' numbering, and the same summary at the end; no ANSI codes, no carriage
returns. ``full_log=True`` (``imagebuild logs``) prints the plain log on a TTY too.

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

import shutil
import time
from typing import IO

from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    CacheHit,
    LogLine,
    OutputClipped,
    PushProgress,
    StepStarted,
)
from imagebuild_nb.progress import plan, text
from imagebuild_nb.progress.model import Progress
from imagebuild_nb.progress.view import View

_UP_AND_CLEAR = "\x1b[{n}F\x1b[J"
_REDRAW_EVERY = 0.1


class TerminalProgress:
    """Consumes build events and writes them to ``out`` (stderr for ``build``).

    A :class:`~imagebuild_nb.progress.follow.Sink`; ``feed``/``tick`` serve callers that
    iterate events themselves.
    """

    def __init__(self, out: IO[str], *, tty: bool, show_failure: bool = False,
                 full_log: bool = False) -> None:
        self.out = out
        self.tty = tty
        self.frame_mode = tty and not full_log
        # ``build`` reports a failure itself (step, exit code, log tail); ``logs`` has only this.
        self.show_failure = show_failure
        self.progress = Progress()
        self._drawn = 0  # lines of the frame on screen
        self._last_draw = 0.0
        self._pushed: set[tuple[str, str]] = set()
        self._summarised = False

    # -- the Sink protocol ------------------------------------------------------------------

    def event(self, event: BuildEvent, progress: Progress) -> None:
        self.progress = progress
        if not self.frame_mode:
            line = self._line_for(event, progress)
            if line is not None:
                self._write(line)
        if event.kind in ("finished", "failed", "cancelled"):
            self.draw(progress.view())

    def draw(self, view: View) -> None:
        if self.frame_mode:
            self._redraw(view)
        elif view.finished and not self._summarised:
            self._summarised = True
            self._write("")
            for line in text.frame(view, width=_width(), tail=0 if not self.show_failure
                                   else 12):
                if line.startswith("error: ") and not self.show_failure:
                    continue  # ``build`` prints the error with its hint right after
                self._write(line)

    def note(self, line: str) -> None:
        """A line of our own (e.g. "cancelling ...") above the frame."""
        self._clear()
        self._write(line)
        if self.frame_mode:
            self._redraw(self.progress.view(), force=True)

    # -- feeding by hand ----------------------------------------------------------------------

    def feed(self, event: BuildEvent) -> None:
        self.progress.feed(event)
        self.event(event, self.progress)
        self.tick(force=isinstance(event, StepStarted))

    def tick(self, *, force: bool = False) -> None:
        """Redraw the frame (TTY only) so its clock moves; called on idle ticks."""
        if self.frame_mode:
            self._redraw(self.progress.view(), force=force)

    def close(self) -> None:
        self.out.flush()

    # -- drawing ------------------------------------------------------------------------------

    def _redraw(self, view: View, *, force: bool = True) -> None:
        now = time.monotonic()
        if not force and not view.finished and now - self._last_draw < _REDRAW_EVERY:
            return
        self._last_draw = now
        width = _width() - 1  # a full-width line wraps on some terminals
        lines = text.frame(view, width=width, tail=5 if not view.finished else 12)
        if view.finished and not self.show_failure:
            lines = [line for line in lines if not line.startswith("error: ")]
        self._clear()
        self.out.write("".join(f"{line}\n" for line in lines))
        self.out.flush()
        self._drawn = len(lines)

    def _clear(self) -> None:
        if self._drawn:
            self.out.write(_UP_AND_CLEAR.format(n=self._drawn))
            self._drawn = 0

    def _line_for(self, event: BuildEvent, progress: Progress) -> str | None:
        if isinstance(event, LogLine):
            return f"  {event.text.rstrip()}"
        if isinstance(event, StepStarted):
            label = progress.label_of(event.number) or str(event.number)
            return f"[{label}] {plan.shown(event.instruction)}"
        if isinstance(event, CacheHit):
            return "  cached"
        if isinstance(event, OutputClipped):
            return f"  [the builder clipped output: {event.message}]"
        if isinstance(event, PushProgress):
            key = (event.layer, event.status)
            if event.current is not None or key in self._pushed:
                return None  # byte counts only move the frame; each status is logged once
            self._pushed.add(key)
            return f"[push] {event.layer[:12]} {event.status}".rstrip()
        if isinstance(event, BuildCancelled):
            return f"Cancelled: {event.message}"
        if isinstance(event, BuildFailed) and self.show_failure:
            code = f" (exit code {event.exit_code})" if event.exit_code is not None else ""
            return f"Failed{code}: {event.message}"
        return None

    def _write(self, line: str) -> None:
        self.out.write(f"{line}\n")
        self.out.flush()


def _width() -> int:
    # Rows are padded to this width: past 90 columns the durations drift too far right.
    return min(shutil.get_terminal_size((100, 20)).columns, 90)
