"""A farm replica's streams, in process against the real database: exactly once, in order, one
query per position however many followers, and complete without notifications."""

from __future__ import annotations

import asyncio
import json

import pytest

from imagebuild_nb.events import BuildFinished, LogLine
from imagebuild_nb.farm import leases
from imagebuild_nb.farm.backend import FarmBackend
from imagebuild_nb.farm.store import FarmStore
from imagebuild_nb.service.manager import MissingContextError, UnknownBuildError
from imagebuild_nb.service.submission import Submission
from tests.support.farm import context_tar


async def _scenario(store: FarmStore, *, listen: bool,
                    followers: int) -> tuple[list[list[int]], int]:
    backend = FarmBackend(store, listen=listen, poll=0.5)
    await backend.start()
    raw, digest = context_tar("FROM scratch\n")
    staged = backend.context_destination(digest)
    staged.write_bytes(raw)
    await backend.store_context(digest, staged)
    info, joined = await backend.submit(Submission.from_json(
        {"uri": "localhost:5001/f/x:1", "context": digest, "push": False}))
    assert not joined
    leases.register(store, "e1", 1)
    claim = await asyncio.to_thread(leases.claim, store, "e1", 1, steal_after=0)
    assert claim is not None

    async def follow() -> list[int]:
        seqs = []
        async for batch in backend.follow(info.id, after=0, keepalive=30):
            seqs.extend(seq for seq, _ in batch or ())
        return seqs

    tasks = [asyncio.create_task(follow()) for _ in range(followers)]
    await asyncio.sleep(0.3)
    for index in range(10):
        await asyncio.to_thread(store.append, info.id, 1, [LogLine(text=f"line {index}")])
        await asyncio.sleep(0.05)
    await asyncio.to_thread(store.append, info.id, 1, [BuildFinished(uri=info.uri)])
    seen = await asyncio.wait_for(asyncio.gather(*tasks), 60)
    assert json.loads((await backend.read_events(info.id))[-1])["kind"] == "finished"
    with pytest.raises(UnknownBuildError):
        await backend.get("nope")
    with pytest.raises(MissingContextError):
        await backend.submit(Submission.from_json(
            {"uri": "localhost:5001/f/x:1", "context": "sha256:" + "0" * 64}))
    reads = backend.reads
    await backend.shutdown()
    return seen, reads


def test_fifty_followers_get_every_event_once_from_shared_reads(database_url: str):
    store = FarmStore(database_url, pool_size=16)
    seen, reads = asyncio.run(_scenario(store, listen=True, followers=50))
    assert all(seqs == list(range(1, 12)) for seqs in seen)
    # One query per position for all 50 (without sharing: 50 per position, 550 and more).
    assert reads < 100, reads


def test_a_replica_without_notifications_still_completes_every_stream(database_url: str):
    store = FarmStore(database_url)
    seen, _ = asyncio.run(_scenario(store, listen=False, followers=3))
    assert all(seqs == list(range(1, 12)) for seqs in seen)
