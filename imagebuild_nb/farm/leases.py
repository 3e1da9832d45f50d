"""Claims, leases and the hand-on of lost builds: the agents' side of the farm store.

- ``register``/``beat``: an engine's row, refreshed by its agent; an engine is *alive* while its
  heartbeat is younger than ``alive_for`` seconds.
- ``claim``: the next queued build for an engine, under its slot limit, with ``FOR UPDATE SKIP
  LOCKED`` so concurrent agents never take the same build. Builds whose family belongs to this
  engine (``affinity.choose``) come first; others' builds once they waited ``steal_after``
  seconds. The claim bumps the build's attempt: the fence for every later write.
- ``renew``: extend the leases of the builds an agent still holds; those it lost (handed on or
  ended) and those with a cancel request are returned.
- ``reap``: running builds whose lease expired are queued again ("retrying on another engine,
  attempt 2/3"), or end ``interrupted`` after the last attempt. Any agent runs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from imagebuild_nb.events import BuildFailed, LogLine
from imagebuild_nb.farm import affinity
from imagebuild_nb.farm.store import INTERRUPTED_MESSAGE, Claim, FarmStore

DEFAULT_LEASE = 15.0
DEFAULT_ALIVE_FOR = 15.0
DEFAULT_STEAL_AFTER = 3.0


@dataclass(frozen=True)
class Renewal:
    lost: frozenset[str] = field(default_factory=frozenset)
    cancel: frozenset[str] = field(default_factory=frozenset)


def register(store: FarmStore, engine: str, slots: int) -> None:
    with store.connection() as conn:
        conn.execute(
            "INSERT INTO imagebuild_engines (name, slots, heartbeat) VALUES (%s, %s, %s)"
            " ON CONFLICT (name) DO UPDATE SET slots = EXCLUDED.slots,"
            " heartbeat = EXCLUDED.heartbeat, draining = false",
            (engine, slots, store.now()))


def beat(store: FarmStore, engine: str) -> bool:
    """Refresh the engine's heartbeat; whether an operator asked it to drain."""
    with store.connection() as conn:
        row = conn.execute(
            "UPDATE imagebuild_engines SET heartbeat = %s WHERE name = %s RETURNING draining",
            (store.now(), engine)).fetchone()
    return bool(row and row[0])


def drain(store: FarmStore, engine: str, draining: bool = True) -> None:
    """Ask an engine's agent to take no new builds (it finishes those it runs)."""
    with store.connection() as conn:
        conn.execute("UPDATE imagebuild_engines SET draining = %s WHERE name = %s",
                     (draining, engine))


def alive_engines(store: FarmStore, alive_for: float = DEFAULT_ALIVE_FOR) -> list[str]:
    with store.connection() as conn:
        rows = conn.execute(
            "SELECT name FROM imagebuild_engines WHERE heartbeat > %s AND NOT draining",
            (store.now() - alive_for,)).fetchall()
    return sorted(row[0] for row in rows)


