"""One service replica of the build farm: ``BuildBackend`` over the farm's PostgreSQL database.

A replica keeps no build state of its own: submissions, records, cancels and contexts go to the
database, and agents on the engines run the builds. Any replica answers for any build, so a
client whose replica died resumes its stream on another with ``Last-Event-ID``.

Streams read event rows (the source of truth). One ``LISTEN imagebuild_events`` connection per
replica wakes the streams of a build when its agent commits events; a notification that never
comes (dropped connection, ``listen=False``) costs at most ``poll`` seconds, never an event.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg

from imagebuild_nb.events import TERMINAL_KINDS
from imagebuild_nb.farm import leases
from imagebuild_nb.farm.affinity import family
from imagebuild_nb.farm.store import EVENTS_CHANNEL, FarmStore
from imagebuild_nb.service.archive import ArchiveLimits
from imagebuild_nb.service.manager import MissingContextError, UnknownBuildError
from imagebuild_nb.service.submission import Submission, SubmissionError
from imagebuild_nb.wire import BuildInfo

log = logging.getLogger(__name__)


class FarmBackend:
    name = "farm"

    def __init__(
        self,
        store: FarmStore,
        *,
        archive_limits: ArchiveLimits | None = None,
        upload_dir: Path | None = None,
        listen: bool = True,
        poll: float = 1.0,
        max_builds_per_user: int = 0,
        max_running_per_user: int = 0,
    ) -> None:
        self.store = store
        self.max_builds_per_user = max_builds_per_user
        self.max_running_per_user = max_running_per_user
        self.archive_limits = archive_limits or ArchiveLimits()
        self._upload_dir = upload_dir or Path(tempfile.mkdtemp(prefix="imagebuild-uploads-"))
        self._upload_dir.mkdir(parents=True, exist_ok=True)
        self.listen = listen
        self.poll = poll
        self._waiters: dict[str, set[asyncio.Event]] = {}
        # Streams of one build at one position share one query (50 followers: 1 read, not 50).
        self._reads: dict[tuple[str, int], asyncio.Future[list[tuple[int, str]]]] = {}
        self.reads = 0  # queries made for streams (tests and metrics)
        self._listener: asyncio.Task[None] | None = None
        self.notifications = 0  # how many wake-ups arrived (tests and metrics)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self.store.migrate)
        if self.listen:
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def maintain(self) -> None:
        await asyncio.to_thread(self.store.prune_contexts)
        await asyncio.to_thread(leases.reap, self.store)

    async def shutdown(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except asyncio.CancelledError:
                pass
        self.store.close()

    async def health(self) -> dict[str, object]:
        counts = await asyncio.to_thread(self.store.counts)
        engines = await asyncio.to_thread(
            self.store.rows,
            "SELECT name, slots, draining FROM imagebuild_engines WHERE heartbeat > %s",
            (self.store.now() - leases.DEFAULT_ALIVE_FOR,))
        return {"status": "ok", "backend": self.name, "runner": "farm", "driver": "docker-api",
                "engines": len(engines),
                "max_concurrent": sum(int(row["slots"]) for row in engines if not row["draining"]),
                **counts}

    # -- queries -----------------------------------------------------------------------------
    async def get(self, build_id: str) -> BuildInfo:
        info = await asyncio.to_thread(self.store.get, build_id)
        if info is None:
            raise UnknownBuildError(build_id)
        return info

    async def list(
        self, *, status: str | None = None, limit: int = 100, visible_to: str | None = None
    ) -> list[BuildInfo]:
        return await asyncio.to_thread(
            lambda: self.store.list(status=status, limit=limit, visible_to=visible_to))

    async def stats(self) -> dict[str, int]:
        return await asyncio.to_thread(self.store.counts)

    async def read_events(self, build_id: str, after: int = 0) -> builtins.list[str]:
        await self.get(build_id)
        rows = await asyncio.to_thread(self.store.events, build_id, after, 10**9)
        return [text for _, text in rows]

    # -- commands ----------------------------------------------------------------------------
    async def submit(
        self, submission: Submission, owner: str | None = None
    ) -> tuple[BuildInfo, bool]:
        if submission.secrets:  # its agents have no secret configuration yet
            raise SubmissionError(
                "a build farm cannot take build secrets yet "
                f"({', '.join(sorted(set(submission.secrets.values())))}): build this image "
                "with a single build service (no database_url) or locally with builder='local'")
        if submission.platform and "," in submission.platform:  # agents drive the Engine API
            raise SubmissionError(
                f"a build farm builds one platform per image yet ({submission.platform} asked): "
                "build each platform on its own, or the multi-platform image with a single "
                "build service (no database_url) or locally with builder='local'")

        def insert() -> tuple[BuildInfo, bool]:
            return self.store.submit(
                uri=submission.uri, context=submission.context, dedup_key=submission.dedup_key,
                dockerfile=submission.dockerfile, push=submission.push, force=submission.force,
                spec=submission.spec, platform=submission.platform,
                family=family(submission.uri), owner=owner,
                max_builds_per_user=self.max_builds_per_user,
                max_running_per_user=self.max_running_per_user)
        try:
            return await asyncio.to_thread(insert)
        except LookupError:
            raise MissingContextError(submission.context) from None

    async def cancel(self, build_id: str) -> BuildInfo:
        info = await asyncio.to_thread(self.store.request_cancel, build_id)
        if info is None:
            raise UnknownBuildError(build_id)
        return info

    # -- contexts ----------------------------------------------------------------------------
    async def use_context(self, digest: str) -> bool:
        return await asyncio.to_thread(self.store.use_context, digest)

    def upload_dir(self) -> Path:
        return self._upload_dir

    def context_destination(self, digest: str) -> Path:
        # One file per upload: two clients may send the same context at once.
        return self._upload_dir / f"{digest.replace(':', '-')}-{uuid.uuid4().hex[:8]}.tar"

    async def store_context(self, digest: str, path: Path) -> None:
        try:
            await asyncio.to_thread(lambda: self.store.put_context(digest, path.read_bytes()))
        finally:
            path.unlink(missing_ok=True)

    # -- streams -----------------------------------------------------------------------------
    async def follow(
        self, build_id: str, *, after: int, keepalive: float
    ) -> AsyncIterator[builtins.list[tuple[int, str]] | None]:
        await self.get(build_id)
        quiet_since = time.monotonic()
        while True:
            wake = asyncio.Event()
            self._waiters.setdefault(build_id, set()).add(wake)  # before reading: none missed
            try:
                batch = await self._read(build_id, after)
                if batch:
                    after = batch[-1][0]
                    quiet_since = time.monotonic()
                    yield batch
                    if any(_kind(text) in TERMINAL_KINDS for _, text in batch):
                        return
                    continue
                waited = time.monotonic() - quiet_since
                try:
                    await asyncio.wait_for(wake.wait(), max(min(self.poll, keepalive - waited),
                                                            0.01))
                except asyncio.TimeoutError:
                    # No word for a poll interval: a safety net (every ended build has its
                    # terminal event row), checked only then, not on every wake-up.
                    info = await self.get(build_id)
                    if info.terminal and info.events <= after:
                        return
                    if time.monotonic() - quiet_since >= keepalive:
                        quiet_since = time.monotonic()
                        yield None
            finally:
                waiters = self._waiters.get(build_id)
                if waiters is not None:
                    waiters.discard(wake)
                    if not waiters:
                        del self._waiters[build_id]

    async def _read(self, build_id: str, after: int) -> builtins.list[tuple[int, str]]:
        key = (build_id, after)
        pending = self._reads.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[list[tuple[int, str]]] = asyncio.get_running_loop().create_future()
        self._reads[key] = future
        try:
            self.reads += 1
            rows = await asyncio.to_thread(self.store.events, build_id, after)
            future.set_result(rows)
            return rows
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: followers that share it see it, nobody else must
            raise
        finally:
            del self._reads[key]

    async def _listen(self) -> None:
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.store.url, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    async for note in conn.notifies():
                        self.notifications += 1
                        for wake in self._waiters.get(note.payload, ()):
                            wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 -- streams poll meanwhile; listen again soon
                log.warning("the event listener lost its connection; reconnecting",
                            exc_info=True)
                await asyncio.sleep(1.0)


def _kind(text: str) -> str:
    try:
        return str(json.loads(text).get("kind"))
    except ValueError:
        return ""


__all__ = ["FarmBackend"]
