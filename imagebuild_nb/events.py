"""The build event model: one stream of events for every builder and every consumer.

Builders produce events; the engine numbers them (``seq``) and fans them out to the magic, the
widget, the CLI and the build service (which sends them as SSE with ``seq`` as the event id).

>>> event = LogLine(text="Collecting six")
>>> BuildEvent.from_dict(event.to_dict()) == event
True
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

_KINDS: dict[str, type[BuildEvent]] = {}


@dataclass(frozen=True)
class BuildEvent:
    """Base class. ``seq`` is assigned by the engine (0 = not yet numbered); ``time`` is epoch s."""

    kind: ClassVar[str] = "event"
    seq: int = field(default=0, kw_only=True)
    time: float = field(default_factory=time.time, kw_only=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _KINDS[cls.kind] = cls

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["kind"] = self.kind
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> BuildEvent:
        values = dict(data)
        kind = values.pop("kind", None)
        cls = _KINDS.get(str(kind))
        if cls is None:
            raise ValueError(f"unknown build event kind {kind!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown fields for {kind} event: {sorted(unknown)}")
        if "lines" in values and isinstance(values["lines"], list):
            values["lines"] = tuple(values["lines"])
        return cls(**values)

    def numbered(self, seq: int) -> BuildEvent:
        return dataclasses.replace(self, seq=seq)


@dataclass(frozen=True)
class BuildStarted(BuildEvent):
    kind: ClassVar[str] = "started"
    uri: str
    builder: str
    driver: str = ""
    # Why a build happens ("missing", "force", "latest tag", "existence unknown: ...").
    reason: str = ""
    # The Dockerfile being built, so views can number the user's steps and fold the engine's own.
    dockerfile: str = ""


@dataclass(frozen=True)
class StepStarted(BuildEvent):
    kind: ClassVar[str] = "step"
    number: int
    total: int | None
    instruction: str
    stage: str = ""  # BuildKit numbers steps per stage ("stage-1", a FROM's AS name)


@dataclass(frozen=True)
class LogLine(BuildEvent):
    kind: ClassVar[str] = "log"
    text: str
    step: int | None = None
    stream: str = "stdout"


@dataclass(frozen=True)
class OutputClipped(BuildEvent):
    """The builder dropped output (e.g. BuildKit's log limit); the log is incomplete here."""

    kind: ClassVar[str] = "clipped"
    message: str
    step: int | None = None


@dataclass(frozen=True)
class CacheHit(BuildEvent):
    kind: ClassVar[str] = "cached"
    step: int
    instruction: str = ""


@dataclass(frozen=True)
class PushProgress(BuildEvent):
    kind: ClassVar[str] = "push"
    layer: str
    status: str
    current: int | None = None
    total: int | None = None


@dataclass(frozen=True)
class BuildFinished(BuildEvent):
    kind: ClassVar[str] = "finished"
    uri: str
    digest: str | None = None
    image_id: str | None = None
    pushed: bool = False
    # A multi-platform build: each platform's image digest (``digest`` is the index's).
    platform_digests: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildFailed(BuildEvent):
    kind: ClassVar[str] = "failed"
    message: str
    step: str | None = None
    exit_code: int | None = None
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildCancelled(BuildEvent):
    kind: ClassVar[str] = "cancelled"
    message: str = "cancelled"


TERMINAL_KINDS = frozenset({BuildFinished.kind, BuildFailed.kind, BuildCancelled.kind})


def is_terminal(event: BuildEvent) -> bool:
    return event.kind in TERMINAL_KINDS
