"""Parts the engine tests share: a fake builder and checker injected into a real
:class:`~imagebuild_nb.engine.ImageBuildEngine` (fast tier), a prepared build target, and the
settings the real tier builds with (host network, the host's CA bundle, a base-image mirror).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from imagebuild_nb.builders.base import BuildRequest
from imagebuild_nb.builders.context import InMemoryContext
from imagebuild_nb.builders.target import BuildTarget
from imagebuild_nb.checkers import ExistenceResult
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.events import BuildEvent, BuildFinished, StepStarted
from imagebuild_nb.settings import Settings

DRIVERS = ("docker-api", "buildkit")


class FakeBuilder:
    name, driver = "local", "fake"

    def __init__(self, delay: float = 0.0) -> None:
        self.requests: list[BuildRequest] = []
        self.delay = delay

    def ensure_available(self) -> None:
        pass

    def describe(self, request: BuildRequest) -> str:
        return f"fake build {request.primary_tag}"

    def build(self, request: BuildRequest, cancel: threading.Event) -> Iterator[BuildEvent]:
        self.requests.append(request)
        yield StepStarted(number=1, total=1, instruction="RUN true")
        if cancel.wait(self.delay):
            return
        yield BuildFinished(uri=request.primary_tag, digest="sha256:" + "1" * 64, pushed=True)


class FakeChecker:
    def __init__(self, state: str, reason: str | None = None) -> None:
        self.state, self.reason, self.calls = state, reason, 0

    def check(self, ref: str, **_: Any) -> ExistenceResult:
        self.calls += 1
        digest = "sha256:" + "2" * 64 if self.state == "exists" else None
        return ExistenceResult(ref, self.state, digest, (), self.reason, "fake", 0.0)  # type: ignore[arg-type]

    def invalidate(self, ref: Any = None) -> int:
        return 0


def fake_engine(state: str, *, reason: str | None = None, delay: float = 0.0,
                **settings: Any) -> tuple[ImageBuildEngine, FakeBuilder, FakeChecker]:
    """An engine whose checker answers ``state`` and whose local builder is a FakeBuilder."""
    builder, checker = FakeBuilder(delay), FakeChecker(state, reason)
    # The engine's parts are injected: no module global is patched.
    engine = ImageBuildEngine(Settings(**settings), builders={"local": builder},
                              checker=checker)  # type: ignore[arg-type]
    return engine, builder, checker


def target(tag: str = "1") -> BuildTarget:
    """A prepared target (Dockerfile and context given), so no spec is rendered."""
    return BuildTarget(uri=f"localhost:5001/fast/demo:{tag}",
                       dockerfiles={"plain": "FROM busybox\n"}, context=InMemoryContext({}))


def real_settings(driver: str, ca_bundle: Path, mirror: str) -> Settings:
    """Settings for real builds: RUN steps on the host network, the host's CAs, a mirror."""
    return Settings(local_driver=driver, network_mode="host",  # type: ignore[arg-type]
                    extra_ca_files=(str(ca_bundle),), base_image_mirror=mirror)
