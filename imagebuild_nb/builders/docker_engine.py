"""The local Docker engine: connecting (with a clear error when it is not there), pushing, cleanup.

Both local drivers talk to the engine through here; the BuildKit driver builds with the CLI and
still pushes and cleans up through the Engine API.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import Any

import docker
import docker.auth
import docker.errors
import requests
import urllib3
from docker.context import ContextAPI

from imagebuild_nb.builders import engine_auth, leftovers
from imagebuild_nb.builders.base import BuildRequest
from imagebuild_nb.errors import BuilderUnavailableError, RegistryAuthError
from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    PushProgress,
)
from imagebuild_nb.spec.reference import ImageReference

log = logging.getLogger(__name__)

ENGINE_HINT = (
    "start Docker (e.g. `sudo systemctl start docker` or Docker Desktop), set DOCKER_HOST to a "
    "reachable engine, or build with builder='remote'"
)
LOST_HINT = (
    "the engine stopped or restarted during the build; start it again (or wait until it "
    "answers) and rebuild. Build containers it left behind are removed at the next build"
)
# Every wait on the engine is bounded. Asking whether it is there (and its API version):
PING_TIMEOUT = 10.0
# One ordinary call (tag, inspect, remove, list). Build and push streams wait as long as the
# build_silence_timeout setting allows between two records instead.
CALL_TIMEOUT = 120.0


class CapturingAPIClient(docker.APIClient):
    """An APIClient that remembers, per thread, the streaming response it is reading.

    Cancelling a build means closing that response: the engine stops a build whose client went
    away. docker-py does not hand the response out, so we keep it when the stream starts.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._streams = threading.local()

    def _stream_helper(self, response: Any, decode: bool = False) -> Any:
        self._streams.response = response
        return super()._stream_helper(response, decode=decode)

    def current_response(self) -> Any:
        return getattr(self._streams, "response", None)

    def ping_within(self, timeout: float) -> bool:
        return bool(self._result(self._get(self._url("/_ping"), timeout=timeout)) == "OK")

    def _set_auth_headers(self, headers: dict[str, str]) -> None:
        # docker-py's own resolution echoes a failing credential helper: see engine_auth.
        auths = engine_auth.build_auth()
        if auths:
            headers["X-Registry-Config"] = docker.auth.encode_header(auths)

    def abort_stream(self, response: Any) -> None:
        """Close a streaming response from another thread (unblocks the reader at once)."""
        try:
            sock = self._get_raw_response_socket(response)
            sock = getattr(sock, "_sock", sock)  # a SocketIO over a unix socket
            sock.shutdown(socket.SHUT_RDWR)
        except Exception:  # the socket may already be gone; closing below is enough then
            log.debug("shutting down the build stream socket failed", exc_info=True)
        try:
            response.close()
        except Exception:
            log.debug("closing the build stream failed", exc_info=True)


def silence_message(seconds: float) -> str:
    return (f"the build printed nothing for {seconds:g} s and was stopped as hung (nothing is "
            "left running). If a step is quiet for longer on purpose, raise "
            "the build_silence_timeout setting (IMAGEBUILD_NB_BUILD_SILENCE_TIMEOUT, 0: no "
            "limit). The docker CLI can also stall on a very long line of output: the "
            "docker-api driver streams those")


