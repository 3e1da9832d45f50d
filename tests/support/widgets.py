"""Headless widget test helpers: a recording comm, and a builder the test drives event by event.

The widget always runs the real ``ImageBuildEngine`` and ``ImageBuild``; only the builder (and
the registry, :class:`imagebuild_nb.testing.ScriptedRegistry`) are played.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from imagebuild_nb import Image
from imagebuild_nb.builders.base import BuildRequest
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.events import BuildCancelled, BuildEvent, is_terminal
from imagebuild_nb.settings import Settings
from imagebuild_nb.testing import ScriptedBuilder, ScriptedRegistry

IMAGE = Image.from_base("localhost:5001/library/busybox:latest", name="test/widget",
                        registry="localhost:5001").with_commands(["echo widget"])
URI = IMAGE.uri
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


class ManualBuilder:
    """A builder whose events the test emits itself, to control exactly what each flush sees."""

    name, driver = "local", "manual"

    def __init__(self) -> None:
        self.events: queue.Queue[BuildEvent] = queue.Queue()
        self.started = threading.Event()
        self.cancelled = threading.Event()
        self.requests: list[BuildRequest] = []

    def ensure_available(self) -> None:
        pass

    def describe(self, request: BuildRequest) -> str:
        return "manual build"

    def emit(self, event: BuildEvent) -> None:
        self.events.put(event)

    def build(self, request: BuildRequest, cancel: threading.Event) -> Iterator[BuildEvent]:
        self.requests.append(request)
        self.started.set()
        while True:
            try:
                event = self.events.get(timeout=0.05)
            except queue.Empty:
                if cancel.is_set():
                    self.cancelled.set()
                    yield BuildCancelled(message="cancelled by the user")
                    return
                continue
            yield event
            if is_terminal(event):
                return


def engine_with(builder: Any, registry: ScriptedRegistry | None = None,
                settings: Settings | None = None) -> ImageBuildEngine:
    registry = registry if registry is not None else ScriptedRegistry()
    return ImageBuildEngine(settings or Settings(), builders={"local": builder, "remote": builder},
                            checker=registry)


def scripted(*events: BuildEvent, delay: float = 0.0,
             registry: ScriptedRegistry | None = None) -> ImageBuildEngine:
    registry = registry if registry is not None else ScriptedRegistry()
    return engine_with(ScriptedBuilder(list(events), delay=delay, registry=registry), registry)


def updates(sent: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(cid, data) for cid, data in sent if data.get("method") == "update"]
