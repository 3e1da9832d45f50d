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

import http.client
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import docker.errors
import requests.exceptions
import urllib3.exceptions

from imagebuild_nb.builders import docker_engine
from imagebuild_nb.builders.base import BuildRequest
from imagebuild_nb.builders.leftovers import Scratch
from imagebuild_nb.builders.legacy_stream import LegacyStreamParser
from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.events import BuildCancelled, BuildEvent, BuildFailed

log = logging.getLogger(__name__)
_CHUNK = 1 << 20
SILENCE_TIMEOUT = 600.0  # the build_silence_timeout setting's default
# How a build stream that went quiet for longer than its timeout fails (headers or a record).
_TIMEOUTS = (urllib3.exceptions.ReadTimeoutError, requests.exceptions.ReadTimeout, TimeoutError)
# How it fails when the engine goes away under it (killed, restarted, socket closed).
_BROKEN = (urllib3.exceptions.ProtocolError, requests.exceptions.ConnectionError,
           requests.exceptions.ChunkedEncodingError, http.client.HTTPException, ConnectionError)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


class DockerApiBuilder:
    """Builds through the Engine API (``POST /build``) with docker-py."""

    name = "local"
    driver = "docker-api"

    def __init__(self, *, silence_timeout: float = SILENCE_TIMEOUT) -> None:
        # Seconds the build stream may stay quiet before the build is stopped (0: no limit).
        self.silence_timeout = silence_timeout
        self._client: docker_engine.CapturingAPIClient | None = None
        self._lock = threading.Lock()
        self._swept = False

    @property
    def client(self) -> docker_engine.CapturingAPIClient:
        with self._lock:
            if self._client is None:
                self._client = docker_engine.connect()
            return self._client

    def close(self) -> None:
        """Drop the engine connection (the next call opens a fresh one)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def ensure_available(self) -> None:
        docker_engine.ping(self.client)
        if not self._swept:  # what killed processes and lost builds left: once per builder
            self._swept = True
            docker_engine.sweep_leftovers(self.client)

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
        if request.platform:
            # The legacy builder takes a FROM image already in the engine's store whatever its
            # platform (one per tag): another platform's build would come out as the engine's.
            try:
                own = docker_engine.engine_platform(client)
            except Exception as error:  # the engine went away since it answered a ping
                raise BuilderUnavailableError(
                    f"lost the Docker engine at {docker_engine.engine_address()} "
                    f"({_first_line(error)})", hint=docker_engine.LOST_HINT) from None
            if not docker_engine.same_platform(request.platform, own):
                # A failed build, not an unavailable builder: a farm agent would take that for
                # a lost engine and hand the build on.
                yield BuildFailed(
                    message=f"the docker-api driver (the legacy builder) builds for the "
                            f"engine's own platform ({own}) only, so it cannot build "
                            f"{request.platform}",
                    lines=("build with BuildKit (local_driver='buildkit', a docker CLI with "
                           "BuildKit) or with builder='local-podman'",))
                return
        with Scratch.create() as scratch:
            body, writer = _stream_context(request)
            watcher = response = None
            silent = False
            noted, where = 0, docker_engine.engine_address()
            try:
                stream = client.build(
                    fileobj=body, custom_context=True, tag=request.primary_tag,
                    dockerfile=request.dockerfile_path, rm=True, forcerm=True,
                    nocache=request.no_cache, network_mode=request.network_mode,
                    platform=request.platform, buildargs=dict(request.build_args) or None,
                    labels=dict(request.labels) or None, decode=True,
                    timeout=self.silence_timeout or None,  # the wait for each record
                )
                response = client.current_response()
                watcher = _Watcher(client, response, cancel)
                for record in stream:
                    yield from parser.feed(record)
                    for container_id in parser.containers[noted:]:  # until we removed it
                        scratch.note_container(where, container_id)
                    noted = len(parser.containers)
                yield from parser.flush()
            except Exception as error:
                # After a cancel, the aborted stream fails in many ways (closed socket,
                # truncated chunk): all of them just mean "stopped".
                if not cancel.is_set():
                    silent = isinstance(error, _TIMEOUTS)
                    if silent:
                        if response is not None:
                            client.abort_stream(response)  # the engine then stops the build
                    else:
                        if response is not None:
                            client.abort_stream(response)  # its socket, whatever state it is in
                        failed = self._judge(error, parser, scratch)  # raises when lost
                        if failed is not None:
                            yield failed
                            return
            finally:
                if watcher is not None:
                    watcher.stop()
                body.close()
                writer.join(timeout=5)
            if cancel.is_set() or silent:
                cleaned = self._clean_after_cancel(client, parser, request)
                if silent:
                    yield BuildFailed(message=docker_engine.silence_message(self.silence_timeout),
                                      step=parser.failed_step, lines=tuple(parser.tail))
                else:
                    yield BuildCancelled(message="cancelled; build containers removed" if cleaned
                                         else "cancelled; a build container could not be "
                                              "removed (docker ps -a)")
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

    def _judge(self, error: Exception, parser: LegacyStreamParser,
               scratch: Scratch) -> BuildFailed | None:
        """What a broken build stream means: the engine went away (raises
        BuilderUnavailableError; its containers are left to the next start's sweep) or it
        refused the build (a BuildFailed)."""
        gone = isinstance(error, _BROKEN) or not docker_engine.answers(self.client)
        if gone:
            self.close()  # its pooled connections point at the engine that went away
            if parser.containers:
                scratch.keep_for_sweep()
            where = docker_engine.engine_address()
            during = f" in {parser.failed_step}" if parser.failed_step else ""
            raise BuilderUnavailableError(
                f"lost the Docker engine at {where} during the build{during} "
                f"({type(error).__name__}: {_first_line(error)})",
                hint=docker_engine.LOST_HINT) from error
        if isinstance(error, (docker.errors.DockerException, ValueError)):
            return BuildFailed(message=f"the engine failed the build: {_first_line(error)}",
                               step=parser.failed_step, lines=tuple(parser.tail))
        raise error

    def _clean_after_cancel(self, client: Any, parser: LegacyStreamParser,
                            request: BuildRequest) -> bool:
        # The engine stops a disconnected build on its own, but the container of the RUN it was
        # in may outlive our request for a moment: remove it explicitly (whether all are gone).
        fresh = docker_engine.connect(timeout=30)
        try:
            return docker_engine.remove_containers(fresh, parser.containers)
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
