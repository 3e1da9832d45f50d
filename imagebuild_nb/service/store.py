"""Durable build records (sqlite) and per-build event logs (JSON lines), so a restart loses nothing.

Layout below the state directory::

    builds.sqlite3            one row per build
    builds/<id>/events.jsonl  every event the build produced, one JSON object a line (seq order)
    builds/<id>/context/      the extracted build context (removed when the build ends)
    contexts/sha256-<hex>.tar uploaded contexts, content addressed; kept for a retention period
                              after their last use (upload, HEAD, submission): ``prune_contexts``

>>> import tempfile
>>> store = BuildStore(Path(tempfile.mkdtemp()))
>>> record = store.insert(BuildRecord.new(uri="localhost:5001/x:1", context="sha256:" + "0" * 64))
>>> store.get(record.id).status.value
'queued'
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from imagebuild_nb.wire import ALL_STATUSES, BuildInfo
from imagebuild_nb.wire import TERMINAL_STATUSES as TERMINAL_STATUSES  # re-exported

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED = ALL_STATUSES


@dataclass(frozen=True)
class BuildRecord(BuildInfo):
    """A build as the embedded service stores it: the wire record (``BuildInfo``: every field a
    client sees) and what stays inside the service."""

    # Identical unfinished submissions share this key (and so one build).
    dedup_key: str = ""
    # Build secrets by name (BuildKit id -> name in the service's configuration); never values.
    secrets: dict[str, str] | None = None

    @classmethod
    def new(cls, **values: Any) -> BuildRecord:
        return cls(id=uuid.uuid4().hex[:16], created=time.time(), **values)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.pop("dedup_key")
        return data


# The wire's farm and reply fields are not stored here.
_NOT_STORED = {"attempt", "engine", "links", "deduplicated", "extra"}
_COLUMNS = [f.name for f in dataclasses.fields(BuildRecord) if f.name not in _NOT_STORED]
_JSON_COLUMNS = {"spec", "log_tail", "secrets", "joined_by"}
_SCHEMA = f"CREATE TABLE IF NOT EXISTS builds ({', '.join(_COLUMNS)}, PRIMARY KEY (id))"


class BuildStore:
    """sqlite rows + JSON-lines event logs. Used from the server's event loop thread only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "builds").mkdir(parents=True, exist_ok=True)
        (root / "contexts").mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(root / "builds.sqlite3", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        # A state directory from an older version lacks newer columns: add them (as NULL).
        present = {row[1] for row in self._db.execute("PRAGMA table_info(builds)")}
        for name in _COLUMNS:
            if name not in present:
                self._db.execute(f"ALTER TABLE builds ADD COLUMN {name}")
        self._db.execute("CREATE INDEX IF NOT EXISTS builds_status ON builds (status)")
        self._db.execute("CREATE INDEX IF NOT EXISTS builds_owner ON builds (owner, created)")

    def close(self) -> None:
        self._db.close()

    def insert(self, record: BuildRecord) -> BuildRecord:
        self.build_dir(record.id).mkdir(parents=True, exist_ok=True)
        values = [self._encode(name, getattr(record, name)) for name in _COLUMNS]
        placeholders = ", ".join("?" for _ in _COLUMNS)
        # Columns by name: a state directory from an older version has them in another order.
        self._db.execute(
            f"INSERT INTO builds ({', '.join(_COLUMNS)}) VALUES ({placeholders})", values)
        return record

    def update(self, build_id: str, **changes: Any) -> BuildRecord:
        unknown = set(changes) - set(_COLUMNS)
        if unknown:
            raise KeyError(f"unknown build record fields: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in changes)
        values = [self._encode(name, value) for name, value in changes.items()]
        self._db.execute(f"UPDATE builds SET {assignments} WHERE id = ?", [*values, build_id])
        record = self.get(build_id)
        if record is None:
            raise KeyError(build_id)
        return record

    def get(self, build_id: str) -> BuildRecord | None:
        row = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM builds WHERE id = ?", (build_id,)
        ).fetchone()
        return None if row is None else self._decode(row)

    def list(
        self, *, status: str | None = None, limit: int = 100, visible_to: str | None = None
    ) -> list[BuildRecord]:
        """The newest builds, of one status; with ``visible_to``, only those that user
        submitted or joined."""
        query = f"SELECT {', '.join(_COLUMNS)} FROM builds WHERE 1 = 1"
        params: list[Any] = []
        if status:
            query += " AND status = ?"
            params.append(status)
        if visible_to is not None:
            query += (" AND (owner = ?"
                      " OR EXISTS (SELECT 1 FROM json_each(joined_by) WHERE value = ?))")
            params += [visible_to, visible_to]
        query += " ORDER BY created DESC LIMIT ?"
        params.append(limit)
        return [self._decode(row) for row in self._db.execute(query, params)]

    def unfinished(self) -> builtins.list[BuildRecord]:
        rows = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM builds WHERE status IN (?, ?) ORDER BY created",
            (QUEUED, RUNNING),
        )
        return [self._decode(row) for row in rows]

    def build_dir(self, build_id: str) -> Path:
        return self.root / "builds" / build_id

    def context_path(self, digest: str) -> Path:
        return self.root / "contexts" / (digest.replace(":", "-") + ".tar")

    def contexts_dir(self) -> Path:
        return self.root / "contexts"

    def use_context(self, digest: str) -> bool:
        """Mark an uploaded context as used now (its mtime); False when it is not here."""
        try:
            os.utime(self.context_path(digest))
        except FileNotFoundError:
            return False
        return True

    def prune_contexts(self, *, unused_for: float, keep: Iterable[str] = ()) -> builtins.list[str]:
        """Delete uploaded contexts not used for ``unused_for`` seconds, except ``keep``
        (digests); the deleted digests."""
        cutoff = time.time() - unused_for
        kept = {self.context_path(digest).name for digest in keep}
        deleted = []
        for path in self.contexts_dir().glob("sha256-*.tar"):
            try:
                if path.name not in kept and path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted.append(path.name[: -len(".tar")].replace("-", ":", 1))
            except FileNotFoundError:
                continue
        return deleted

    def open_event_log(self, build_id: str) -> IO[str]:
        return (self.build_dir(build_id) / "events.jsonl").open("a", encoding="utf-8")

    def event_reader(self, build_id: str) -> EventReader:
        """A reader of the build's event log that goes on from where it stopped."""
        return EventReader(self.build_dir(build_id) / "events.jsonl")

    def read_events(self, build_id: str, after: int = 0) -> Iterator[str]:
        """Yield the JSON text of every stored event with ``seq > after``, in order."""
        path = self.build_dir(build_id) / "events.jsonl"
        if not path.exists():
            return
        with path.open(encoding="utf-8") as handle:
            for seq, line in enumerate(handle, start=1):
                if seq > after and line.endswith("\n"):
                    yield line[:-1]

    @staticmethod
    def _encode(name: str, value: Any) -> Any:
        if name in _JSON_COLUMNS:
            return None if value is None else json.dumps(value, sort_keys=True)
        return value

    @staticmethod
    def _decode(row: tuple[Any, ...]) -> BuildRecord:
        values = dict(zip(_COLUMNS, row, strict=True))
        for name in _JSON_COLUMNS:
            if values[name] is not None:
                values[name] = json.loads(values[name])
        values["log_tail"] = tuple(values["log_tail"] or ())
        values["joined_by"] = tuple(values["joined_by"] or ())
        values["push"] = bool(values["push"])
        values["force"] = bool(values["force"])
        return BuildRecord(**values)


class EventReader:
    """Batches of (seq, event JSON) from a build's event log, read on from where the last batch
    stopped: the log only grows, so following a build of N events reads each line once and
    holds one batch in memory. A line not yet ended (being written) is left for the next read.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._handle: IO[bytes] | None = None
        self._seq = 0  # lines read so far

    def read(self, after: int, limit: int) -> list[tuple[int, str]]:
        if self._handle is None or after < self._seq:
            self.close()
            try:
                self._handle = self._path.open("rb")
            except FileNotFoundError:
                return []
        handle = self._handle
        batch: list[tuple[int, str]] = []
        while len(batch) < limit:
            position = handle.tell()
            line = handle.readline()
            if not line.endswith(b"\n"):
                handle.seek(position)
                break
            self._seq += 1
            if self._seq > after:
                batch.append((self._seq, line[:-1].decode("utf-8")))
        return batch

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle, self._seq = None, 0
