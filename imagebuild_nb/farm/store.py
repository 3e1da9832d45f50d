"""The build farm's one source of truth: builds, their events, contexts and engines in PostgreSQL.

Every replica and every agent reads and writes here; nothing about a build lives in a process.

- **builds**: one row per build. A partial unique index over ``dedup_key`` for unfinished builds
  makes identical submissions to any replicas join one build (``INSERT ... ON CONFLICT``).
- **events**: (build, seq) rows. ``seq`` comes from the build row's counter under its row lock,
  so ids strictly increase across attempts, and exactly one terminal event is ever written
  (the terminal one sets a terminal status; later writes are refused).
- **fencing**: an agent writes with the attempt it claimed; when a lease expired and the build was
  handed on, the attempt moved and the stale agent's writes raise ``FencedError``.
- **contexts**: uploaded tars as ``bytea`` (up to ``max_context_bytes``), deleted once no
  unfinished build needs them and they have not been used for ``context_grace`` seconds.
- **notifications**: ``NOTIFY imagebuild_events, '<build id>'`` after each commit that adds events
  and ``imagebuild_cancel`` for cancel requests. Payloads are ids only: listeners read rows, and a
  lost notification costs a poll interval, never an event.

    store = FarmStore("postgresql://...")
    store.migrate()
    info, joined = store.submit(submission_fields)
"""

from __future__ import annotations

import builtins
import json
import queue
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    is_terminal,
)
from imagebuild_nb.farm import schema
from imagebuild_nb.farm.schema import UNFINISHED as _UNFINISHED
from imagebuild_nb.service.archive import ArchiveTooLargeError
from imagebuild_nb.service.submission import UserLimitError, user_limit_message
from imagebuild_nb.wire import BuildInfo, BuildStatus

EVENTS_CHANNEL = "imagebuild_events"
CANCEL_CHANNEL = "imagebuild_cancel"
QUEUE_CHANNEL = "imagebuild_queue"
DEFAULT_MAX_CONTEXT_BYTES = 256 * 1024**2
DEFAULT_CONTEXT_GRACE = 600.0
INTERRUPTED_MESSAGE = "interrupted: every attempt lost its engine or agent"

_INFO_COLUMNS = (
    "id, uri, context, dockerfile, push, force, spec, status, created, started, finished, digest,"
    " image_id, error, step, exit_code, log_tail, events, submissions, attempt, engine, owner,"
    " joined_by, platform"
)


class FencedError(RuntimeError):
    """The writer's attempt is no longer the build's (its lease expired and the build moved on),
    or the build has already ended: the write was refused and nothing changed."""


class ContextTooLargeError(ArchiveTooLargeError):
    """A context is larger than the farm stores (``max_context_bytes``)."""


@dataclass(frozen=True)
class Claim:
    """A build an agent claimed: what to build and the attempt that fences its writes."""

    id: str
    attempt: int
    max_attempts: int
    uri: str
    context: str
    dockerfile: str
    push: bool
    force: bool
    spec: dict[str, Any] | None
    platform: str | None = None


