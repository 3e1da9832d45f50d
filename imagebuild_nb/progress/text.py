"""Text renderers of a :class:`~imagebuild_nb.progress.model.View`: rows, frames, log text.

The same rows everywhere: the command's TTY frame and its final summary, the magic's text/plain
output, ``%imagebuild status``. A row is a mark, the label, the instruction and, on the right,
the duration (or the state when there is none to show)::

    Built in 4.2 s
     ✓ prepare                                  0.3s
     = [1/3] FROM base                        cached
     ✓ [2/3] RUN make                           3.2s

>>> from imagebuild_nb.progress.view import StepView
>>> row(StepView("2/3", "RUN make", "done", 3.21, 4, (), False, 2), width=30)
' ✓ [2/3] RUN make         3.2s'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from imagebuild_nb.events import (
    BuildEvent,
    BuildFailed,
    CacheHit,
    LogLine,
    OutputClipped,
    StepStarted,
)
from imagebuild_nb.progress.model import Progress
from imagebuild_nb.progress.plan import shown as plain_instruction
from imagebuild_nb.progress.states import MARKS, label, seconds
from imagebuild_nb.progress.view import PlatformView, StepView, View

WIDTH = 100
INDENT = "     "


def row(step: StepView, *, width: int = WIDTH) -> str:
    """One step as a line of exactly ``width`` characters or fewer."""
    name = step.label if step.number is None else f"[{step.label}]"
    text = step.instruction if step.number is not None else (
        "" if step.instruction == step.label else step.instruction)
    right = right_column(step)
    left = f" {MARKS.get(step.state, ' ')} {name} {text}".rstrip()
    room = width - len(right) - 2
    if len(left) > room:
        left = left[: max(0, room - 1)] + "…"
    return f"{left:<{room}}  {right}".rstrip() if right else left[:width]


def right_column(step: StepView) -> str:
    """Duration, or the state's word when the duration says nothing (queued, cached)."""
    if step.state in ("queued", "skipped", "cached"):
        return label(step.state)
    duration = seconds(step.duration)
    if step.state in ("failed", "cancelled"):
        return f"{label(step.state)} {duration}".strip()
    return duration


def frame(view: View, *, width: int = WIDTH, tail: int = 5) -> list[str]:
    """The whole picture: header, rows, the open rows' last lines, the failure's message.

    A multi-platform build shows each platform's line (``linux/arm64  Building 1/3 4.2s``)
    above that platform's rows, then the index's row.
    """
    lines = [view.header]
    for platform, steps in sections(view):
        if platform is not None:
            lines.append(_clip(platform_line(platform), width))
        for step in steps:
            lines.append(row(step, width=width))
            if step.open:
                shown = step.tail[-tail:] if step.state == "running" else step.tail
                lines.extend(_clip(f"{INDENT}{text}", width) for text in shown)
    if view.failure is not None and view.failure.message:
        lines.append(_clip(f"error: {view.failure.message.splitlines()[0]}", width))
    if view.clipped:
        lines.append(_clip("note: the builder clipped part of the output; the log is "
                           "incomplete", width))
    return lines


def sections(view: View) -> list[tuple[PlatformView | None, tuple[StepView, ...]]]:
    """The rows grouped under their platform; one group without a platform otherwise (and
    for the rows of the whole build, like the index push, after the platforms)."""
    groups: list[tuple[PlatformView | None, tuple[StepView, ...]]] = [
        (platform, tuple(s for s in view.steps if s.platform == platform.platform))
        for platform in view.platforms]
    known = {platform.platform for platform in view.platforms}
    rest = tuple(s for s in view.steps if s.platform not in known)
    return groups + [(None, rest)] if rest or not groups else groups


def platform_line(platform: PlatformView) -> str:
    """``linux/amd64  Built 3/3 in 2.1 s``."""
    return f"{platform.platform}  {platform.summary}"


def status_line(view: View, *, width: int = WIDTH) -> str:
    """One line: ``Building 3.2s (1/3) · [2/3] RUN make``."""
    text = view.header + (f" · {view.current}" if view.current else "")
    return _clip(text, width)


def log_lines(events: Iterable[BuildEvent]) -> Iterator[str]:
    """A build's log with a header line per step, numbered as the views number them.

    >>> from imagebuild_nb.events import StepStarted, LogLine
    >>> list(log_lines([StepStarted(number=1, total=1, instruction="RUN make"),
    ...                 LogLine(text="ok", step=1)]))
    ['── [1/1] RUN make', 'ok']
    """
    progress = Progress()
    for event in events:
        progress.feed(event)
        line = _log_line(event, progress)
        if line is not None:
            yield line


def _log_line(event: BuildEvent, progress: Progress) -> str | None:
    if isinstance(event, LogLine):
        return event.text.rstrip("\r\n")
    if isinstance(event, StepStarted):
        step = _row_of(progress, event.number)
        platform = progress.platform_of(event.number)
        where = f"{platform} " if platform else ""
        return f"── {where}{step} {plain_instruction(event.instruction)}" if step else None
    if isinstance(event, CacheHit):
        return "   cached"
    if isinstance(event, OutputClipped):
        return f"[output clipped by the builder: {event.message}]"
    if isinstance(event, BuildFailed):
        return f"── failed: {event.message.splitlines()[0] if event.message else ''}"
    return None


def _row_of(progress: Progress, builder_number: int) -> str:
    """The label views give the step the builder calls ``builder_number``."""
    name = progress.label_of(builder_number)
    return f"[{name}]" if name else ""


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
