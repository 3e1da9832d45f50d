"""The farm store on a real PostgreSQL: dedup, fenced numbered events, leases, cancel, contexts."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator

import pytest

from imagebuild_nb.events import BuildFinished, LogLine
from imagebuild_nb.farm import leases
from imagebuild_nb.farm.store import ContextTooLargeError, FarmStore, FencedError
from imagebuild_nb.wire import BuildStatus


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(database_url: str, clock: Clock) -> Iterator[FarmStore]:
    farm = FarmStore(database_url, clock=clock, context_grace=0.0, max_context_bytes=1000)
    farm.migrate()
    farm.migrate()  # idempotent: every replica runs it at start
    yield farm
    farm.close()


def put(store: FarmStore, content: bytes = b"context") -> str:
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    store.put_context(digest, content)
    return digest


def submit(store: FarmStore, digest: str, uri: str = "localhost:5001/f/app:1", key: str = "k"):
    return store.submit(uri=uri, context=digest, dedup_key=key, push=False,
                        family=uri.rsplit(":", 1)[0])


def test_identical_submissions_from_many_connections_join_one_build(store: FarmStore):
    digest = put(store)
    results: list[tuple[str, bool]] = []
    lock = threading.Lock()

    def one() -> None:
        info, joined = submit(store, digest)
        with lock:
            results.append((info.id, joined))

    threads = [threading.Thread(target=one) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({build_id for build_id, _ in results}) == 1
    assert sorted(joined for _, joined in results) == [False] + [True] * 9
    assert store.get(results[0][0]).submissions == 10  # type: ignore[union-attr]


def test_a_submission_without_its_context_is_refused(store: FarmStore):
    with pytest.raises(LookupError):
        submit(store, "sha256:" + "0" * 64)


def test_event_ids_increase_across_attempts_and_a_stale_agent_is_fenced(store: FarmStore,
                                                                         clock: Clock):
    info, _ = submit(store, put(store))
    leases.register(store, "e1", 2)
    leases.register(store, "e2", 2)
    first = leases.claim(store, "e1", 2, steal_after=0) or leases.claim(store, "e2", 2,
                                                                         steal_after=0)
    assert first is not None and first.attempt == 1
    lost_engine = store.get(info.id).engine  # type: ignore[union-attr]
    store.append(info.id, 1, [LogLine(text="one"), LogLine(text="two")])
    clock.now += leases.DEFAULT_LEASE + 1
    leases.register(store, "e1", 2)
    leases.register(store, "e2", 2)
    assert leases.reap(store) == [info.id]
    queued = store.get(info.id)
    assert queued is not None and queued.status is BuildStatus.QUEUED
    other = "e2" if lost_engine == "e1" else "e1"
    # The retry goes to the other engine first, whatever affinity says.
    assert leases.claim(store, lost_engine, 2, steal_after=60) is None  # type: ignore[arg-type]
    second = leases.claim(store, other, 2, steal_after=60)
    assert second is not None and second.attempt == 2
    with pytest.raises(FencedError):
        store.append(info.id, 1, [LogLine(text="stale")])
    assert leases.renew(store, lost_engine, {info.id: 1}).lost == {info.id}  # type: ignore[arg-type]
    store.append(info.id, 2, [LogLine(text="three"),
                              BuildFinished(uri=info.uri, digest="sha256:" + "d" * 64),
                              LogLine(text="after the end is dropped")])
    with pytest.raises(FencedError):
        store.append(info.id, 2, [LogLine(text="late")])
    events = store.events(info.id)
    seqs = [seq for seq, _ in events]
    assert seqs == list(range(1, len(seqs) + 1))
    kinds = [json.loads(text)["kind"] for _, text in events]
    texts = [json.loads(text).get("text") for _, text in events]
    assert kinds.count("finished") == 1 and kinds[-1] == "finished"
    assert f"engine {lost_engine} was lost: retrying on another engine, attempt 2/3" in texts
    assert "stale" not in texts and "late" not in texts
    done = store.get(info.id)
    assert done is not None and done.status is BuildStatus.SUCCEEDED and done.events == seqs[-1]


def test_after_the_last_attempt_the_build_is_interrupted_with_its_log(store: FarmStore,
                                                                      clock: Clock):
    info, _ = submit(store, put(store))
    for attempt in (1, 2, 3):
        leases.register(store, f"e{attempt}", 1)
        claim = leases.claim(store, f"e{attempt}", 1, steal_after=0)
        assert claim is not None and claim.attempt == attempt
        store.append(info.id, attempt, [LogLine(text=f"attempt {attempt} ran")])
        clock.now += leases.DEFAULT_LEASE + 1
        leases.reap(store)
    ended = store.get(info.id)
    assert ended is not None and ended.status is BuildStatus.INTERRUPTED
    texts = [json.loads(text).get("text") for _, text in store.events(info.id)]
    assert {"attempt 1 ran", "attempt 2 ran", "attempt 3 ran"} <= set(texts)
    assert [json.loads(text)["kind"] for _, text in store.events(info.id)][-1] == "failed"


def test_slot_limit_and_cancel(store: FarmStore):
    first, _ = submit(store, put(store, b"a"), key="a")
    second, _ = submit(store, put(store, b"b"), key="b")
    leases.register(store, "e1", 1)
    claim = leases.claim(store, "e1", 1, steal_after=0)
    assert claim is not None
    assert leases.claim(store, "e1", 1, steal_after=0) is None  # one slot, taken
    waiting = second if claim.id == first.id else first
    cancelled = store.request_cancel(waiting.id)
    assert cancelled is not None and cancelled.status is BuildStatus.CANCELLED
    flagged = store.request_cancel(claim.id)
    assert flagged is not None and flagged.status is BuildStatus.RUNNING
    assert leases.renew(store, "e1", {claim.id: claim.attempt}).cancel == {claim.id}


def test_a_family_goes_back_to_the_engine_that_built_it(store: FarmStore, clock: Clock):
    leases.register(store, "e1", 2)
    leases.register(store, "e2", 2)
    info, _ = submit(store, put(store, b"1"), uri="localhost:5001/fam/app:1", key="1")
    builder = next(engine for engine in ("e1", "e2")
                   if leases.claim(store, engine, 2, steal_after=60) is not None)
    store.append(info.id, 1, [BuildFinished(uri=info.uri)])
    other = "e2" if builder == "e1" else "e1"
    again, _ = submit(store, put(store, b"2"), uri="localhost:5001/fam/app:2", key="2")
    assert leases.claim(store, other, 2, steal_after=60) is None
    clock.now += 61  # an idle engine takes others' work after waiting
    assert leases.claim(store, other, 2, steal_after=60) is not None


def test_a_context_goes_after_its_last_build_and_has_a_size_limit(store: FarmStore):
    digest = put(store, b"shared")
    one, _ = submit(store, digest, key="one")
    two, _ = submit(store, digest, key="two")
    leases.register(store, "e1", 2)
    claims = [leases.claim(store, "e1", 2, steal_after=0) for _ in range(2)]
    store.append(one.id, 1, [BuildFinished(uri=one.uri)])
    assert store.read_context(digest) == b"shared"  # the second build still needs it
    store.append(two.id, 1, [BuildFinished(uri=two.uri)])
    assert all(claims)
    assert store.read_context(digest) is None
    assert not store.use_context(digest)
    with pytest.raises(ContextTooLargeError, match="at most 1000"):
        store.put_context("sha256:" + "1" * 64, b"x" * 1001)
