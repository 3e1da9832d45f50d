"""The build service's wire protocol, shared by the service and the remote client.

One module both sides import, so they cannot drift: the API paths, the build status names, the
typed build record as it travels (``BuildInfo``) and the Server-Sent Events codec.

Each build event is one SSE message: ``id: <seq>`` and ``data: <event JSON>``. Lines starting
with ``:`` are comments (keepalives), and ``retry:`` sets the browser's reconnect delay.

>>> paths.events("b1")
'/imagebuild/api/builds/b1/events'
>>> BuildStatus("succeeded").terminal
True
>>> text = format_event(1, '{"kind": "log", "text": "hi"}') + KEEPALIVE
>>> [event.text for event in parse_sse(iter(text.split("\\n")))]
['hi']

Nothing here imports the service (jupyter_server) or a database driver.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from imagebuild_nb.events import BuildEvent

# -- paths ----------------------------------------------------------------------------------
API = "/imagebuild/api"
PAGES = "/imagebuild/builds"


class _Paths:
    """Every route of the service, relative to the server's base URL."""

    api = API
    health = f"{API}/health"
    builds = f"{API}/builds"
    existence = f"{API}/existence"
    openapi = f"{API}/openapi.yaml"

    @staticmethod
    def context(digest: str) -> str:
        return f"{API}/contexts/{digest}"

    @staticmethod
    def build(build_id: str) -> str:
        return f"{API}/builds/{build_id}"

    @staticmethod
    def events(build_id: str) -> str:
        return f"{API}/builds/{build_id}/events"

    @staticmethod
    def cancel(build_id: str) -> str:
        return f"{API}/builds/{build_id}/cancel"

    @staticmethod
    def log(build_id: str) -> str:
        return f"{API}/builds/{build_id}/log"

    @staticmethod
    def page(build_id: str) -> str:
        return f"{PAGES}/{build_id}"


paths = _Paths()


# -- status ---------------------------------------------------------------------------------
class BuildStatus(str, enum.Enum):
    """A build's state; the values are the strings on the wire and in every store."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def terminal(self) -> bool:
        return self not in (BuildStatus.QUEUED, BuildStatus.RUNNING)

    def __str__(self) -> str:
        return self.value


TERMINAL_STATUSES = frozenset(status.value for status in BuildStatus if status.terminal)
ALL_STATUSES = tuple(status.value for status in BuildStatus)


# -- records --------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildInfo:
    """A build as the service reports it (``GET /builds/<id>``, the answer to a submission).

    Unknown fields from a newer service are kept in ``extra`` rather than refused, so an old
    client still reads a new service.

    >>> info = BuildInfo.from_dict({"id": "b1", "uri": "r/x:1", "status": "running"})
    >>> (info.status, info.terminal, info.to_dict()["status"])
    (<BuildStatus.RUNNING: 'running'>, False, 'running')
    """

    id: str
    uri: str
    status: BuildStatus = BuildStatus.QUEUED
    context: str = ""
    dockerfile: str = "Dockerfile"
    push: bool = True
    force: bool = False
    spec: dict[str, Any] | None = None
    platform: str | None = None  # os/arch[,os/arch...]; None: the engine's own
    created: float | None = None
    started: float | None = None
    finished: float | None = None
    digest: str | None = None
    image_id: str | None = None
    error: str | None = None
    step: str | None = None
    exit_code: int | None = None
    log_tail: tuple[str, ...] = ()
    events: int = 0
    submissions: int = 1
    # Who submitted the build (a JupyterHub user; None: the standalone service's shared token)
    # and who joined it since with an identical submission.
    owner: str | None = None
    joined_by: tuple[str, ...] = ()
    # Farm fields: which attempt runs (1-based) and on which engine; 0 / None when embedded.
    attempt: int = 0
    engine: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    deduplicated: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.status, BuildStatus):  # a store's or a caller's plain string
            object.__setattr__(self, "status", BuildStatus(self.status))

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildInfo:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {name: data[name] for name in names if name in data}
        values["log_tail"] = tuple(values.get("log_tail") or ())
        values["joined_by"] = tuple(values.get("joined_by") or ())
        values["links"] = dict(values.get("links") or {})
        extra = {key: value for key, value in data.items() if key not in names}
        return cls(**values, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        extra = data.pop("extra")
        data["status"] = self.status.value
        data["log_tail"] = list(self.log_tail)
        data["joined_by"] = list(self.joined_by)
        if self.deduplicated is None:
            data.pop("deduplicated")
        return {**extra, **data}


def links(base_url: str, build_id: str) -> dict[str, str]:
    """The ``links`` object of a build record, under the server's base URL."""
    base = base_url.rstrip("/")
    return {
        "self": base + paths.build(build_id),
        "events": base + paths.events(build_id),
        "page": base + paths.page(build_id),
    }


# -- Server-Sent Events ---------------------------------------------------------------------
KEEPALIVE = ": keepalive\n\n"
RETRY = "retry: 2000\n\n"


def format_event(seq: int, data: str) -> str:
    """One SSE message; ``data`` is single-line JSON (json.dumps never emits raw newlines)."""
    return f"id: {seq}\ndata: {data}\n\n"


def parse_sse(lines: Iterator[str]) -> Iterator[BuildEvent]:
    """Build events from SSE lines; the ``id`` becomes the event's ``seq``."""
    data: list[str] = []
    event_id: str | None = None
    for line in lines:
        if not line:
            if data:
                values = json.loads("\n".join(data))
                if event_id is not None and event_id.isdigit():
                    values["seq"] = int(event_id)
                yield BuildEvent.from_dict(values)
            data, event_id = [], None
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "id":
                event_id = value


def last_event_id(header: str | None, after: int = 0) -> int:
    """The resume point from a ``Last-Event-ID`` header and an ``?after=`` value.

    >>> last_event_id("7", 3), last_event_id(None, 3)
    (7, 3)
    """
    if not header:
        return after
    if not header.isdigit():
        raise ValueError("Last-Event-ID must be a non-negative integer")
    return max(after, int(header))


__all__ = [
    "ALL_STATUSES",
    "API",
    "BuildInfo",
    "BuildStatus",
    "KEEPALIVE",
    "PAGES",
    "RETRY",
    "TERMINAL_STATUSES",
    "format_event",
    "last_event_id",
    "links",
    "parse_sse",
    "paths",
]
