"""A scripted engine that plays real build events: for widget tests, demos and benchmarks.

It has the shape the widget needs (:mod:`~imagebuild_nb.notebook.widget_engine`): ``check``,
``build(..., wait=False)`` returning a handle with ``subscribe``/``wait``/``cancel``. A build
plays its script on a thread; a successful build makes the image "exist" for later checks.

>>> from imagebuild_nb.events import LogLine
>>> engine = ScriptedEngine(script=[LogLine(text="hello")])
>>> engine.check("localhost:5001/demo:1").state
'missing'
>>> build = engine.build("localhost:5001/demo:1", wait=True)
>>> build.status, engine.check("localhost:5001/demo:1").state
('built', 'exists')
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from imagebuild_nb.errors import BuildCancelledError, BuildFailedError
from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    BuildStarted,
    is_terminal,
)
from imagebuild_nb.notebook.widget_engine import uri_of

Script = Callable[[str], Iterable[BuildEvent]]


@dataclass(frozen=True)
class ScriptedExistence:
    state: str
    digest: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ScriptedDryRun:
    dockerfile: str
    context_files: tuple[str, ...] = ()
    command: str = "scripted build"


class ScriptedBuild:
    """A build handle whose events come from a script; ``delay`` seconds between events."""

    def __init__(self, uri: str, events: Iterable[BuildEvent], *, delay: float = 0.0,
                 on_success: Callable[[str], None] | None = None) -> None:
        self.uri = uri
        self.status = "running"
        self.digest: str | None = None
        self.events: list[BuildEvent] = []
        self.dry_run: ScriptedDryRun | None = None
        self._source = events
        self._delay = delay
        self._on_success = on_success
        self._subscribers: list[Callable[[BuildEvent], None]] = []
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._play, name="scripted-build", daemon=True)

    def start(self) -> ScriptedBuild:
        self._thread.start()
        return self

    def subscribe(self, callback: Callable[[BuildEvent], None]) -> None:
        with self._lock:
            past = list(self.events)
            self._subscribers.append(callback)
        for event in past:
            callback(event)

    def wait(self, timeout: float | None = None) -> ScriptedBuild:
        if not self._done.wait(timeout):
            raise TimeoutError(f"build of {self.uri} still running after {timeout} s")
        if self.status == "failed":
            failed = next(e for e in self.events if isinstance(e, BuildFailed))
            raise BuildFailedError(failed.message, step=failed.step, exit_code=failed.exit_code,
                                   log_tail=failed.lines)
        if self.status == "cancelled":
            raise BuildCancelledError(f"build of {self.uri} was cancelled")
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def _emit(self, event: BuildEvent) -> None:
        with self._lock:
            event = event.numbered(len(self.events) + 1)
            self.events.append(event)
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(event)

    def _play(self) -> None:
        try:
            for event in self._source:
                if self._cancel.is_set():
                    self._emit(BuildCancelled(message="cancelled by the user"))
                    self.status = "cancelled"
                    return
                self._emit(event)
                if isinstance(event, BuildFinished):
                    self.digest = event.digest
                    self.status = "built"
                    if self._on_success is not None:
                        self._on_success(event.digest or "")
                    return
                if is_terminal(event):
                    self.status = "failed" if isinstance(event, BuildFailed) else "cancelled"
                    return
                if self._delay and self._cancel.wait(self._delay):
                    continue  # cancelled while sleeping: the next loop turn reports it
            if self._cancel.is_set():
                self._emit(BuildCancelled(message="cancelled by the user"))
                self.status = "cancelled"
                return
            digest = "sha256:" + hashlib.sha256(self.uri.encode()).hexdigest()
            self._emit(BuildFinished(uri=self.uri, digest=digest, pushed=True))
            self.digest, self.status = digest, "built"
            if self._on_success is not None:
                self._on_success(digest)
        finally:
            self._done.set()


class ScriptedEngine:
    """Plays ``script`` (events, or ``uri -> events``) for every build; remembers built images."""

    def __init__(self, *, script: Sequence[BuildEvent] | Script = (), delay: float = 0.0,
                 existing: dict[str, str] | None = None, check_delay: float = 0.0,
                 check_error: BaseException | None = None,
                 build_error: BaseException | None = None) -> None:
        self.script = script
        self.delay = delay
        self.existing = dict(existing or {})
        self.check_delay = check_delay
        self.check_error = check_error
        self.build_error = build_error
        self.builds: list[ScriptedBuild] = []

    def check(self, image: Any) -> ScriptedExistence:
        if self.check_delay:
            time.sleep(self.check_delay)
        if self.check_error is not None:
            raise self.check_error
        uri = uri_of(image)
        if uri in self.existing:
            return ScriptedExistence("exists", digest=self.existing[uri])
        return ScriptedExistence("missing")

    def build(self, image: Any, builder: str | None = None, dry_run: bool = False,
              force: bool = False, wait: bool = True) -> ScriptedBuild:
        if self.build_error is not None:
            raise self.build_error
        uri = uri_of(image)
        if dry_run:
            handle = ScriptedBuild(uri, ())
            handle.dry_run = ScriptedDryRun(f"FROM scratch\nLABEL image={uri}\n", ("Dockerfile",))
            handle.status = "dry-run"
            handle._done.set()
            return handle
        events = self.script(uri) if callable(self.script) else list(self.script)
        started = BuildStarted(uri=uri, builder=builder or "local", driver="scripted",
                               reason="force" if force else "missing")
        handle = ScriptedBuild(uri, [started, *events], delay=self.delay,
                               on_success=lambda digest: self.existing.__setitem__(uri, digest))
        self.builds.append(handle.start())
        if wait:
            handle.wait()
        return handle
