"""``ImageBuild``: the result of ``ImageBuildEngine.build`` and the handle on a running build.

A handle is returned for every outcome: built, found existing, dry run, failed, cancelled.
Events are kept from the start, so late subscribers and iterators see the whole build: the
newest in memory, older ones in a spool file the build owns (:mod:`imagebuild_nb.event_log`),
so memory stays bounded however long the log is. ``close()`` (or collection) frees the file.

>>> from imagebuild_nb.events import LogLine, BuildFinished
>>> build = ImageBuild("localhost:5001/demo:1", builder="local", driver="docker-api")
>>> build.publish(LogLine(text="hello"))
>>> build.publish(BuildFinished(uri=build.uri, digest="sha256:" + "0" * 64))
>>> build.status, build.logs, [e.seq for e in build.events]
('built', 'hello', [1, 2])
>>> [e.kind for e in build.follow()]
['log', 'finished']
"""

from __future__ import annotations

import html
import logging
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from imagebuild_nb.errors import BuildCancelledError, BuildFailedError, ImageBuildError
from imagebuild_nb.event_log import EventLog
from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    LogLine,
    is_terminal,
)
from imagebuild_nb.signals import deferred_signals

log = logging.getLogger(__name__)

Status = Literal["running", "built", "exists", "dry-run", "failed", "cancelled"]
_CANCEL_WAIT = 60.0


@dataclass(frozen=True)
class DryRun:
    """What a build would do, computed without touching the engine or a registry."""

    uri: str
    dockerfile: str
    context_files: tuple[str, ...]
    command: str
    builder: str
    driver: str
    push: bool
    origin: str | None = None  # what the spec came from, e.g. "flyte.Image flyte:ab12..."
    secrets: tuple[str, ...] = ()  # the secrets' names (never values) its RUN steps read

    def __str__(self) -> str:
        files = "\n".join(f"  {name}" for name in self.context_files) or "  (empty)"
        origin = f"From: {self.origin}\n" if self.origin else ""
        secrets = f"Secrets: {', '.join(self.secrets)}\n" if self.secrets else ""
        return (f"Dry run of {self.uri} with {self.builder}/{self.driver}\n{origin}{secrets}"
                f"Would run: {self.command}\n--- Dockerfile ---\n{self.dockerfile}"
                f"--- context ({len(self.context_files)} files) ---\n{files}")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        files = html.escape("\n".join(self.context_files)) or "(empty)"
        origin = f"<p>From: {html.escape(self.origin)}</p>" if self.origin else ""
        return (f"<div><b>Dry run</b> of <code>{html.escape(self.uri)}</code> with "
                f"{html.escape(self.builder)}/{html.escape(self.driver)}{origin}"
                f"<p>Would run: <code>{html.escape(self.command)}</code></p>"
                f"<pre>{html.escape(self.dockerfile)}</pre>"
                f"<details><summary>{len(self.context_files)} context files</summary>"
                f"<pre>{files}</pre></details></div>")


@dataclass(frozen=True)
class RemoteRun:
    """A build on the build service: its id, the page that shows it, and its API address.

    ``deduplicated`` is true when the service attached this request to an identical build
    already running there.
    """

    id: str
    url: str
    api_url: str = ""
    deduplicated: bool = False

    @property
    def page_url(self) -> str:
        return self.url


