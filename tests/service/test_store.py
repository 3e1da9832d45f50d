"""BuildStore: which uploaded contexts a prune deletes (age since last use, never those in use),
and a state directory written by an older version."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from imagebuild_nb.service.store import BuildRecord, BuildStore

OLD, IN_USE, FRESH = ("sha256:" + c * 64 for c in "abc")


def test_prune_deletes_contexts_unused_for_the_retention_except_those_in_use(
        tmp_path: Path) -> None:
    store = BuildStore(tmp_path / "state")
    try:
        for digest in (OLD, IN_USE, FRESH):
            store.context_path(digest).write_bytes(b"tar")
        for digest in (OLD, IN_USE):
            past = time.time() - 7200
            os.utime(store.context_path(digest), (past, past))
        assert store.prune_contexts(unused_for=3600, keep=[IN_USE]) == [OLD]
        assert not store.context_path(OLD).exists()
        assert store.context_path(IN_USE).exists() and store.context_path(FRESH).exists()
        # A use restarts the clock.
        assert store.use_context(IN_USE) and not store.use_context(OLD)
        assert store.prune_contexts(unused_for=3600) == []
    finally:
        store.close()


def test_a_state_directory_from_before_the_failure_fields_opens_and_keeps_its_builds(
    tmp_path: Path,
) -> None:
    import sqlite3

    root = tmp_path / "state"
    root.mkdir()
    old_columns = ("id, uri, context, status, dockerfile, push, force, spec, dedup_key, created, "
                   "started, finished, digest, image_id, error, events, submissions")
    with sqlite3.connect(root / "builds.sqlite3") as db:
        db.execute(f"CREATE TABLE builds ({old_columns}, PRIMARY KEY (id))")
        db.execute(f"INSERT INTO builds ({old_columns}) VALUES "
                   "('0123456789abcdef', 'r/x:1', ?, 'failed', 'Dockerfile', 1, 0, NULL, 'k', 1.0, "
                   "2.0, 3.0, NULL, NULL, 'boom', 4, 1)", (OLD,))
    db.close()
    store = BuildStore(root)
    try:
        old = store.get("0123456789abcdef")
        assert old is not None and (old.error, old.step, old.exit_code, old.log_tail) == (
            "boom", None, None, ())
        failed = store.update(old.id, step="step 2: RUN make", exit_code=2, log_tail=("a", "b"))
        assert (failed.step, failed.exit_code, failed.log_tail) == (
            "step 2: RUN make", 2, ("a", "b"))
    finally:
        store.close()


def test_the_event_reader_goes_on_from_where_it_stopped_and_leaves_a_partial_line(
    tmp_path: Path,
) -> None:
    store = BuildStore(tmp_path)
    store.build_dir("b").mkdir(parents=True)
    reader = store.event_reader("b")
    with store.open_event_log("b") as log:
        log.write("".join(f'{{"seq":{seq}}}\n' for seq in range(1, 6)) + '{"seq":6')
    assert reader.read(0, 3) == [(1, '{"seq":1}'), (2, '{"seq":2}'), (3, '{"seq":3}')]
    assert reader.read(3, 10) == [(4, '{"seq":4}'), (5, '{"seq":5}')]  # not the half line
    with store.open_event_log("b") as log:
        log.write("}\n")
    assert reader.read(5, 10) == [(6, '{"seq":6}')]
    assert reader.read(1, 2) == [(2, '{"seq":2}'), (3, '{"seq":3}')]  # back: reads again
    reader.close()
    store.close()


def test_a_state_directory_of_an_older_version_keeps_its_builds_and_takes_new_ones(
        tmp_path: Path):
    # The builds table as the first set wrote it: no owner, joined_by or secrets, and its
    # columns in another order than today's record fields.
    (tmp_path / "builds").mkdir()
    (tmp_path / "contexts").mkdir()
    old = sqlite3.connect(tmp_path / "builds.sqlite3")
    old.execute("CREATE TABLE builds (id, uri, context, status, dockerfile, push, force, spec, "
                "dedup_key, created, started, finished, digest, image_id, error, step, "
                "exit_code, log_tail, events, submissions, PRIMARY KEY (id))")
    old.execute("INSERT INTO builds VALUES ('old1', 'r/x:1', 'sha256:0', 'succeeded', "
                "'Dockerfile', 1, 0, NULL, 'k', 1.0, 2.0, 3.0, 'sha256:d', NULL, NULL, NULL, "
                "NULL, '[]', 7, 1)")
    old.commit()
    old.close()
    store = BuildStore(tmp_path)
    before = store.get("old1")
    assert before is not None
    assert (before.status, before.events, before.owner, before.joined_by) == (
        "succeeded", 7, None, ())
    new = store.insert(BuildRecord.new(uri="r/x:2", context="sha256:1", owner="alice"))
    again = store.get(new.id)
    assert again is not None and (again.uri, again.owner, again.status) == (
        "r/x:2", "alice", "queued")
    assert [r.id for r in store.list(visible_to="alice")] == [new.id]
    store.close()
