"""The seam between the build service and whatever really builds: ``BuildRunner``.

A runner gets a ``BuildJob`` (target URI, extracted context directory, Dockerfile path,
options) and a ``threading.Event`` that is set on cancel, and yields build events. It runs in a
worker thread; the service numbers, persists and streams what it yields. The last event must be
terminal (finished, failed or cancelled); the service adds a failed event if a runner stops
without one.

The runners (``engine_runner``) delegate to the project's local builder: ``EngineRunner`` with
the host's choice of driver, ``DockerApiRunner`` pinned to the Engine API.

>>> job = BuildJob(build_id="b1", uri="localhost:5001/demo:1", context_dir=Path("/tmp/ctx"))
>>> job.dockerfile
'Dockerfile'
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from imagebuild_nb.events import (
    BuildEvent,
)

log = logging.getLogger(__name__)

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


@dataclass(frozen=True)
class BuildJob:
    build_id: str
    uri: str
    context_dir: Path
    dockerfile: str = "Dockerfile"
    force: bool = False
    push: bool = True
    spec: Mapping[str, Any] | None = None
    # BuildKit secret id -> where the service host keeps it ("env:VAR" or a file path).
    secrets: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None  # os/arch[,os/arch...]: several build one index


class BuildRunner(Protocol):
    """Runs one build; see the module docstring for the contract."""

    name: str

    @property  # read-only: an implementation may compute it (EngineRunner asks its builder)
    def driver(self) -> str: ...  # "docker-api" | "buildkit": the Dockerfile form to send

    def run(self, job: BuildJob, cancelled: threading.Event) -> Iterator[BuildEvent]: ...