class _Pool:
    """A few reusable connections; psycopg connections are not shared between threads."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._size = size

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = psycopg.connect(self.url, autocommit=False)
        try:
            yield conn
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except psycopg.Error:
                conn.close()
            raise
        finally:
            if not conn.closed and self._idle.qsize() < self._size:
                self._idle.put(conn)
            elif not conn.closed:
                conn.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class FarmStore:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        max_context_bytes: int = DEFAULT_MAX_CONTEXT_BYTES,
        context_grace: float = DEFAULT_CONTEXT_GRACE,
        max_attempts: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.max_context_bytes = max_context_bytes
        self.context_grace = context_grace
        self.max_attempts = max_attempts
        self._pool = _Pool(url, pool_size)
        self._clock = clock

    def close(self) -> None:
        self._pool.close()

    def migrate(self) -> None:
        """Create what the schema lacks (see ``schema.migrate``): every replica and agent runs it
        at start."""
        with self._pool.connection() as conn:
            schema.migrate(conn)

    # -- builds ------------------------------------------------------------------------------
    def submit(
        self,
        *,
        uri: str,
        context: str,
        dedup_key: str,
        dockerfile: str = "Dockerfile",
        push: bool = True,
        force: bool = False,
        spec: dict[str, Any] | None = None,
        platform: str | None = None,
        family: str = "",
        preferred_engine: str | None = None,
        owner: str | None = None,
        max_builds_per_user: int = 0,
        max_running_per_user: int = 0,
    ) -> tuple[BuildInfo, bool]:
        """Insert a queued build, or join the unfinished one with the same ``dedup_key``:
        (record, joined). A forced build is always new. ``LookupError`` when the context is not
        stored; ``UserLimitError`` when ``owner`` already has ``max_builds_per_user`` unfinished
        builds (0: no limit) and this one would be new. ``max_running_per_user`` (0: none) is
        how many of ``owner``'s builds agents run at once."""
        build_id = uuid.uuid4().hex[:16]
        key = f"{dedup_key}:force:{build_id}" if force else dedup_key
        now = self._clock()
        with self._pool.connection() as conn:
            used = conn.execute(
                "UPDATE imagebuild_contexts SET last_used = %s WHERE digest = %s", (now, context)
            ).rowcount
            if not used:
                raise LookupError(context)
            if owner is not None and max_builds_per_user:
                self._check_user_limit(conn, owner, key, max_builds_per_user)
            row = conn.execute(
                f"""INSERT INTO imagebuild_builds (id, uri, context, dockerfile, push, force, spec,
                        dedup_key, family, created, queued_at, max_attempts, preferred_engine,
                        owner, running_cap, platform)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                    ON CONFLICT (dedup_key) WHERE status IN {_UNFINISHED}
                    DO UPDATE SET submissions = imagebuild_builds.submissions + 1,
                        joined_by = CASE
                            WHEN excluded.owner IS NULL
                              OR excluded.owner IS NOT DISTINCT FROM imagebuild_builds.owner
                              OR imagebuild_builds.joined_by ? excluded.owner
                            THEN imagebuild_builds.joined_by
                            ELSE imagebuild_builds.joined_by || jsonb_build_array(excluded.owner)
                        END
                    RETURNING {_INFO_COLUMNS}, (xmax = 0) AS inserted""",
                (build_id, uri, context, dockerfile, push, force,
                 None if spec is None else json.dumps(spec), key, family, now, now,
                 self.max_attempts, preferred_engine, owner,
                 max_running_per_user if owner is not None else 0, platform),
            ).fetchone()
            assert row is not None
            inserted = bool(row[-1])
            if inserted:
                conn.execute(f"NOTIFY {QUEUE_CHANNEL}")
        return _info(conn, row[:-1]), not inserted

    @staticmethod
    def _check_user_limit(conn: psycopg.Connection[Any], owner: str, key: str,
                          limit: int) -> None:
        # One submitter per user at a time across replicas (held to the commit): the count and
        # the insert below agree. A join (an unfinished build with this key) adds no work.
        conn.execute("SELECT pg_advisory_xact_lock(7150002, hashtext(%s))", (owner,))
        found = conn.execute(
            f"""SELECT count(*) FILTER (WHERE owner = %s),
                       count(*) FILTER (WHERE dedup_key = %s)
                FROM imagebuild_builds WHERE status IN {_UNFINISHED}
                  AND (owner = %s OR dedup_key = %s)""", (owner, key, owner, key)).fetchone()
        unfinished, joins = (found or (0, 0))
        if not joins and unfinished >= limit:
            raise UserLimitError(user_limit_message(owner, unfinished, limit))

    def get(self, build_id: str) -> BuildInfo | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                f"SELECT {_INFO_COLUMNS} FROM imagebuild_builds WHERE id = %s", (build_id,)
            ).fetchone()
            return None if row is None else _info(conn, row)

    def list(self, *, status: str | None = None, limit: int = 100,
             visible_to: str | None = None) -> list[BuildInfo]:
        query = f"SELECT {_INFO_COLUMNS} FROM imagebuild_builds WHERE true"
        params: list[Any] = []
        if status:
            query += " AND status = %s"
            params.append(status)
        if visible_to is not None:
            query += " AND (owner = %s OR joined_by ? %s)"
            params += [visible_to, visible_to]
        query += " ORDER BY created DESC LIMIT %s"
        params.append(limit)
        with self._pool.connection() as conn:
            return [_info(conn, row) for row in conn.execute(query, params).fetchall()]

    def counts(self) -> dict[str, int]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT status, count(*) FROM imagebuild_builds WHERE status IN {_UNFINISHED}"
                " GROUP BY status").fetchall()
        found = dict(rows)
        return {"running": int(found.get("running", 0)), "queued": int(found.get("queued", 0))}

    # -- events ------------------------------------------------------------------------------
    def append(self, build_id: str, attempt: int | None, events: Sequence[BuildEvent]) -> int:
        """Number and store ``events`` for the build; the last seq.

        ``attempt`` fences the write (None: the service itself, e.g. a cancel while queued).
        A terminal event ends the build: its record gets the outcome in the same transaction,
        the context is released, and anything after it is dropped.
        """
        with self._pool.connection() as conn:
            return self._append(conn, build_id, attempt, events)

    def _append(self, conn: psycopg.Connection[Any], build_id: str, attempt: int | None,
                events: Sequence[BuildEvent]) -> int:
        row = conn.execute(
            "SELECT events, attempt, status, context FROM imagebuild_builds WHERE id = %s"
            " FOR UPDATE", (build_id,)
        ).fetchone()
        if row is None:
            raise KeyError(build_id)
        seq, current, status, context = row
        if status not in ("queued", "running") or (attempt is not None and attempt != current):
            raise FencedError(f"build {build_id}: attempt {attempt} may not write "
                              f"(attempt {current}, {status})")
        rows = []
        outcome: dict[str, Any] | None = None
        for event in events:
            seq += 1
            numbered = event.numbered(seq)
            rows.append((build_id, seq, current, json.dumps(numbered.to_dict(),
                                                             separators=(",", ":"))))
            if is_terminal(numbered):
                outcome = _outcome(numbered)
                break
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO imagebuild_events (build_id, seq, attempt, data)"
                " VALUES (%s, %s, %s, %s)", rows)
        if outcome is not None:
            assignments = ", ".join(f"{name} = %s" for name in outcome)
            conn.execute(
                f"UPDATE imagebuild_builds SET events = %s, finished = %s, lease_until = NULL,"
                f" {assignments} WHERE id = %s",
                [seq, self._clock(), *outcome.values(), build_id])
            self._release_context(conn, context)
        else:
            conn.execute("UPDATE imagebuild_builds SET events = %s WHERE id = %s",
                         (seq, build_id))
        conn.execute("SELECT pg_notify(%s, %s)", (EVENTS_CHANNEL, build_id))
        return int(seq)

    def events(self, build_id: str, after: int = 0,
               limit: int = 10_000) -> builtins.list[tuple[int, str]]:
        """Stored events with seq > ``after``, in order: (seq, event JSON)."""
        with self._pool.connection() as conn:
            return [(int(seq), data) for seq, data in conn.execute(
                "SELECT seq, data FROM imagebuild_events WHERE build_id = %s AND seq > %s"
                " ORDER BY seq LIMIT %s", (build_id, after, limit)).fetchall()]

    # -- cancel ------------------------------------------------------------------------------
    def request_cancel(self, build_id: str) -> BuildInfo | None:
        """Ask for a cancel: a queued build ends here and now; a running one is flagged, and
        its agent (told by NOTIFY, or at its next heartbeat) stops it and writes the end."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT status FROM imagebuild_builds WHERE id = %s FOR UPDATE", (build_id,)
            ).fetchone()
            if row is None:
                return None
            if row[0] == "queued":
                self._append(conn, build_id, None,
                             [BuildCancelled(message="cancelled before the build started")])
            elif row[0] == "running":
                conn.execute("UPDATE imagebuild_builds SET cancel_requested = true WHERE id = %s",
                             (build_id,))
                conn.execute("SELECT pg_notify(%s, %s)", (CANCEL_CHANNEL, build_id))
        return self.get(build_id)

    # -- contexts ----------------------------------------------------------------------------
    def put_context(self, digest: str, data: bytes) -> None:
        if len(data) > self.max_context_bytes:
            raise ContextTooLargeError(
                f"the build context is {len(data)} bytes; the farm stores at most "
                f"{self.max_context_bytes}")
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO imagebuild_contexts (digest, data, size, last_used)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (digest) DO UPDATE"
                " SET last_used = EXCLUDED.last_used",
                (digest, data, len(data), self._clock()))

    def use_context(self, digest: str) -> bool:
        with self._pool.connection() as conn:
            return bool(conn.execute(
                "UPDATE imagebuild_contexts SET last_used = %s WHERE digest = %s",
                (self._clock(), digest)).rowcount)

    def read_context(self, digest: str) -> bytes | None:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT data FROM imagebuild_contexts WHERE digest = %s",
                               (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    def prune_contexts(self) -> builtins.list[str]:
        """Delete contexts no unfinished build needs and unused for ``context_grace`` s."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"""DELETE FROM imagebuild_contexts c WHERE c.last_used <= %s AND NOT EXISTS (
                        SELECT 1 FROM imagebuild_builds b
                        WHERE b.context = c.digest AND b.status IN {_UNFINISHED})
                    RETURNING digest""", (self._clock() - self.context_grace,)).fetchall()
        return [row[0] for row in rows]

    def _release_context(self, conn: psycopg.Connection[Any], digest: str) -> None:
        # After its last build a context goes, unless a client used it just now (it may be
        # about to submit against it: HEAD said "have it").
        conn.execute(
            f"""DELETE FROM imagebuild_contexts c WHERE c.digest = %s AND c.last_used <= %s
                AND NOT EXISTS (SELECT 1 FROM imagebuild_builds b WHERE b.context = c.digest
                                AND b.status IN {_UNFINISHED})""",
            (digest, self._clock() - self.context_grace))

    # -- for agents --------------------------------------------------------------------------
    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool.connection() as conn:
            yield conn

    def rows(self, query: str, params: Sequence[Any] = ()) -> builtins.list[dict[str, Any]]:
        """Plain rows as dicts (operators' metrics, tests sampling the farm)."""
        with self._pool.connection() as conn:
            with conn.cursor(row_factory=dict_row) as cursor:
                return list(cursor.execute(query, params).fetchall())

    def now(self) -> float:
        return self._clock()


def _info(conn: psycopg.Connection[Any], row: Sequence[Any]) -> BuildInfo:
    names = [name.strip() for name in _INFO_COLUMNS.split(",")]
    values = dict(zip(names, row, strict=True))
    values["status"] = BuildStatus(values["status"])
    values["log_tail"] = tuple(values["log_tail"] or ())
    values["joined_by"] = tuple(values["joined_by"] or ())
    values["events"] = int(values["events"])
    return BuildInfo(**values)


def _outcome(terminal: BuildEvent) -> dict[str, Any]:
    """The record's fields for a build that ended with ``terminal``."""
    if isinstance(terminal, BuildFinished):
        return {"status": "succeeded", "digest": terminal.digest, "image_id": terminal.image_id}
    if isinstance(terminal, BuildCancelled):
        return {"status": "cancelled", "error": terminal.message}
    if isinstance(terminal, BuildFailed):
        status = "interrupted" if terminal.message == INTERRUPTED_MESSAGE else "failed"
        return {"status": status, "error": terminal.message, "step": terminal.step,
                "exit_code": terminal.exit_code, "log_tail": json.dumps(list(terminal.lines))}
    return {"status": "failed", "error": getattr(terminal, "message", "failed")}


__all__ = ["CANCEL_CHANNEL", "Claim", "ContextTooLargeError", "EVENTS_CHANNEL", "FarmStore",
           "FencedError", "INTERRUPTED_MESSAGE", "QUEUE_CHANNEL"]