def engine_params(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Connection parameters like the docker CLI: DOCKER_HOST/TLS env, else the current context."""
    env = dict(os.environ if environ is None else environ)
    params: dict[str, Any] = docker.utils.kwargs_from_env(environment=env)
    if "base_url" not in params:
        for key, value in ContextAPI.kwargs_from_context(environment=env).items():
            params.setdefault(key, value)
    return params


def engine_address(params: Mapping[str, Any] | None = None) -> str:
    """Where the engine is, as the user would write it (DOCKER_HOST form)."""
    params = engine_params() if params is None else params
    return str(params.get("base_url") or "unix:///var/run/docker.sock")


def connect(timeout: float = CALL_TIMEOUT) -> CapturingAPIClient:
    """An Engine API client whose calls wait at most ``timeout`` s; raises
    BuilderUnavailableError (with the fix) when no engine answers within PING_TIMEOUT."""
    params = engine_params()
    where = engine_address(params)
    if where.startswith("unix://") and not os.path.exists(where[len("unix://"):]):
        raise BuilderUnavailableError(
            f"the Docker engine at {where} does not answer (no such socket)", hint=ENGINE_HINT)
    try:
        # The API version handshake happens here: an engine that accepts and never answers
        # must not hold us longer than a ping.
        client = CapturingAPIClient(timeout=PING_TIMEOUT, version="auto", **params)
        client.timeout = timeout
        return client
    except docker.errors.DockerException as error:
        with _leaks_ignored():
            pass
        raise BuilderUnavailableError(
            f"the Docker engine at {where} does not answer ({_short(error)})", hint=ENGINE_HINT
        ) from error


def ping(client: CapturingAPIClient, timeout: float | None = None) -> None:
    """Raise BuilderUnavailableError unless the engine answers within ``timeout`` s."""
    timeout = PING_TIMEOUT if timeout is None else timeout
    with _leaks_ignored():
        try:
            client.ping_within(timeout)
            return
        except (docker.errors.DockerException, OSError) as error:
            reason = _short(error)  # not chained: its traceback holds the leaked socket
    raise BuilderUnavailableError(
        f"the Docker engine at {engine_address()} does not answer within {timeout:g} s "
        f"({reason})",
        hint=ENGINE_HINT,
    )


def answers(client: CapturingAPIClient, timeout: float | None = None) -> bool:
    with _leaks_ignored():
        try:
            return client.ping_within(PING_TIMEOUT if timeout is None else timeout)
        except Exception:  # gone, refusing, half-answering: all mean "not there"
            pass
    return False


@contextlib.contextmanager
def _leaks_ignored() -> Iterator[None]:
    """docker-py leaks the socket of a failed connection (not the user's problem): let it go
    quietly once the failure's traceback is gone."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        yield
        gc.collect()


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:300]


def registry_auth(reference: ImageReference) -> dict[str, Any] | None:
    """Credentials for pushing, read fresh from $DOCKER_CONFIG (auths, credHelpers, credsStore)."""
    return engine_auth.push_auth(reference.registry or "docker.io")


def push(client: docker.APIClient, tag: str,
         cancel: threading.Event) -> Generator[BuildEvent, None, str | None]:
    """Push ``tag``; yields PushProgress and, on failure, one BuildFailed. Returns the digest."""
    reference = ImageReference.parse(tag)
    try:
        auth = registry_auth(reference)
    except RegistryAuthError as error:  # names the helper, never its output
        yield BuildFailed(message=f"push of {tag} failed: {error}", step="push")
        return None
    try:
        return (yield from _push_stream(client, reference, tag, auth, cancel))
    except (docker.errors.DockerException, requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError, OSError) as error:
        # A registry that stalls leaves the engine silent: our call's timeout ends the push
        # (closing the stream stops the engine's push too) as a failed push, never a crash.
        silent = isinstance(error, (requests.exceptions.Timeout, TimeoutError,
                                    urllib3.exceptions.TimeoutError))
        why = (f"the Docker engine sent nothing for {client.timeout:g} s (is the registry "
               f"{reference.registry} reachable and answering?)" if silent
               else f"the Docker engine's push call failed ({_short(error)})")
        yield BuildFailed(message=f"push of {tag} failed: {why}", step="push", lines=(why,))
        return None


def _push_stream(client: docker.APIClient, reference: ImageReference, tag: str,
                 auth: dict[str, Any] | None, cancel: threading.Event
                 ) -> Generator[BuildEvent, None, str | None]:
    stream = client.push(
        reference.name, tag=reference.tag, auth_config=auth, stream=True, decode=True
    )
    digest: str | None = None
    for record in stream:
        if cancel.is_set():
            response = getattr(client, "current_response", lambda: None)()
            if response is not None:
                client.abort_stream(response)
            return None
        if "error" in record:
            message = str(record.get("error"))
            hint = None
            if "auth" in message.lower() or "denied" in message.lower():
                hint = (f"log in to {reference.registry} (docker login) or put credentials for "
                        "it in $DOCKER_CONFIG/config.json")
            yield BuildFailed(message=f"push of {tag} failed: {message}", step="push",
                              lines=(message,))
            if hint:
                log.info("push failed: %s (%s)", message, hint)
            return None
        aux = record.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            digest = str(aux["Digest"])
            continue
        detail = record.get("progressDetail") or {}
        yield PushProgress(
            layer=str(record.get("id", "")),
            status=str(record.get("status", "")),
            current=detail.get("current"),
            total=detail.get("total"),
        )
    return digest


def push_and_finish(client: docker.APIClient, request: BuildRequest, image_id: str | None,
                    cancel: threading.Event) -> Iterator[BuildEvent]:
    """The end of every local build: push the primary tag when asked, then the one terminal
    event (finished with the pushed digest, the push's failure, or cancelled)."""
    digest = None
    if request.push:
        failed = False
        events = push(client, request.primary_tag, cancel)
        try:
            while True:
                event = next(events)
                failed = failed or isinstance(event, BuildFailed)
                yield event
        except StopIteration as done:
            digest = done.value
        if cancel.is_set():
            yield BuildCancelled(message="cancelled during push")
            return
        if failed:
            return
    yield BuildFinished(uri=request.primary_tag, digest=digest, image_id=image_id,
                        pushed=request.push and digest is not None)


def sweep_leftovers(client: docker.APIClient) -> None:
    """Remove what killed processes and lost builds left (see :mod:`.leftovers`); never
    raises: a build must not fail because an old one could not be cleaned up."""

    def remove(container_id: str) -> bool:
        try:
            client.remove_container(container_id, force=True)
            log.info("removed build container %s left by an earlier build", container_id)
        except docker.errors.NotFound:
            pass
        except (docker.errors.DockerException, OSError):
            log.debug("could not remove build container %s yet", container_id, exc_info=True)
            return False
        return True

    try:
        leftovers.sweep(engine_address(), remove)
    except Exception:
        log.warning("cleaning up after earlier builds failed", exc_info=True)


# `docker info`'s Architecture (uname -m) as the OCI platform names it.
_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm/v7", "armv6l": "arm/v6",
                  "i386": "386", "i686": "386"}


