"""The build service's logic: queue, dedup, run, number and persist events, cancel, recover.

Handlers stay thin and call a ``BuildManager``. It lives on the server's event loop; each build
runs its ``BuildRunner`` in a worker thread, whose events come back to the loop in batches,
are redacted, numbered (``seq`` 1, 2, ... per build: the SSE id), appended to the build's
event log and fanned out to subscribers. Memory per build is bounded: the last
``EVENT_WINDOW`` events stay in memory for followers that keep up, a follower that falls behind
(or replays an ended build) reads the log on disk in batches, and a builder faster than the
loop waits rather than piling events up.

    manager = BuildManager(BuildStore(state_dir), EngineRunner(), max_concurrent=2)
    manager.recover()                     # running-at-crash -> interrupted; queued -> re-queued
    manager.prune_contexts()              # uploads unused for context_retention s (hourly)
    record, deduplicated = manager.submit(Submission.from_json(body))
    async for batch in manager.follow(record.id, after=0, keepalive=15): ...
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import itertools
import json
import logging
import shutil
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import IO

from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    is_terminal,
)
from imagebuild_nb.service.archive import ArchiveLimits, extract_archive
from imagebuild_nb.service.build_secrets import ServiceSecrets, missing_message
from imagebuild_nb.service.fair_slots import FairSlots
from imagebuild_nb.service.redact import Redactor
from imagebuild_nb.service.runner import BuildJob, BuildRunner
from imagebuild_nb.service.store import (
    CANCELLED,
    FAILED,
    INTERRUPTED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    BuildRecord,
    BuildStore,
)
from imagebuild_nb.service.submission import (
    Submission,
    SubmissionError,
    UserLimitError,
    user_limit_message,
)
from imagebuild_nb.service.uploads import remove_partial_uploads

log = logging.getLogger(__name__)

INTERRUPTED_MESSAGE = "interrupted: the build service stopped while this build was running"
# A running build keeps its last events in memory for followers that keep up; the rest are
# read back from its event log on disk in batches of this size.
EVENT_WINDOW = 1024
# Uploaded contexts outlive their builds (a client re-sends nothing for an unchanged context)
# for this long after their last use.
DEFAULT_CONTEXT_RETENTION = 24 * 3600.0


class UnknownBuildError(KeyError):
    """No build with that id."""


class MissingContextError(LookupError):
    """The submission names a context digest that was never uploaded."""



class _Live:
    """In-memory state of a queued or running build: its last ``EVENT_WINDOW`` events as JSON
    text (the last one has seq ``last_seq``); every event is in its event log on disk."""

    def __init__(self, record: BuildRecord) -> None:
        self.id = record.id
        self.owner = record.owner
        self.frames: deque[str] = deque(maxlen=EVENT_WINDOW)
        self.last_seq = 0
        self.changed = asyncio.Event()
        self.cancel = threading.Event()
        self.done = False
        self.task: asyncio.Task[None] | None = None
        self.inbox: list[BuildEvent] = []
        self.inbox_lock = threading.Lock()
        # The worker waits while the loop has EVENT_WINDOW events still to take from the inbox:
        # a builder faster than the loop cannot pile up events in memory.
        self.inbox_room = threading.Condition(self.inbox_lock)
        self.scheduled = False
        self.log: IO[str] | None = None
        self.terminal: BuildEvent | None = None

    @property
    def window_start(self) -> int:
        """The seq of the oldest event still in memory."""
        return self.last_seq - len(self.frames) + 1

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class BuildManager:
    def __init__(
        self,
        store: BuildStore,
        runner: BuildRunner,
        *,
        max_concurrent: int = 2,
        archive_limits: ArchiveLimits | None = None,
        redactor: Redactor | None = None,
        context_retention: float = DEFAULT_CONTEXT_RETENTION,
        secrets: ServiceSecrets | None = None,
        max_builds_per_user: int = 0,
        max_running_per_user: int = 0,
    ) -> None:
        self.store = store
        # Per Hub user (never the standalone service's shared token): unfinished builds allowed
        # (more are refused), and how many of them run at once (more wait). 0: no limit.
        self.max_builds_per_user = max_builds_per_user
        self.secrets = secrets or ServiceSecrets({})
        self.context_retention = context_retention
        self.runner = runner
        self.max_concurrent = max_concurrent
        self.archive_limits = archive_limits or ArchiveLimits()
        self.redactor = redactor or Redactor()
        self._slots = FairSlots(max_concurrent, per_user=max_running_per_user)
        self._live: dict[str, _Live] = {}
        self._inflight: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def recover(self) -> None:
        """Builds running when the service died are interrupted; queued ones are queued again.
        Uploads cut off by the stop are deleted, and contexts past their retention."""
        partial = remove_partial_uploads(self.store.contexts_dir())
        if partial:
            log.info("removed %d partial context upload(s) left by the last run", partial)
        for record in self.store.unfinished():
            if record.status == RUNNING:
                seq = sum(1 for _ in self.store.read_events(record.id)) + 1
                event = BuildFailed(message=INTERRUPTED_MESSAGE, seq=seq)
                with self.store.open_event_log(record.id) as handle:
                    handle.write(json.dumps(event.to_dict()) + "\n")
                self.store.update(
                    record.id,
                    status=INTERRUPTED,
                    finished=time.time(),
                    error=INTERRUPTED_MESSAGE,
                    events=seq,
                )
                self._remove_context(record.id)
                log.warning("build %s was running when the service stopped: interrupted", record.id)
            else:
                self._enqueue(record)
                log.info("build %s re-queued after a restart", record.id)
        self.prune_contexts()

    def prune_contexts(self) -> list[str]:
        """Delete uploaded contexts unused for ``context_retention`` seconds, except those of
        queued and running builds; the deleted digests."""
        in_use = {record.context for record in self.store.unfinished()}
        deleted = self.store.prune_contexts(unused_for=self.context_retention, keep=in_use)
        if deleted:
            log.info("deleted %d build context(s) unused for %gs", len(deleted),
                     self.context_retention)
        return deleted

    async def shutdown(self) -> None:
        for live in list(self._live.values()):
            live.cancel.set()
        self.store.close()

    # -- queries ---------------------------------------------------------------------------
    def get(self, build_id: str) -> BuildRecord:
        record = self.store.get(build_id)
        if record is None:
            raise UnknownBuildError(build_id)
        live = self._live.get(build_id)
        return dataclasses.replace(record, events=live.last_seq) if live else record

    def list(
        self, *, status: str | None = None, limit: int = 100, visible_to: str | None = None
    ) -> list[BuildRecord]:
        records = self.store.list(status=status, limit=limit, visible_to=visible_to)
        return [self.get(record.id) for record in records]

    def stats(self) -> dict[str, int]:
        running = sum(1 for live in self._live.values() if live.log is not None)
        return {
            "running": running,
            "queued": len(self._live) - running,
            "max_concurrent": self.max_concurrent,
            "max_builds_per_user": self.max_builds_per_user,
            "max_running_per_user": self._slots.per_user,
        }

    # -- commands --------------------------------------------------------------------------
    def submit(
        self, submission: Submission, owner: str | None = None
    ) -> tuple[BuildRecord, bool]:
        """Start (or join) a build for ``owner``; returns the record and whether it joined an
        existing one. A join is never refused: it adds no work."""
        missing = self.secrets.missing(submission.secrets)
        if missing:
            raise SubmissionError(missing_message(missing))
        if not self.store.use_context(submission.context):
            raise MissingContextError(submission.context)
        key = submission.dedup_key
        existing = None if submission.force else self._inflight.get(key)
        if existing is not None:
            current = self.get(existing)
            joined_by = current.joined_by
            if owner is not None and owner != current.owner and owner not in joined_by:
                joined_by = (*joined_by, owner)
            self.store.update(existing, submissions=current.submissions + 1, joined_by=joined_by)
            return self.get(existing), True
        if owner is not None and self.max_builds_per_user:
            unfinished = sum(1 for live in self._live.values() if live.owner == owner)
            if unfinished >= self.max_builds_per_user:
                raise UserLimitError(
                    user_limit_message(owner, unfinished, self.max_builds_per_user))
        record = self.store.insert(
            BuildRecord.new(
                uri=submission.uri,
                context=submission.context,
                dockerfile=submission.dockerfile,
                push=submission.push,
                force=submission.force,
                spec=submission.spec,
                secrets=submission.secrets or None,
                platform=submission.platform,
                dedup_key=key,
                owner=owner,
            )
        )
        self._enqueue(record)
        log.info("build %s queued for %s", record.id, record.uri)
        return record, False

    def cancel(self, build_id: str) -> BuildRecord:
        record = self.get(build_id)
        live = self._live.get(build_id)
        if live is None or record.terminal:
            return record
        live.cancel.set()
        if live.log is None and live.task is not None:
            # Still waiting for a slot: nothing runs yet, so it ends here and now.
            live.task.cancel()
        return self.get(build_id)

    async def follow(
        self, build_id: str, *, after: int, keepalive: float
    ) -> AsyncIterator[builtins.list[tuple[int, str]] | None]:
        """Yield batches of (seq, event JSON) with seq > after, then stop after the terminal one.

        Yields None when ``keepalive`` seconds pass without events (the caller sends a comment).
        """
        self.get(build_id)
        live = self._live.get(build_id)
        reader = self.store.event_reader(build_id)
        try:
            if live is None:  # ended: its log on disk is complete
                while batch := reader.read(after, EVENT_WINDOW):
                    after = batch[-1][0]
                    yield batch
                return
            while True:
                if live.last_seq > after:
                    if after + 1 >= live.window_start:
                        start = after + 1 - live.window_start
                        batch = [(after + 1 + index, text) for index, text in
                                 enumerate(itertools.islice(live.frames, start, None))]
                    else:  # fell behind the window: the log on disk has every event so far
                        if live.log is not None:
                            live.log.flush()
                        batch = reader.read(after, min(EVENT_WINDOW, live.window_start - after - 1))
                    after = batch[-1][0]
                    yield batch
                    continue
                if live.done:
                    return
                waiter = live.changed
                try:
                    await asyncio.wait_for(waiter.wait(), keepalive)
                except asyncio.TimeoutError:
                    yield None
        finally:
            reader.close()

    # -- running ---------------------------------------------------------------------------
    def _enqueue(self, record: BuildRecord) -> None:
        live = _Live(record)
        self._live[record.id] = live
        self._inflight[record.dedup_key] = record.id
        live.task = asyncio.get_event_loop().create_task(self._run(live, record))

    async def _run(self, live: _Live, record: BuildRecord) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            async with self._slots.slot(record.owner):
                if live.cancel.is_set():
                    raise asyncio.CancelledError
                await self._execute(live, record)
        except asyncio.CancelledError:
            self._append(live, BuildCancelled(message="cancelled before the build started"))
        except Exception as error:  # noqa: BLE001 -- a service bug must still end the build
            log.exception("build %s crashed in the service", record.id)
            self._append(live, BuildFailed(message=f"the build service failed: {error}"))
        finally:
            self._finish(live, record)

    async def _execute(self, live: _Live, record: BuildRecord) -> None:
        missing = self.secrets.missing(record.secrets or {})
        if missing:  # the operator removed it while the build was queued (or across a restart)
            self._append(live, BuildFailed(message=missing_message(missing)))
            return
        context_dir = self.store.build_dir(record.id) / "context"
        shutil.rmtree(context_dir, ignore_errors=True)
        live.log = self.store.open_event_log(record.id)
        self.store.update(record.id, status=RUNNING, started=time.time())
        log.info("build %s running for %s", record.id, record.owner or "the service's token")
        await asyncio.to_thread(
            extract_archive,
            self.store.context_path(record.context),
            context_dir,
            self.archive_limits,
        )
        job = BuildJob(build_id=record.id, uri=record.uri, context_dir=context_dir,
                       dockerfile=record.dockerfile, force=record.force, push=record.push,
                       spec=record.spec, platform=record.platform,
                       secrets=self.secrets.sources(record.secrets or {}))
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._drive, live, job, loop)
        self._drain(live)

    def _drive(self, live: _Live, job: BuildJob, loop: asyncio.AbstractEventLoop) -> None:
        """Worker thread: iterate the runner and hand events to the loop in batches."""
        terminal = False
        try:
            for event in self.runner.run(job, live.cancel):
                self._post(live, event, loop)
                if is_terminal(event):
                    terminal = True
                    break
        except Exception as error:  # noqa: BLE001
            log.exception("runner %s failed on build %s", self.runner.name, job.build_id)
            self._post(live, BuildFailed(message=f"the builder failed: {error}"), loop)
            terminal = True
        if not terminal:
            message = "the builder stopped without reporting a result"
            if live.cancel.is_set():
                self._post(live, BuildCancelled(), loop)
            else:
                self._post(live, BuildFailed(message=message), loop)

    def _post(self, live: _Live, event: BuildEvent, loop: asyncio.AbstractEventLoop) -> None:
        with live.inbox_lock:
            while len(live.inbox) >= EVENT_WINDOW and not live.cancel.is_set():
                live.inbox_room.wait(timeout=1.0)
            live.inbox.append(event)
            if live.scheduled:
                return
            live.scheduled = True
        loop.call_soon_threadsafe(self._drain, live)

    def _drain(self, live: _Live) -> None:
        with live.inbox_lock:
            events, live.inbox = live.inbox, []
            live.scheduled = False
            live.inbox_room.notify_all()
        for event in events:
            self._append(live, event, flush=False)
        if live.log is not None:
            live.log.flush()

    def _append(self, live: _Live, event: BuildEvent, *, flush: bool = True) -> None:
        if live.terminal is not None:
            return  # one terminal event per build; anything after it is noise
        numbered = self.redactor.event(event).numbered(live.last_seq + 1)
        text = json.dumps(numbered.to_dict(), separators=(",", ":"))
        live.frames.append(text)
        live.last_seq = numbered.seq
        if live.log is None:
            live.log = self.store.open_event_log(live.id)
        live.log.write(text + "\n")
        if flush:
            live.log.flush()
        if is_terminal(numbered):
            live.terminal = numbered
            # Record the outcome before any stream hears of it: a client that saw the terminal
            # event and then reads the build's record must find it ended, never "running".
            live.log.flush()
            self.store.update(live.id, **_outcome(numbered), finished=time.time(),
                              events=live.last_seq)
        live.notify()

    def _finish(self, live: _Live, record: BuildRecord) -> None:
        self._drain(live)
        if live.terminal is None:
            self._append(live, BuildFailed(message="the build ended without a result"))
        if live.log is not None:
            live.log.close()
        self._remove_context(record.id)
        if self._inflight.get(record.dedup_key) == record.id:
            del self._inflight[record.dedup_key]
        self._live.pop(record.id, None)
        live.done = True
        live.notify()
        log.info("build %s ended: %s", record.id, live.terminal.kind if live.terminal else "?")

    def _remove_context(self, build_id: str) -> None:
        shutil.rmtree(self.store.build_dir(build_id) / "context", ignore_errors=True)


__all__ = [
    "BuildManager",
    "INTERRUPTED",
    "MissingContextError",
    "QUEUED",
    "UnknownBuildError",
    "UserLimitError",
]


def _outcome(terminal: BuildEvent) -> dict[str, object]:
    """The record's fields for a build that ended with ``terminal``."""
    if isinstance(terminal, BuildFinished):
        return {"status": SUCCEEDED, "digest": terminal.digest, "image_id": terminal.image_id}
    if isinstance(terminal, BuildCancelled):
        return {"status": CANCELLED, "error": terminal.message}
    if isinstance(terminal, BuildFailed):
        return {"status": FAILED, "error": terminal.message, "step": terminal.step,
                "exit_code": terminal.exit_code, "log_tail": terminal.lines}
    return {"status": FAILED, "error": getattr(terminal, "message", "failed")}
