"""Headless widget test helpers: a recording comm, and engines/handles the test drives."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from imagebuild_nb.events import BuildCancelled, BuildEvent, BuildFinished

URI = "localhost:5001/test/widget:abc123"
DIGEST = "sha256:" + "ab" * 32


class RecordingComm:
    """Stands in for a kernel comm; records every message the widgets send."""

    kernel = "recording"
    sent: list[tuple[str, dict[str, Any]]] = []
    _count = 0

    def __init__(self, **kwargs: Any) -> None:
        RecordingComm._count += 1
        self.comm_id = f"comm-{RecordingComm._count}"

    def open(self, *args: Any, **kwargs: Any) -> None: ...

    def on_msg(self, *args: Any, **kwargs: Any) -> None: ...

    def close(self, *args: Any, **kwargs: Any) -> None: ...

    def send(self, data: dict[str, Any] | None = None, **kwargs: Any) -> None:
        RecordingComm.sent.append((self.comm_id, data or {}))


class ManualBuild:
    """A handle whose events the test emits itself, to control exactly what each flush sees."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[BuildEvent], None]] = []
        self.subscribed = threading.Event()
        self.finished = threading.Event()
        self.cancelled = threading.Event()
        self.status = "running"
        self.digest: str | None = None

    def subscribe(self, callback: Callable[[BuildEvent], None]) -> None:
        self.callbacks.append(callback)
        self.subscribed.set()

    def emit(self, event: BuildEvent) -> None:
        for callback in self.callbacks:
            callback(event)
        if isinstance(event, BuildFinished):
            self.status, self.digest = "built", event.digest
            self.finished.set()
        elif isinstance(event, BuildCancelled):
            self.status = "cancelled"
            self.finished.set()

    def wait(self, timeout: float | None = None) -> ManualBuild:
        self.finished.wait(timeout)
        return self

    def cancel(self) -> None:
        self.cancelled.set()


class ManualEngine:
    def __init__(self) -> None:
        self.handle = ManualBuild()
        self.calls: list[dict[str, Any]] = []

    def check(self, image: Any) -> Any:
        raise AssertionError("not used")

    def build(self, image: Any, **kwargs: Any) -> ManualBuild:
        self.calls.append(kwargs)
        return self.handle


def updates(sent: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(cid, data) for cid, data in sent if data.get("method") == "update"]