def claim(
    store: FarmStore,
    engine: str,
    slots: int,
    *,
    lease: float = DEFAULT_LEASE,
    steal_after: float = DEFAULT_STEAL_AFTER,
    alive_for: float = DEFAULT_ALIVE_FOR,
) -> Claim | None:
    """Claim one queued build for ``engine`` (None: nothing for it, or its slots are full)."""
    now = store.now()
    alive = alive_engines(store, alive_for)
    if engine not in alive:
        alive.append(engine)
    with store.connection() as conn:
        # One claimer per engine at a time: the slot count below stays true.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (engine,))
        running = conn.execute(
            "SELECT count(*) FROM imagebuild_builds WHERE engine = %s AND status = 'running'",
            (engine,)).fetchone()
        if running is None or running[0] >= slots:
            return None
        candidates = conn.execute(
            """SELECT q.id, q.family, q.queued_at, q.avoid_engine,
                      (SELECT s.engine FROM imagebuild_builds s
                       WHERE s.family = q.family AND s.status = 'succeeded'
                       ORDER BY s.finished DESC LIMIT 1) AS last_engine
               FROM imagebuild_builds q WHERE q.status = 'queued'
                 AND (q.running_cap = 0 OR q.running_cap > (
                      SELECT count(*) FROM imagebuild_builds r WHERE r.status = 'running'
                      AND r.owner = q.owner))
               ORDER BY
                 -- fair between users: first the user with the fewest builds running, then
                 -- the one whose last build started longest ago, then the oldest build
                 (SELECT count(*) FROM imagebuild_builds r WHERE r.status = 'running'
                  AND r.owner IS NOT DISTINCT FROM q.owner),
                 (SELECT coalesce(max(r.started), 0) FROM imagebuild_builds r
                  WHERE r.status IN ('running', 'succeeded', 'failed', 'cancelled')
                  AND r.owner IS NOT DISTINCT FROM q.owner AND r.started IS NOT NULL),
                 q.created
               LIMIT 200""").fetchall()
        mine, others = [], []
        for build_id, family, queued_at, avoid, last_engine in candidates:
            waited = now - queued_at >= steal_after
            if avoid == engine and not waited and len(alive) > 1:
                continue  # a retry goes to another engine first
            target = affinity.choose(family, alive, last_engine=last_engine)
            if target == engine or avoid == target:
                mine.append(build_id)
            elif waited:
                others.append(build_id)
        for build_id in [*mine, *others]:
            row = conn.execute(
                """UPDATE imagebuild_builds SET status = 'running', attempt = attempt + 1,
                          engine = %s, lease_until = %s, avoid_engine = NULL,
                          started = coalesce(started, %s)
                   WHERE id = (SELECT id FROM imagebuild_builds WHERE id = %s
                               AND status = 'queued' FOR UPDATE SKIP LOCKED)
                   RETURNING id, attempt, max_attempts, uri, context, dockerfile, push, force,
                             spec, platform""",
                (engine, now + lease, now, build_id)).fetchone()
            if row is not None:
                spec = row[8] if not isinstance(row[8], str) else json.loads(row[8])
                return Claim(id=row[0], attempt=row[1], max_attempts=row[2], uri=row[3],
                             context=row[4], dockerfile=row[5], push=row[6], force=row[7],
                             spec=spec, platform=row[9])
    return None


def renew(store: FarmStore, engine: str, held: dict[str, int], *,
          lease: float = DEFAULT_LEASE) -> Renewal:
    """Extend the leases of ``held`` (build id -> attempt)."""
    if not held:
        return Renewal()
    with store.connection() as conn:
        rows = conn.execute(
            """UPDATE imagebuild_builds SET lease_until = %s
               WHERE id = ANY(%s) AND engine = %s AND status = 'running'
               RETURNING id, attempt, cancel_requested""",
            (store.now() + lease, list(held), engine)).fetchall()
    kept = {build_id for build_id, attempt, _ in rows if held.get(build_id) == attempt}
    cancel = {build_id for build_id, attempt, wanted in rows if wanted and build_id in kept}
    return Renewal(lost=frozenset(set(held) - kept), cancel=frozenset(cancel))


def reap(store: FarmStore) -> list[str]:
    """Hand on (or end) running builds whose lease expired; their ids."""
    handled = []
    now = store.now()
    with store.connection() as conn:
        expired = conn.execute(
            """SELECT id, attempt, max_attempts, engine, cancel_requested FROM imagebuild_builds
               WHERE status = 'running' AND lease_until < %s
               FOR UPDATE SKIP LOCKED""", (now,)).fetchall()
        for build_id, attempt, max_attempts, engine, cancel_requested in expired:
            if cancel_requested:
                from imagebuild_nb.events import BuildCancelled

                store._append(conn, build_id, None,
                              [BuildCancelled(message=f"cancelled (engine {engine} was lost)")])
            elif attempt < max_attempts:
                store._append(conn, build_id, None, [LogLine(
                    text=f"engine {engine} was lost: retrying on another engine, "
                         f"attempt {attempt + 1}/{max_attempts}", stream="stderr")])
                conn.execute(
                    """UPDATE imagebuild_builds SET status = 'queued', engine = NULL,
                              lease_until = NULL, avoid_engine = %s, queued_at = %s
                       WHERE id = %s""", (engine, now, build_id))
                conn.execute("NOTIFY imagebuild_queue")
            else:
                store._append(conn, build_id, None, [BuildFailed(
                    message=INTERRUPTED_MESSAGE,
                    lines=(f"attempt {attempt}/{max_attempts} lost engine {engine}",))])
            handled.append(build_id)
    return handled


def release(store: FarmStore, engine: str, build_ids: Iterable[str]) -> None:
    """Give builds back to the queue at once (an agent stopping cleanly): the lease ends now."""
    with store.connection() as conn:
        conn.execute(
            "UPDATE imagebuild_builds SET lease_until = 0 WHERE id = ANY(%s) AND engine = %s"
            " AND status = 'running'", (list(build_ids), engine))


__all__ = ["Renewal", "alive_engines", "beat", "claim", "drain", "reap", "register", "release",
           "renew"]