class ImageBuild:
    """One build request's outcome and, while it runs, the handle to watch, wait on and cancel.

    >>> build = ImageBuild.found_existing("r/x:1", digest="sha256:ab", builder="local")
    >>> (build.status, build.built, build.found, build.done)
    ('exists', False, True, True)
    """

    def __init__(self, uri: str, *, builder: str, driver: str = "", reason: str = "",
                 remote_run: RemoteRun | None = None) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.uri = uri
        self.builder = builder
        self.driver = driver
        self.reason = reason
        self.remote_run = remote_run
        self.status: Status = "running"
        self.digest: str | None = None
        self.image_id: str | None = None
        # A multi-platform image: {platform: image digest}; ``digest`` is the index's.
        self.platform_digests: dict[str, str] = {}
        self.dry_run: DryRun | None = None
        self.existence: Any = None  # the existence check result that led here, when one ran
        self.origin: str | None = None  # what the spec came from (e.g. a flyte.Image)
        self.size: int | None = None  # bytes, when a view looked it up in the local engine
        self.error: ImageBuildError | None = None
        self.started_at = time.time()
        self.finished_at: float | None = None
        self._log = EventLog(name=self.id)
        self._failed: BuildFailed | None = None
        # Replaced, never changed in place, so publish() hands it out without copying.
        self._subscribers: tuple[Callable[[BuildEvent], None], ...] = ()
        self._followers = 0  # follow() calls waiting on _changed (publish skips notifying none)
        self._changed = threading.Condition()
        self._ended = threading.Event()  # wait() sleeps on this, not on every event
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    # -- outcomes that need no build ------------------------------------------------------------

    @classmethod
    def found_existing(cls, uri: str, *, digest: str | None, builder: str, driver: str = "",
                       existence: Any = None) -> ImageBuild:
        build = cls(uri, builder=builder, driver=driver, reason="exists")
        build.digest, build.existence = digest, existence
        build._settle("exists")
        return build

    @classmethod
    def planned(cls, dry_run: DryRun, *, reason: str = "") -> ImageBuild:
        build = cls(dry_run.uri, builder=dry_run.builder, driver=dry_run.driver, reason=reason)
        build.dry_run, build.origin = dry_run, dry_run.origin
        build._settle("dry-run")
        return build

    # -- running --------------------------------------------------------------------------------

    def start(self, run: Callable[[threading.Event], Iterator[BuildEvent]],
              on_done: Callable[[ImageBuild], None] | None = None) -> ImageBuild:
        """Run ``run(cancel)`` on a background thread, publishing every event it yields."""

        def target() -> None:
            try:
                for event in run(self._cancel):
                    self.publish(event)
                    if is_terminal(event):
                        break
                if not self.done:
                    if self._cancel.is_set():
                        self.publish(BuildCancelled(message="cancelled"))
                    else:
                        self.publish(BuildFailed(message="the builder stopped without a result"))
            except ImageBuildError as error:
                self.error = error
                self.publish(BuildFailed(message=str(error)))
            except BaseException as error:  # a thread must not die silently
                log.exception("build of %s crashed", self.uri)
                self.error = ImageBuildError(f"build of {self.uri} crashed: {error!r}")
                self.publish(BuildFailed(message=f"internal error: {error!r}"))
            finally:
                if on_done is not None:
                    on_done(self)

        self._thread = threading.Thread(target=target, name=f"imagebuild-{self.id}", daemon=True)
        self._thread.start()
        return self

    def publish(self, event: BuildEvent) -> None:
        """Number and record an event, then hand it to subscribers (the engine calls this)."""
        with self._changed:
            if self.done:
                return
            event = _numbered(event, self._log.count + 1)
            self._log.append(event)
            if isinstance(event, BuildFinished):
                self.digest, self.image_id = event.digest, event.image_id
                self.platform_digests = dict(event.platform_digests)
                self._settle("built")
            elif isinstance(event, BuildFailed):
                self._failed = event
                self._settle("failed")
            elif isinstance(event, BuildCancelled):
                self._settle("cancelled")
            subscribers = self._subscribers
            if self._followers:
                self._changed.notify_all()
        for callback in subscribers:
            _deliver(callback, event)

    def _settle(self, status: Status) -> None:
        self.status = status
        self.finished_at = time.time()
        self._ended.set()

    # -- watching -------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.status != "running"

    @property
    def built(self) -> bool:
        return self.status == "built"

    @property
    def found(self) -> bool:
        """True when the image already existed and nothing was built."""
        return self.status == "exists"

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    @property
    def events(self) -> Sequence[BuildEvent]:
        """Every event so far, as a read-only sequence (``len``, index, slice, iterate) that
        reads a long build's older events back from its spool only as they are used."""
        return self._log.snapshot()

    def replay(self, after: int = 0) -> Iterator[BuildEvent]:
        """The events so far with ``seq > after``, in order, without waiting for more."""
        return self._log.replay(after)

    @property
    def logs(self) -> str:
        """The full build log (every log line, in order)."""
        return "\n".join(e.text for e in self._log.replay() if isinstance(e, LogLine))

    def subscribe(self, callback: Callable[[BuildEvent], None],
                  after: int = 0) -> Callable[[], None]:
        """Call ``callback`` for every event with ``seq > after``, past and future, each once
        and in order (past ones from this thread, later ones from the build's thread).

        Returns a function that unsubscribes. Exceptions in the callback are logged.
        """
        seen = after
        while True:  # catch up outside the lock, then register once nothing new came meanwhile
            for event in self._log.replay(seen):
                _deliver(callback, event)
                seen = event.seq
            with self._changed:
                if self._log.count <= seen:
                    self._subscribers = (*self._subscribers, callback)
                    break

        def unsubscribe() -> None:
            with self._changed:
                if callback in self._subscribers:
                    index = self._subscribers.index(callback)
                    self._subscribers = self._subscribers[:index] + self._subscribers[index + 1:]

        return unsubscribe

    def follow(self, idle_tick: float | None = None, after: int = 0) -> Iterator[Any]:
        """Iterate the events with ``seq > after`` (all by default) until the build ends.

        With ``idle_tick`` it yields ``None`` after that many seconds without an event, so a
        consumer on the main thread can refresh and notice a KeyboardInterrupt.
        """
        seen = after
        while True:
            with self._changed:
                while self._log.count <= seen and not self.done:
                    self._followers += 1
                    try:
                        with deferred_signals():  # Ctrl-C lands after the lock is back
                            woken = self._changed.wait(idle_tick if idle_tick else 0.5)
                    finally:
                        self._followers -= 1
                    if not woken and idle_tick:
                        break
                finished = self.done
                fresh = self._log.replay(seen)  # a snapshot, read outside the lock
            got = False
            for event in fresh:
                got, seen = True, event.seq
                yield event
            if finished and seen >= self._log.count:
                return
            if not got and not finished:
                yield None

    def __iter__(self) -> Iterator[BuildEvent]:
        return (event for event in self.follow() if event is not None)

    def wait(self, timeout: float | None = None, *, raise_on_error: bool = True) -> ImageBuild:
        """Block until the build ends; raise its error (failed or cancelled) unless told not to.

        A KeyboardInterrupt while waiting cancels the build, waits for its clean-up, and
        propagates. Raises TimeoutError when ``timeout`` passes first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self.done:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"build of {self.uri} still running after {timeout} s")
                with deferred_signals():  # Event.wait is a Condition's wait too
                    self._ended.wait(0.2 if left is None else min(0.2, left))
        except KeyboardInterrupt:
            self.cancel()
            self._join(_CANCEL_WAIT)
            raise
        self._join(5)
        if raise_on_error:
            self.raise_for_status()
        return self

    def __await__(self) -> Generator[Any, None, ImageBuild]:
        """``await build`` waits without blocking the event loop (Jupyter's loop included)."""
        import asyncio

        return asyncio.get_running_loop().run_in_executor(None, self.wait).__await__()

    def raise_for_status(self) -> None:
        if self.status == "failed":
            if self.error is not None and not isinstance(self.error, BuildFailedError):
                raise self.error
            failed = self._failed
            message = failed.message if failed else "build failed"
            raise BuildFailedError(
                f"build of {self.uri} failed: {message}",
                step=failed.step if failed else None,
                exit_code=failed.exit_code if failed else None,
                log_tail=failed.lines if failed else (),
                hint="the full log is on the build's .logs",
            )
        if self.status == "cancelled":
            raise BuildCancelledError(f"build of {self.uri} was cancelled")

    def cancel(self) -> None:
        """Ask the build to stop; it ends as "cancelled" once the builder has cleaned up."""
        if not self.done:
            self._cancel.set()

    def _join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def close(self) -> None:
        """Free the spool file of a finished build (collection frees it too). Its events
        beyond the in-memory window are gone afterwards; replaying them raises."""
        if not self.done:
            raise ImageBuildError(f"the build of {self.uri} is still running",
                                  hint="cancel() and wait() before closing it")
        self._log.close()

    def __enter__(self) -> ImageBuild:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.done:
            self.close()

    # -- display --------------------------------------------------------------------------------

    def _summary(self) -> list[tuple[str, str]]:
        rows = [("uri", self.uri), ("status", self.status),
                ("builder", f"{self.builder}/{self.driver}" if self.driver else self.builder)]
        if self.origin:
            rows.append(("from", self.origin))
        if self.digest:
            rows.append(("digest", self.digest))
        for platform, digest in sorted(self.platform_digests.items()):
            rows.append((platform, digest))
        if self.reason:
            rows.append(("why", self.reason))
        if self.duration is not None:
            rows.append(("duration", f"{self.duration:.1f}s"))
        if self.remote_run is not None:
            rows.append(("run", self.remote_run.url))
        failed = self._failed
        if failed is not None:
            rows.append(("failed", f"{failed.step or ''} {failed.message}".strip()))
        return rows

    def __repr__(self) -> str:
        inner = ", ".join(f"{key}={value!r}" for key, value in self._summary())
        return f"ImageBuild({inner})"

    def __str__(self) -> str:
        text = "\n".join(f"{key:>9}: {value}" for key, value in self._summary())
        if self.dry_run is not None:
            text += "\n" + str(self.dry_run)
        return text

    def _repr_html_(self) -> str:
        from imagebuild_nb.progress.html import card_html

        return card_html(self)


def _numbered(event: BuildEvent, seq: int) -> BuildEvent:
    """``event.numbered(seq)`` without ``dataclasses.replace``'s cost (a build may publish
    millions): a shallow copy of a frozen dataclass with its ``seq`` set."""
    numbered = object.__new__(type(event))
    values = event.__dict__.copy()
    values["seq"] = seq
    object.__setattr__(numbered, "__dict__", values)
    return numbered


def _deliver(callback: Callable[[BuildEvent], None], event: BuildEvent) -> None:
    try:
        callback(event)
    except Exception:
        log.exception("a build event subscriber failed on %s", event.kind)
