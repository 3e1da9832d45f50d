"""The build farm's PostgreSQL schema, and its migration at the start of every replica and agent.

``SCHEMA`` is the first farm schema; ``_ADDED_COLUMNS`` and ``_ADDED_INDEXES`` what came after
(owners and per-user limits). ``migrate`` creates what is missing under an advisory lock, and
leaves a current schema alone: DDL, even ``IF NOT EXISTS``, locks the builds table, and a replica
or agent that starts beside running builds must not make them wait (or deadlock one).
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

UNFINISHED = "('queued', 'running')"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS imagebuild_builds (
    id text PRIMARY KEY,
    uri text NOT NULL,
    context text NOT NULL,
    dockerfile text NOT NULL DEFAULT 'Dockerfile',
    push boolean NOT NULL DEFAULT true,
    force boolean NOT NULL DEFAULT false,
    spec jsonb,
    dedup_key text NOT NULL,
    family text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'queued',
    created double precision NOT NULL,
    queued_at double precision NOT NULL,
    started double precision,
    finished double precision,
    digest text, image_id text, error text, step text, exit_code integer,
    log_tail jsonb NOT NULL DEFAULT '[]',
    events bigint NOT NULL DEFAULT 0,
    submissions integer NOT NULL DEFAULT 1,
    attempt integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 3,
    engine text,
    preferred_engine text,
    avoid_engine text,
    lease_until double precision,
    cancel_requested boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX IF NOT EXISTS imagebuild_builds_inflight
    ON imagebuild_builds (dedup_key) WHERE status IN {UNFINISHED};
CREATE INDEX IF NOT EXISTS imagebuild_builds_queue
    ON imagebuild_builds (created) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS imagebuild_builds_family
    ON imagebuild_builds (family, finished) WHERE status = 'succeeded';
CREATE TABLE IF NOT EXISTS imagebuild_events (
    build_id text NOT NULL REFERENCES imagebuild_builds (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    attempt integer NOT NULL,
    data text NOT NULL,
    PRIMARY KEY (build_id, seq)
);
CREATE TABLE IF NOT EXISTS imagebuild_contexts (
    digest text PRIMARY KEY,
    data bytea NOT NULL,
    size bigint NOT NULL,
    last_used double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS imagebuild_engines (
    name text PRIMARY KEY,
    slots integer NOT NULL,
    heartbeat double precision NOT NULL,
    draining boolean NOT NULL DEFAULT false
);
"""

# Columns added after the first farm schema: added to an older database by the first replica or
# agent that starts (only when missing: ALTER TABLE locks the table against running builds).
_ADDED_COLUMNS = {
    # The Hub user who submitted the build, and who joined it since.
    "owner": "text",
    "joined_by": "jsonb NOT NULL DEFAULT '[]'",
    # The submitting replica's max_running_per_user, kept with the build for the agents' claims.
    "running_cap": "integer NOT NULL DEFAULT 0",
    # The platform(s) to build for (os/arch[,os/arch...]); NULL: the engine's own.
    "platform": "text",
}
_ADDED_INDEXES = f"""
CREATE INDEX IF NOT EXISTS imagebuild_builds_owner
    ON imagebuild_builds (owner, status) WHERE status IN {UNFINISHED};
CREATE INDEX IF NOT EXISTS imagebuild_builds_owner_started ON imagebuild_builds (owner, started);
"""


_INDEXES = frozenset(re.findall(r"INDEX IF NOT EXISTS (\w+)", SCHEMA + _ADDED_INDEXES))
_TABLES = frozenset(re.findall(r"TABLE IF NOT EXISTS (\w+)", SCHEMA))


def _columns(conn: psycopg.Connection[Any]) -> set[str]:
    return {row[0] for row in conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = 'imagebuild_builds' AND table_schema = current_schema()")}


def _schema_is_current(conn: psycopg.Connection[Any]) -> bool:
    tables = {row[0] for row in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    indexes = {row[0] for row in conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}
    return (_TABLES <= tables and _INDEXES <= indexes
            and set(_ADDED_COLUMNS) <= _columns(conn))


def migrate(conn: psycopg.Connection[Any]) -> None:
    """Create the tables, columns and indexes that are missing, in ``conn``'s transaction."""
    if _schema_is_current(conn):
        return
    conn.execute("SELECT pg_advisory_xact_lock(7150001)")  # one migrating process at a time
    conn.execute(SCHEMA)
    for name in [name for name in _ADDED_COLUMNS if name not in _columns(conn)]:
        conn.execute(f"ALTER TABLE imagebuild_builds ADD COLUMN {name} {_ADDED_COLUMNS[name]}")
    conn.execute(_ADDED_INDEXES)


__all__ = ["SCHEMA", "UNFINISHED", "migrate"]