def engine_platform(client: docker.APIClient) -> str:
    """The platform the engine runs on, e.g. ``linux/amd64``."""
    info = client.info()
    machine = str(info.get("Architecture") or "")
    return f"{info.get('OSType') or 'linux'}/{_ARCHITECTURES.get(machine, machine)}"


def same_platform(wanted: str, engine: str) -> bool:
    """``linux/arm64`` is ``linux/arm64/v8``: a variant left out matches any.

    >>> same_platform("linux/arm64/v8", "linux/arm64"), same_platform("linux/arm64", "linux/amd64")
    (True, False)
    """
    mine, theirs = wanted.split("/"), engine.split("/")
    return mine[:2] == theirs[:2] and (len(mine) < 3 or len(theirs) < 3 or mine[2] == theirs[2])


def image_id(client: docker.APIClient, tag: str) -> str | None:
    """The id of the image ``tag`` names in the engine, None when there is none."""
    try:
        return str(client.inspect_image(tag)["Id"])
    except docker.errors.NotFound:
        return None


def remove_containers(client: docker.APIClient, ids: Iterable[str], *,
                      timeout: float = 30.0) -> bool:
    """Remove build containers left behind; whether all are gone (best effort, logged).

    The engine may already be removing one itself (a cancelled legacy build's ``forcerm``): it
    answers 409 "removal ... already in progress" while the container still exists, so the
    removal is asked again until the container is gone, for at most ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    gone = True
    for container_id in ids:
        while (removed := _remove(client, container_id)) is None:
            if time.monotonic() > deadline:
                log.warning("build container %s was still being removed after %.0f s",
                            container_id, timeout)
                break
            time.sleep(0.1)
        gone = gone and bool(removed)
    return gone


def _remove(client: docker.APIClient, container_id: str) -> bool | None:
    """True: removed or gone; False: cannot be; None: the engine is removing it right now."""
    try:
        client.remove_container(container_id, force=True)
        log.debug("removed leftover build container %s", container_id)
        return True
    except docker.errors.NotFound:
        return True
    except docker.errors.APIError as error:
        if error.status_code == 409 and "in progress" in str(error.explanation or ""):
            return None
        log.warning("could not remove build container %s", container_id, exc_info=True)
        return False
    except docker.errors.DockerException:
        log.warning("could not remove build container %s", container_id, exc_info=True)
        return False
