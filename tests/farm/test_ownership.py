"""Owners, joiners, the per-user limit and the fair claim order in the farm's PostgreSQL store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from imagebuild_nb.farm import leases
from imagebuild_nb.farm.store import FarmStore
from imagebuild_nb.service.submission import UserLimitError


@pytest.fixture
def store(database_url: str) -> Iterator[FarmStore]:
    farm = FarmStore(database_url, context_grace=0.0)
    farm.migrate()
    farm.migrate()  # the new columns are added idempotently too
    yield farm
    farm.close()


def _context(store: FarmStore) -> str:
    digest = "sha256:" + hashlib.sha256(b"owned").hexdigest()
    store.put_context(digest, b"owned")
    return digest


def _submit(store: FarmStore, context: str, name: str, owner: str | None, **options: int):
    uri = f"localhost:5001/own/{name}:1"
    return store.submit(uri=uri, context=context, dedup_key=uri, push=False, owner=owner,
                        family=uri, **options)


def test_builds_record_their_owner_and_joiners_and_list_what_a_user_may_see(store: FarmStore):
    context = _context(store)
    record, joined = _submit(store, context, "a", "alice")
    assert (record.owner, record.joined_by, joined) == ("alice", (), False)
    for user in ("bob", "alice", None, "bob", "carol"):
        again, joined = _submit(store, context, "a", user)
        assert (again.id, joined) == (record.id, True)
    assert store.get(record.id).joined_by == ("bob", "carol")  # type: ignore[union-attr]
    _submit(store, context, "b", "bob")
    assert [b.uri for b in store.list(visible_to="carol")] == ["localhost:5001/own/a:1"]
    assert len(store.list(visible_to="bob")) == 2
    assert len(store.list()) == 2


def test_a_users_build_past_max_builds_per_user_is_refused_but_a_join_is_not(store: FarmStore):
    context = _context(store)
    _submit(store, context, "a1", "alice", max_builds_per_user=2)
    _submit(store, context, "a2", "alice", max_builds_per_user=2)
    with pytest.raises(UserLimitError, match=r"max_builds_per_user=2"):
        _submit(store, context, "a3", "alice", max_builds_per_user=2)
    assert _submit(store, context, "a1", "alice", max_builds_per_user=2)[1] is True
    assert _submit(store, context, "b1", "bob", max_builds_per_user=2)[1] is False
    assert _submit(store, context, "t1", None, max_builds_per_user=2)[1] is False


def test_an_engine_claims_the_build_of_the_user_with_fewer_builds_running(store: FarmStore):
    context = _context(store)
    leases.register(store, "engine-1", slots=10)
    for n in range(10):
        _submit(store, context, f"a{n}", "alice")
    _submit(store, context, "b0", "bob")
    claimed = [leases.claim(store, "engine-1", slots=10) for _ in range(3)]
    assert [c.uri for c in claimed if c] == ["localhost:5001/own/a0:1",
                                             "localhost:5001/own/b0:1",
                                             "localhost:5001/own/a1:1"]


def test_agents_leave_a_users_builds_waiting_past_max_running_per_user(store: FarmStore):
    context = _context(store)
    leases.register(store, "engine-1", slots=10)
    for n in range(3):
        _submit(store, context, f"a{n}", "alice", max_running_per_user=1)
    _submit(store, context, "b0", "bob", max_running_per_user=1)
    claimed = [leases.claim(store, "engine-1", slots=10) for _ in range(3)]
    # Slots are free, yet alice's second build waits for her first.
    assert [c.uri if c else None for c in claimed] == [
        "localhost:5001/own/a0:1", "localhost:5001/own/b0:1", None]


def test_a_replica_starting_beside_running_builds_migrates_without_locking_them(
        store: FarmStore, database_url: str):
    import psycopg

    record, _ = _submit(store, _context(store), "busy", "alice")
    # An agent's transaction holds a build's row while another replica or agent starts: its
    # migration must not wait for the table (a lock timeout makes waiting an error here).
    with psycopg.connect(database_url) as writer:
        writer.execute("UPDATE imagebuild_builds SET events = events WHERE id = %s", (record.id,))
        starting = FarmStore(database_url, context_grace=0.0)
        try:
            with starting.connection() as conn:
                conn.execute("SET lock_timeout = '2s'")  # kept by the pooled connection
            starting.migrate()
        finally:
            starting.close()


def test_an_older_farm_database_gets_the_owner_columns(store: FarmStore, database_url: str):
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE imagebuild_builds DROP COLUMN owner, DROP COLUMN joined_by,"
                     " DROP COLUMN running_cap")
    store.migrate()
    record, _ = _submit(store, _context(store), "after", "alice")
    assert (record.owner, record.joined_by) == ("alice", ())
