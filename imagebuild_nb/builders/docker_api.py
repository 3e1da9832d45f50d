"""The Engine-API driver: docker-py's streaming build (legacy builder), then push.

Works with any engine docker-py reaches, including a remote DOCKER_HOST. The context is
streamed to the engine as it is written (no temporary tar on disk). With ``forcerm`` the engine
removes the RUN containers even when a step fails; on cancel we close the stream (the engine
then stops the build) and remove the containers the stream told us about.

>>> builder = DockerApiBuilder()
>>> (builder.name, builder.driver)
('local', 'docker-api')
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import docker.errors

from imagebuild_nb.builders import docker_engine
from imagebuild_nb.builders.base import BuildRequest
from imagebuild_nb.builders.legacy_stream import LegacyStreamParser
from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.events import BuildCancelled, BuildEvent, BuildFailed

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


class DockerApiBuilder:
    """Builds through the Engine API (``POST /build``) with docker-py."""

    name = "local"
    driver = "docker-api"

    def __init__(self) -> None:
        self._client: docker_engine.CapturingAPIClient | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> docker_engine.CapturingAPIClient:
        with self._lock:
            if self._client is None:
                self._client = docker_engine.connect()
            return self._client

    def ensure_available(self) -> None:
        docker_engine.ping(self.client)

    def describe(self, request: BuildRequest) -> str:
        options = [f"t={request.primary_tag}", f"dockerfile={request.dockerfile_path}",
                   "rm=1", "forcerm=1"]
        if request.network_mode:
            options.append(f"networkmode={request.network_mode}")
        if request.no_cache:
            options.append("nocache=1")
        if request.platform:
            options.append(f"platform={request.platform}")
        options += [f"buildargs[{k}]" for k in sorted(request.build_args)]
        text = f"Engine API POST /build?{'&'.join(options)} (docker-py, legacy builder)"
        if request.push:
            text += f"; then POST /images/{request.primary_tag}/push"
        return text

    def build(self, request: BuildRequest, cancel: threading.Event) -> Iterator[BuildEvent]:
        client = self.client
        parser = LegacyStreamParser()
        if request.secrets:  # the legacy builder has no secret mounts: never build without
            raise BuilderUnavailableError(
                f"the docker-api driver cannot pass build secrets ({len(request.secrets)})",
                hint="build with BuildKit: local_driver='buildkit' (a docker CLI with BuildKit)")
        body, writer = _stream_context(request)
        watcher = None
        try:
            stream = client.build(
                fileobj=body, custom_context=True, tag=request.primary_tag,
                dockerfile=request.dockerfile_path, rm=True, forcerm=True,
                nocache=request.no_cache, network_mode=request.network_mode,
                platform=request.platform, buildargs=dict(request.build_args) or None,
                labels=dict(request.labels) or None, decode=True,
            )
            response = client.current_response()
            watcher = _Watcher(client, response, cancel)
            for record in stream:
                yield from parser.feed(record)
            yield from parser.flush()
        except Exception as error:
            # After a cancel, the aborted stream fails in many ways (closed socket, truncated
            # chunk): all of them just mean "stopped".
            if not cancel.is_set():
                if not isinstance(error, (docker.errors.DockerException, OSError, ValueError)):
                    raise
                if isinstance(error, docker.errors.APIError) or parser.step is not None:
                    yield BuildFailed(message=f"the engine failed the build: {error}",
                                      step=parser.failed_step, lines=tuple(parser.tail))
                    return
                raise BuilderUnavailableError(
                    f"lost the Docker engine during the build: {error}",
                    hint=docker_engine.ENGINE_HINT) from error
        finally:
            if watcher is not None:
                watcher.stop()
            body.close()
            writer.join(timeout=5)
        if cancel.is_set():
            self._clean_after_cancel(client, parser, request)
            yield BuildCancelled(message="cancelled; build containers removed")
            return
        if parser.error is not None or parser.image_id is None:
            yield BuildFailed(
                message=parser.error or "the engine ended the build without an image id",
                step=parser.failed_step, exit_code=parser.exit_code, lines=tuple(parser.tail),
            )
            return
        for extra in request.tags[1:]:
            ref = extra.rsplit(":", 1)
            client.tag(parser.image_id, ref[0], ref[1] if len(ref) > 1 else None)
        yield from docker_engine.push_and_finish(client, request, parser.image_id, cancel)

    def _clean_after_cancel(self, client: Any, parser: LegacyStreamParser,
                            request: BuildRequest) -> None:
        # The engine stops a disconnected build on its own, but the container of the RUN it was
        # in may outlive our request for a moment: remove it explicitly.
        fresh = docker_engine.connect(timeout=30)
        try:
            docker_engine.remove_containers(fresh, parser.containers)
        finally:
            fresh.close()


class _Watcher:
    """Waits for ``cancel`` in its own thread and then aborts the build stream."""

    def __init__(self, client: Any, response: Any, cancel: threading.Event) -> None:
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(client, response, cancel),
                                        name="imagebuild-cancel-watch", daemon=True)
        self._thread.start()

    def _run(self, client: Any, response: Any, cancel: threading.Event) -> None:
        while not self._done.is_set():
            if cancel.wait(0.1):
                if response is not None:
                    client.abort_stream(response)
                return

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=2)


def _stream_context(request: BuildRequest) -> tuple[_PipeBody, threading.Thread]:
    """The context tar as an iterator of chunks, written by a thread into a pipe."""
    read_fd, write_fd = os.pipe()

    def write() -> None:
        with os.fdopen(write_fd, "wb", buffering=_CHUNK) as sink:
            try:
                request.context.write_tar(sink)
            except BrokenPipeError:
                log.debug("the engine stopped reading the build context")
            except Exception:
                log.exception("writing the build context failed")

    writer = threading.Thread(target=write, name="imagebuild-context", daemon=True)
    writer.start()
    return _PipeBody(os.fdopen(read_fd, "rb", buffering=0)), writer


class _PipeBody:
    """Request body read from a pipe; ``close`` also unblocks a writer still writing."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def __iter__(self) -> Iterator[bytes]:
        while not self._source.closed:
            data = self._source.read(_CHUNK)
            if not data:
                return
            yield data

    def close(self) -> None:
        self._source.close()
