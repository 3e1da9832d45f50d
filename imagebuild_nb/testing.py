"""Scripted parts for the engine's seams, for tests, demos and benchmarks (like httpx's
``MockTransport``): the real :class:`~imagebuild_nb.engine.ImageBuildEngine` and
:class:`~imagebuild_nb.build.ImageBuild` run; only the builder and the registry are played.

>>> from imagebuild_nb import Image, ImageBuildEngine
>>> from imagebuild_nb.events import LogLine
>>> registry = ScriptedRegistry()
>>> engine = ImageBuildEngine(builders={"local": ScriptedBuilder([LogLine(text="hi")],
...                                                              registry=registry)},
...                           checker=registry)
>>> img = Image.from_base("localhost:5001/base:1", name="demo").with_commands(["true"])
>>> engine.check(img).state
'missing'
>>> build = engine.build(img)
>>> build.status, engine.check(img).state
('built', 'exists')
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from imagebuild_nb.builders.base import BuildRequest
from imagebuild_nb.checkers import ExistenceResult
from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    is_terminal,
)

Script = Sequence[BuildEvent] | Callable[[BuildRequest], Iterable[BuildEvent]]


class ScriptedRegistry:
    """An existence checker answering from a dict of ``uri -> digest`` (builds add to it).

    ``error`` makes every check raise it (a registry that fails in a way a real one cannot be
    asked to); ``delay`` makes checks slow.
    """

    def __init__(self, existing: dict[str, str] | None = None, *, delay: float = 0.0,
                 error: BaseException | None = None) -> None:
        self.existing = dict(existing or {})
        self.delay, self.error = delay, error
        self.checks = 0

    def check(self, ref: str, *, spec_hash: str | None = None,
              platform: str | None = None) -> ExistenceResult:
        self.checks += 1
        if self.delay:
            threading.Event().wait(self.delay)
        if self.error is not None:
            raise self.error
        digest = self.existing.get(ref)
        return ExistenceResult(ref, "exists" if digest else "missing", digest, (), None,
                               "scripted", self.delay)

    def invalidate(self, ref: str | None = None) -> int:
        return 0

    def close(self) -> None:
        pass


class ScriptedBuilder:
    """A builder that plays ``script`` (events, or ``request -> events``) with ``delay`` seconds
    between events, stops at once on cancel, and finishes with a digest unless the script ends
    the build itself. Successful builds are added to ``registry``."""

    name, driver = "local", "scripted"

    def __init__(self, script: Script = (), *, delay: float = 0.0,
                 registry: ScriptedRegistry | None = None,
                 unavailable: BaseException | None = None) -> None:
        self.script, self.delay, self.registry = script, delay, registry
        self.unavailable = unavailable
        self.requests: list[BuildRequest] = []

    def ensure_available(self) -> None:
        if self.unavailable is not None:
            raise self.unavailable

    def describe(self, request: BuildRequest) -> str:
        return f"scripted build of {request.primary_tag}"

    def build(self, request: BuildRequest, cancel: threading.Event) -> Iterator[BuildEvent]:
        self.requests.append(request)
        events = self.script(request) if callable(self.script) else list(self.script)
        for event in events:
            if cancel.is_set():
                yield BuildCancelled(message="cancelled by the user")
                return
            event = dataclasses.replace(event, time=time.time())  # stamped as it happens
            yield event
            if is_terminal(event):
                if isinstance(event, BuildFinished):
                    self._built(request.primary_tag, event.digest or "")
                return
            if self.delay and cancel.wait(self.delay):
                yield BuildCancelled(message="cancelled by the user")
                return
        if cancel.is_set():
            yield BuildCancelled(message="cancelled by the user")
            return
        digest = "sha256:" + hashlib.sha256(request.primary_tag.encode()).hexdigest()
        self._built(request.primary_tag, digest)
        yield BuildFinished(uri=request.primary_tag, digest=digest, pushed=request.push)

    def _built(self, uri: str, digest: str) -> None:
        if self.registry is not None:
            self.registry.existing[uri] = digest


def failing(message: str, *, exit_code: int = 1, lines: tuple[str, ...] = ()) -> BuildFailed:
    """The terminal event of a failed scripted build."""
    return BuildFailed(message=message, exit_code=exit_code, lines=lines)
