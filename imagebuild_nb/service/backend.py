"""The seam under the service's handlers: ``BuildBackend``, with a local and a farm implementation.

Handlers parse HTTP and call one backend; the backend owns builds, events and contexts:

- ``LocalBackend`` (here): the embedded default, one process, a ``BuildManager`` on sqlite and
  the local engine, exactly as before.
- ``imagebuild_nb.farm.backend.FarmBackend``: N stateless replicas over PostgreSQL; agents on
  the engines run the builds. Imported only when a database URL is configured.

Every method is a coroutine, so a backend that talks to a database never blocks the server's
event loop. Records cross the seam as ``wire.BuildInfo``; events as (seq, event JSON) pairs.

The contract of ``follow``: yield batches of (seq, JSON) with seq > ``after`` in order, each seq
exactly once, ending after the build's one terminal event; yield None when ``keepalive`` seconds
pass without events. Contexts: ``use_context`` says whether a digest is stored (and marks it
used); ``upload_dir`` is where a verified upload is staged before ``store_context`` keeps it.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from imagebuild_nb.service.archive import ArchiveLimits
from imagebuild_nb.service.manager import BuildManager, UnknownBuildError
from imagebuild_nb.service.store import BuildRecord
from imagebuild_nb.service.submission import Submission, SubmissionError
from imagebuild_nb.wire import BuildInfo


@runtime_checkable
class BuildBackend(Protocol):
    """What the handlers need; see the module docstring for the contract."""

    name: str
    archive_limits: ArchiveLimits

    async def start(self) -> None:
        """At server start: recover (local) or create the tables and listen (farm)."""
        ...

    async def maintain(self) -> None:
        """Periodic upkeep: prune unused contexts (and, in a farm, hand on lost builds)."""
        ...

    async def health(self) -> dict[str, object]: ...

    async def get(self, build_id: str) -> BuildInfo:
        """The build; ``UnknownBuildError`` when there is none."""
        ...

    async def list(
        self, *, status: str | None = None, limit: int = 100, visible_to: str | None = None
    ) -> list[BuildInfo]:
        """The newest builds; with ``visible_to``, those that user submitted or joined."""
        ...

    async def stats(self) -> dict[str, int]: ...

    async def submit(
        self, submission: Submission, owner: str | None = None
    ) -> tuple[BuildInfo, bool]:
        """Start or join a build for ``owner``: (record, joined an identical unfinished one).
        ``MissingContextError`` when the context was never uploaded; ``UserLimitError`` when
        ``owner`` has as many unfinished builds as one user may have (a join never is)."""
        ...

    async def cancel(self, build_id: str) -> BuildInfo: ...

    def follow(
        self, build_id: str, *, after: int, keepalive: float
    ) -> AsyncIterator[builtins.list[tuple[int, str]] | None]: ...

    async def read_events(self, build_id: str, after: int = 0) -> Iterable[str]:
        """The stored events with seq > ``after``, in order. May be lazy (read from disk as it
        is iterated, never all in memory): iterate it once, on the event loop's thread."""
        ...

    async def use_context(self, digest: str) -> bool: ...

    def upload_dir(self) -> Path: ...

    def context_destination(self, digest: str) -> Path:
        """Where a verified upload of ``digest`` is moved before ``store_context``."""
        ...

    async def store_context(self, digest: str, path: Path) -> None: ...

    async def shutdown(self) -> None: ...


def info(record: BuildRecord) -> BuildInfo:
    """A store record as it goes on the wire: a ``BuildInfo`` already (its ``to_dict`` leaves
    out what stays inside the service)."""
    return record


class LocalBackend:
    """The embedded default: a ``BuildManager`` (sqlite, the local engine) behind the protocol."""

    name = "local"

    def __init__(self, manager: BuildManager) -> None:
        self.manager = manager
        self.archive_limits = manager.archive_limits

    async def start(self) -> None:
        self.manager.recover()

    async def maintain(self) -> None:
        self.manager.prune_contexts()

    async def health(self) -> dict[str, object]:
        runner = self.manager.runner
        driver = await asyncio.to_thread(lambda: runner.driver)  # may probe the docker CLI
        return {"status": "ok", "backend": self.name, "runner": runner.name, "driver": driver,
                **self.manager.stats()}

    async def get(self, build_id: str) -> BuildInfo:
        return info(self.manager.get(build_id))

    async def list(
        self, *, status: str | None = None, limit: int = 100, visible_to: str | None = None
    ) -> list[BuildInfo]:
        records = self.manager.list(status=status, limit=limit, visible_to=visible_to)
        return [info(record) for record in records]

    async def stats(self) -> dict[str, int]:
        return self.manager.stats()

    async def submit(
        self, submission: Submission, owner: str | None = None
    ) -> tuple[BuildInfo, bool]:
        several_platforms = "," in (submission.platform or "")
        if submission.secrets or several_platforms:
            runner = self.manager.runner
            driver = await asyncio.to_thread(lambda: runner.driver)  # may probe the docker CLI
            if driver == "docker-api":
                cannot = "pass build secrets" if submission.secrets else \
                    f"build several platforms ({submission.platform})"
                raise SubmissionError(
                    "this build service builds with the docker-api driver (legacy builder), "
                    f"which cannot {cannot}: its operator must run it with BuildKit "
                    "(the default runner on a host whose docker CLI has BuildKit), or build "
                    "locally with builder='local'")
        record, joined = self.manager.submit(submission, owner)
        return info(record), joined

    async def cancel(self, build_id: str) -> BuildInfo:
        return info(self.manager.cancel(build_id))

    def follow(
        self, build_id: str, *, after: int, keepalive: float
    ) -> AsyncIterator[builtins.list[tuple[int, str]] | None]:
        return self.manager.follow(build_id, after=after, keepalive=keepalive)

    async def read_events(self, build_id: str, after: int = 0) -> Iterable[str]:
        self.manager.get(build_id)
        return _events(self.manager, build_id, after)  # lazy: a line at a time from disk

    async def use_context(self, digest: str) -> bool:
        return self.manager.store.use_context(digest)

    def upload_dir(self) -> Path:
        return self.manager.store.contexts_dir()

    def context_destination(self, digest: str) -> Path:
        return self.manager.store.context_path(digest)

    async def store_context(self, digest: str, path: Path) -> None:
        destination = self.manager.store.context_path(digest)
        if path != destination:
            path.replace(destination)

    async def shutdown(self) -> None:
        await self.manager.shutdown()


def _events(manager: BuildManager, build_id: str, after: int) -> Iterator[str]:
    return manager.store.read_events(build_id, after)


__all__ = ["BuildBackend", "LocalBackend", "UnknownBuildError", "info"]
