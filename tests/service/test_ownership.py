"""Owners, joiners, per-user limits and the fair queue of the build manager.

The runner here holds each build until the test lets it go and records the order builds start
in: what is tested is the manager's bookkeeping and scheduling, which no engine build can time.
The same rules through a real JupyterHub, its users and kernels are in tests/hub.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagebuild_nb.events import BuildCancelled, BuildEvent, BuildFinished, BuildStarted
from imagebuild_nb.service.manager import BuildManager
from imagebuild_nb.service.runner import BuildJob
from imagebuild_nb.service.store import BuildStore
from imagebuild_nb.service.submission import Submission, UserLimitError
from tests.support.context_tar import context_tar


class GatedRunner:
    """Starts builds in the order the manager runs them; each ends when the test opens it."""

    name = "gated"
    driver = "docker-api"

    def __init__(self) -> None:
        self.started: list[str] = []  # image URIs, in start order
        self.gates: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def open(self, uri: str) -> None:
        with self._lock:
            self.gates.setdefault(uri, threading.Event()).set()

    def run(self, job: BuildJob, cancelled: threading.Event) -> Iterator[BuildEvent]:
        with self._lock:
            self.started.append(job.uri)
            gate = self.gates.setdefault(job.uri, threading.Event())
        yield BuildStarted(uri=job.uri, builder="gated")
        while not gate.wait(0.01):
            if cancelled.is_set():
                yield BuildCancelled()
                return
        yield BuildFinished(uri=job.uri, digest="sha256:" + "c" * 64)


def _context(store: BuildStore) -> str:
    raw, digest = context_tar("FROM scratch\n")
    store.context_path(digest).write_bytes(raw)
    return digest


async def _until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


def _manager(tmp_path: Path, **options: int) -> tuple[BuildManager, GatedRunner, str]:
    store = BuildStore(tmp_path / "state")
    runner = GatedRunner()
    return BuildManager(store, runner, **options), runner, _context(store)  # type: ignore[arg-type]


def test_a_build_records_its_owner_and_every_user_who_joined_it(tmp_path: Path):
    async def scenario() -> None:
        manager, runner, context = _manager(tmp_path)
        build = Submission(uri="localhost:5001/own:1", context=context)
        record, joined = manager.submit(build, "alice")
        assert (record.owner, joined) == ("alice", False)
        for user in ("bob", "alice", "bob", "carol"):
            again, joined = manager.submit(build, user)
            assert (again.id, joined) == (record.id, True)
        assert manager.get(record.id).joined_by == ("bob", "carol")
        assert manager.get(record.id).submissions == 5
        assert [r.id for r in manager.list(visible_to="carol")] == [record.id]
        assert manager.list(visible_to="dave") == []
        runner.open(build.uri)
        await _until(lambda: manager.get(record.id).terminal)
        stored = manager.store.get(record.id)
        assert stored is not None and (stored.owner, stored.joined_by) == ("alice",
                                                                           ("bob", "carol"))
        await manager.shutdown()

    asyncio.run(scenario())


def test_a_users_next_build_past_the_limit_is_refused_naming_it_and_joins_are_not(
        tmp_path: Path):
    async def scenario() -> None:
        manager, runner, context = _manager(tmp_path, max_builds_per_user=2)
        first, second = (Submission(uri=f"localhost:5001/lim:{n}", context=context)
                         for n in (1, 2))
        manager.submit(first, "alice")
        manager.submit(second, "alice")
        with pytest.raises(UserLimitError) as refused:
            manager.submit(Submission(uri="localhost:5001/lim:3", context=context), "alice")
        assert "max_builds_per_user=2" in str(refused.value)
        assert "alice already has 2 unfinished build(s)" in str(refused.value)
        # Joining an identical build adds no work: never refused. Others and the shared
        # token (owner None) have limits of their own / none.
        assert manager.submit(first, "alice")[1] is True
        manager.submit(Submission(uri="localhost:5001/lim:b", context=context), "bob")
        for n in range(3):
            manager.submit(Submission(uri=f"localhost:5001/lim:t{n}", context=context), None)
        runner.open(first.uri)
        await _until(lambda: manager.get(manager.list(visible_to="alice")[-1].id).terminal)
        # A build ended: the next one is taken.
        manager.submit(Submission(uri="localhost:5001/lim:3", context=context), "alice")
        await manager.shutdown()

    asyncio.run(scenario())


def test_a_free_slot_goes_to_the_user_with_fewer_builds_running_not_the_oldest_build(
        tmp_path: Path):
    async def scenario() -> list[str]:
        manager, runner, context = _manager(tmp_path, max_concurrent=2)
        alice = [Submission(uri=f"localhost:5001/fair:a{n}", context=context) for n in range(10)]
        for build in alice:
            manager.submit(build, "alice")
        await _until(lambda: len(runner.started) == 2)
        manager.submit(Submission(uri="localhost:5001/fair:b0", context=context), "bob")
        runner.open(alice[0].uri)
        await _until(lambda: len(runner.started) == 3)
        for build in alice[1:]:
            runner.open(build.uri)
        runner.open("localhost:5001/fair:b0")
        await _until(lambda: len(runner.started) == 11)
        await manager.shutdown()
        return runner.started

    started = asyncio.run(scenario())
    # alice's first two take both slots (in either order: they start at once); the slot
    # a0 frees goes to bob's one build, not to alice's older third.
    assert sorted(started[:2]) == ["localhost:5001/fair:a0", "localhost:5001/fair:a1"]
    assert started[2] == "localhost:5001/fair:b0"
    assert sorted(started) == sorted({*started})  # each build ran once


def test_max_running_per_user_keeps_a_users_builds_waiting_while_slots_are_free(
        tmp_path: Path):
    async def scenario() -> None:
        manager, runner, context = _manager(tmp_path, max_concurrent=4, max_running_per_user=1)
        for n in range(3):
            manager.submit(Submission(uri=f"localhost:5001/cap:a{n}", context=context), "alice")
        await _until(lambda: len(runner.started) == 1)
        manager.submit(Submission(uri="localhost:5001/cap:b0", context=context), "bob")
        await _until(lambda: len(runner.started) == 2)
        await asyncio.sleep(0.2)  # slots are free, yet alice's second waits for her first
        assert runner.started == ["localhost:5001/cap:a0", "localhost:5001/cap:b0"]
        assert manager.stats()["queued"] == 2
        runner.open("localhost:5001/cap:a0")
        await _until(lambda: len(runner.started) == 3)
        assert runner.started[2] == "localhost:5001/cap:a1"
        for n in (1, 2):
            runner.open(f"localhost:5001/cap:a{n}")
        runner.open("localhost:5001/cap:b0")
        await _until(lambda: len(runner.started) == 4)
        await manager.shutdown()

    asyncio.run(scenario())


def test_cancelling_a_waiting_build_gives_its_turn_to_the_next(tmp_path: Path):
    async def scenario() -> None:
        manager, runner, context = _manager(tmp_path, max_concurrent=1)
        running, _ = manager.submit(Submission(uri="localhost:5001/cw:0", context=context), "a")
        waiting, _ = manager.submit(Submission(uri="localhost:5001/cw:1", context=context), "b")
        manager.submit(Submission(uri="localhost:5001/cw:2", context=context), "c")
        await _until(lambda: len(runner.started) == 1)
        manager.cancel(waiting.id)
        await _until(lambda: manager.get(waiting.id).terminal)
        assert manager.get(waiting.id).status == "cancelled"
        runner.open("localhost:5001/cw:0")
        runner.open("localhost:5001/cw:2")
        await _until(lambda: len(runner.started) == 2)
        assert runner.started == ["localhost:5001/cw:0", "localhost:5001/cw:2"]
        await _until(lambda: manager.stats()["running"] + manager.stats()["queued"] == 0)
        assert manager.get(running.id).status == "succeeded"
        await manager.shutdown()

    asyncio.run(scenario())
