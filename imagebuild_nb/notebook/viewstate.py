"""What the widget shows, as an immutable value folded from build events and widget actions.

:func:`reduce` is pure: the flusher folds queued messages into a :class:`ViewState` and renders
the result, so every state transition can be tested without widgets, threads or a kernel.

>>> from imagebuild_nb.events import BuildFinished, StepStarted
>>> state = reduce(ViewState(), BuildRequested(builder="local", dry_run=False, force=False, at=0.0))
>>> state = reduce(state, StepStarted(number=2, total=5, instruction="RUN make"))
>>> (state.status, state.step, state.total)
('building', 2, 5)
>>> reduce(state, BuildFinished(uri="r/x:1", digest="sha256:ab")).status
'built'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    BuildStarted,
    OutputClipped,
    PushProgress,
    StepStarted,
)

Status = Literal[
    "not-checked", "unknown", "checking", "exists", "missing", "building", "built", "failed",
    "cancelled", "dry-run",
]
BUSY: frozenset[str] = frozenset({"checking", "building"})


@dataclass(frozen=True)
class CheckStarted:
    at: float


@dataclass(frozen=True)
class CheckDone:
    state: str  # "exists" | "missing" | "unknown"
    digest: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class BuildRequested:
    builder: str
    dry_run: bool
    force: bool
    at: float


@dataclass(frozen=True)
class BuildSubmitted:
    """The engine accepted the build; ``run_url`` is the remote build's page, if any."""

    run_url: str | None = None
    build_id: str | None = None


@dataclass(frozen=True)
class DryRunReady:
    dockerfile: str
    summary: str = ""
    at: float = 0.0


@dataclass(frozen=True)
class BuildSettled:
    """What the handle reported once it ended; fills gaps the event stream left open."""

    status: str  # "built" | "exists" | "failed" | "cancelled"
    digest: str | None = None
    message: str = ""
    at: float = 0.0


@dataclass(frozen=True)
class CancelRequested:
    pass


@dataclass(frozen=True)
class Problem:
    """An error raised by an action or a callback, shown as a readable message."""

    message: str
    during: Literal["check", "build", "cancel", "widget"] = "widget"
    at: float = 0.0


@dataclass(frozen=True)
class Failure:
    message: str
    step: str | None = None
    exit_code: int | None = None
    lines: tuple[str, ...] = ()


Message = (
    BuildEvent | CheckStarted | CheckDone | BuildRequested | BuildSubmitted | DryRunReady
    | BuildSettled | CancelRequested | Problem
)


@dataclass(frozen=True)
class ViewState:
    status: Status = "not-checked"
    digest: str | None = None
    detail: str = ""
    builder: str = "local"
    step: int | None = None
    total: int | None = None
    instruction: str = ""
    started_at: float | None = None
    ended_at: float | None = None
    cancelling: bool = False
    clipped: int = 0
    push: str = ""
    failure: Failure | None = None
    dockerfile: str | None = None
    dry_run_summary: str = ""
    run_url: str | None = None
    problem: str | None = None

    @property
    def busy(self) -> bool:
        return self.status in BUSY

    def elapsed(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else now
        return max(0.0, end - self.started_at)


def reduce(state: ViewState, message: Message) -> ViewState:
    """The next state after ``message``; unknown messages leave the state unchanged."""
    replace = dataclasses.replace
    if isinstance(message, CheckStarted):
        return replace(state, status="checking", detail="", problem=None)
    if isinstance(message, CheckDone):
        status: Status = message.state if message.state in ("exists", "missing") else "unknown"  # type: ignore[assignment]
        return replace(state, status=status, digest=message.digest, detail=message.reason)
    if isinstance(message, BuildRequested):
        return ViewState(
            status="building", builder=message.builder, started_at=message.at,
            detail="dry run" if message.dry_run else ("forced rebuild" if message.force else ""),
        )
    if isinstance(message, BuildSubmitted):
        return replace(state, run_url=message.run_url or state.run_url)
    if isinstance(message, CancelRequested):
        return replace(state, cancelling=state.status == "building")
    if isinstance(message, Problem):
        return _problem(state, message)
    if isinstance(message, DryRunReady):
        return replace(
            state, status="dry-run", dockerfile=message.dockerfile,
            dry_run_summary=message.summary, ended_at=message.at or state.ended_at,
        )
    if isinstance(message, BuildSettled):
        return _settled(state, message)
    if isinstance(message, BuildEvent):
        return _event(state, message)
    return state


def _event(state: ViewState, event: BuildEvent) -> ViewState:
    replace = dataclasses.replace
    if isinstance(event, BuildStarted):
        reason = f"build reason: {event.reason}" if event.reason else state.detail
        return replace(state, status="building", detail=reason)
    if isinstance(event, StepStarted):
        return replace(state, step=event.number, total=event.total or state.total,
                       instruction=event.instruction, push="")
    if isinstance(event, OutputClipped):
        return replace(state, clipped=state.clipped + 1)
    if isinstance(event, PushProgress):
        done = f" {event.current * 100 // event.total}%" if event.current and event.total else ""
        return replace(state, push=f"pushing {event.layer[:12]}: {event.status}{done}")
    if isinstance(event, BuildFinished):
        return replace(state, status="built", digest=event.digest or state.digest,
                       ended_at=event.time, cancelling=False, push="")
    if isinstance(event, BuildFailed):
        failure = Failure(event.message, event.step, event.exit_code, tuple(event.lines))
        return replace(state, status="failed", failure=failure, ended_at=event.time,
                       cancelling=False)
    if isinstance(event, BuildCancelled):
        return replace(state, status="cancelled", detail=event.message, ended_at=event.time,
                       cancelling=False)
    return state


def _settled(state: ViewState, message: BuildSettled) -> ViewState:
    replace = dataclasses.replace
    if state.status not in BUSY:  # the event stream already said how it ended
        return replace(state, digest=state.digest or message.digest)
    ended = message.at or state.ended_at
    if message.status == "failed":
        return replace(state, status="failed", ended_at=ended, cancelling=False,
                       failure=state.failure or Failure(message.message or "build failed"))
    status: Status = (message.status  # type: ignore[assignment]
                      if message.status in ("built", "exists", "cancelled") else "unknown")
    return replace(state, status=status, digest=message.digest or state.digest, ended_at=ended,
                   detail=message.message or state.detail, cancelling=False)


def _problem(state: ViewState, problem: Problem) -> ViewState:
    replace = dataclasses.replace
    if problem.during == "check" and state.status == "checking":
        return replace(state, status="unknown", detail="check failed", problem=problem.message)
    if problem.during == "build" and state.status == "building":
        return replace(state, status="failed", failure=Failure(problem.message),
                       ended_at=problem.at or state.ended_at, cancelling=False)
    return replace(state, problem=problem.message)
