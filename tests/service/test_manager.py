"""BuildManager bookkeeping that no HTTP test can time: the order of "stored" and "streamed"."""

from __future__ import annotations

import asyncio
from pathlib import Path

from imagebuild_nb.events import BuildCancelled, BuildFailed, BuildFinished, LogLine
from imagebuild_nb.service.engine_runner import DockerApiRunner
from imagebuild_nb.service.manager import BuildManager, _Live
from imagebuild_nb.service.store import BuildRecord, BuildStore


def test_the_outcome_is_stored_before_any_stream_hears_the_terminal_event(tmp_path: Path):
    async def scenario() -> list[tuple[str, str]]:
        store = BuildStore(tmp_path / "state")
        manager = BuildManager(store, DockerApiRunner())
        seen: list[tuple[str, str]] = []
        for index, terminal in enumerate([BuildFinished(uri="r/x:1", digest="sha256:" + "a" * 64),
                                          BuildFailed(message="boom"), BuildCancelled()]):
            record = store.insert(BuildRecord.new(uri="r/x:1", context="sha256:" + "b" * 64))
            live = _Live(record)
            notify = live.notify

            def watching(live: _Live = live, notify=notify) -> None:  # type: ignore[no-untyped-def]
                seen.append((live.frames[-1].split('"kind":"')[1].split('"')[0],
                             store.get(live.id).status))  # type: ignore[union-attr]
                notify()

            live.notify = watching  # type: ignore[method-assign]
            manager._append(live, LogLine(text=f"step {index}"))
            manager._append(live, terminal)
            live.log.close()  # type: ignore[union-attr]
        store.close()
        return seen

    seen = asyncio.run(scenario())
    assert seen == [("log", "queued"), ("finished", "succeeded"),
                    ("log", "queued"), ("failed", "failed"),
                    ("log", "queued"), ("cancelled", "cancelled")]
