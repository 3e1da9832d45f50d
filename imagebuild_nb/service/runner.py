"""The seam between the build service and whatever really builds: ``BuildRunner``.

A runner gets a ``BuildJob`` (target URI, extracted context directory, Dockerfile path,
options) and a ``threading.Event`` that is set on cancel, and yields build events. It runs in a
worker thread; the service numbers, persists and streams what it yields. The last event must be
terminal (finished, failed or cancelled); the service adds a failed event if a runner stops
without one.

``DockerApiRunner`` builds through the Engine API (docker-py, legacy builder) and pushes with
the service host's Docker credentials. ``EngineRunner`` (see ``engine_runner``) delegates to the
project's local builder.

>>> job = BuildJob(build_id="b1", uri="localhost:5001/demo:1", context_dir=Path("/tmp/ctx"))
>>> job.dockerfile
'Dockerfile'
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    BuildStarted,
    CacheHit,
    LogLine,
    PushProgress,
    StepStarted,
)
from imagebuild_nb.spec.reference import ImageReference

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


class BuildRunner(Protocol):
    """Runs one build; see the module docstring for the contract."""

    name: str
    driver: str  # "docker-api" | "buildkit": which Dockerfile form the client should send

    def run(self, job: BuildJob, cancelled: threading.Event) -> Iterator[BuildEvent]: ...


class DockerApiRunner:
    """Build with the Engine API (docker-py), then push when the URI names a registry."""

    name = "docker-api"
    driver = "docker-api"

    def __init__(self, *, network_mode: str | None = None, timeout: int = 3600) -> None:
        self.network_mode = network_mode
        self.timeout = timeout

    def run(self, job: BuildJob, cancelled: threading.Event) -> Iterator[BuildEvent]:
        client = _CancellableClient(version="auto", timeout=self.timeout)
        watcher = threading.Thread(target=_close_on_cancel, args=(client, cancelled), daemon=True)
        watcher.start()
        try:
            yield BuildStarted(uri=job.uri, builder="remote", driver=self.name)
            outcome = yield from self._build(client, job, cancelled)
            if isinstance(outcome, BuildEvent):
                yield outcome
                return
            digest = None
            pushed = False
            if job.push and ImageReference.parse(job.uri).registry:
                result = yield from self._push(client, job, cancelled)
                if isinstance(result, BuildEvent):
                    yield result
                    return
                digest, pushed = result, True
            yield BuildFinished(uri=job.uri, digest=digest, image_id=outcome, pushed=pushed)
        finally:
            client.finished.set()
            client.close()

    def _build(
        self, client: _CancellableClient, job: BuildJob, cancelled: threading.Event
    ) -> Generator[BuildEvent, None, str | BuildEvent]:
        image_id: str | None = None
        if cancelled.is_set():
            return BuildCancelled(message="cancelled before the build started")
        step: int | None = None
        instruction = ""
        tail: list[str] = []
        pending = ""
        try:
            stream = client.build(
                path=str(job.context_dir),
                dockerfile=job.dockerfile,
                tag=job.uri,
                decode=True,
                rm=True,
                forcerm=True,
                nocache=job.force,
                network_mode=self.network_mode,
            )
            for chunk in stream:
                if "error" in chunk:
                    message = str(chunk.get("error", "")).strip()
                    code = (chunk.get("errorDetail") or {}).get("code")
                    return BuildFailed(
                        message=message,
                        step=instruction or None,
                        exit_code=code,
                        lines=tuple(tail[-20:]),
                    )
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = chunk["aux"]["ID"]
                text = pending + str(chunk.get("stream", ""))
                *lines, pending = text.split("\n")
                for line in lines:
                    match = _STEP.match(line)
                    if match:
                        step, instruction = int(match[1]), match[3]
                        yield StepStarted(number=step, total=int(match[2]), instruction=instruction)
                    elif line.strip() == "---> Using cache" and step is not None:
                        yield CacheHit(step=step, instruction=instruction)
                    elif line.strip():
                        tail = (tail + [line])[-20:]
                        yield LogLine(text=line, step=step)
        except Exception as error:  # noqa: BLE001 -- a cancel surfaces as a connection error
            if cancelled.is_set():
                return BuildCancelled(message="cancelled while building")
            return BuildFailed(message=f"the Docker engine failed: {error}", step=instruction or None)
        if cancelled.is_set():
            return BuildCancelled(message="cancelled while building")
        if image_id is None:
            return BuildFailed(message="the engine reported no image id", lines=tuple(tail))
        return image_id

    def _push(
        self, client: _CancellableClient, job: BuildJob, cancelled: threading.Event
    ) -> Generator[BuildEvent, None, str | None | BuildEvent]:
        reference = ImageReference.parse(job.uri)
        repository = job.uri.rsplit(":", 1)[0] if reference.tag else job.uri
        digest: str | None = None
        try:
            for record in client.push(repository, tag=reference.tag, stream=True, decode=True):
                if "error" in record:
                    return BuildFailed(message=f"push failed: {record['error']}", step="push")
                if "aux" in record and "Digest" in record["aux"]:
                    digest = record["aux"]["Digest"]
                elif "status" in record:
                    detail = record.get("progressDetail") or {}
                    yield PushProgress(
                        layer=str(record.get("id", "")),
                        status=str(record["status"]),
                        current=detail.get("current"),
                        total=detail.get("total"),
                    )
        except Exception as error:  # noqa: BLE001
            if cancelled.is_set():
                return BuildCancelled(message="cancelled while pushing")
            return BuildFailed(message=f"push failed: {error}", step="push")
        if cancelled.is_set():
            return BuildCancelled(message="cancelled while pushing")
        return digest


def _close_on_cancel(client: _CancellableClient, cancelled: threading.Event) -> None:
    while not client.finished.is_set():
        if cancelled.wait(0.2):
            # Keep cutting until the runner ends: the push opens a new stream after the build's.
            client.abort()
            client.finished.wait(0.1)


def _client_base() -> type:
    import docker

    return docker.APIClient  # type: ignore[no-any-return]


class _CancellableClient(_client_base()):  # type: ignore[misc]
    """An APIClient that remembers its streaming response, so another thread can cut it.

    Cutting the connection makes the daemon stop the build (``forcerm`` removes its container);
    checking a flag between chunks would not stop a silent ``RUN sleep 600``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.finished = threading.Event()
        self._response: Any = None

    def _stream_helper(self, response: Any, decode: bool = False) -> Any:
        self._response = response
        return super()._stream_helper(response, decode=decode)

    def abort(self) -> None:
        response, self._response = self._response, None
        if response is None:
            return
        try:
            sock = self._get_raw_response_socket(response)
            # Over the unix socket docker-py hands back a SocketIO wrapping the socket.
            getattr(sock, "_sock", sock).shutdown(socket.SHUT_RDWR)
        except Exception:  # noqa: BLE001 -- already closed is fine
            log.debug("could not shut down the build stream", exc_info=True)
