"""The build service's client: one httpx client for one service (``jupyter imagebuild``).

It uploads the reproducible build context (content addressed: an unchanged context is not sent
twice), submits the build, and follows its Server-Sent Events. A dropped stream is resumed with
``Last-Event-ID`` (re-attaching never re-submits), so every event arrives exactly once; if the
service stays away the client raises ``ServiceError`` saying the build's state is unknown, and a
build the service lost (``interrupted``) is reported as such, never as success.

Where the service is comes from :func:`~imagebuild_nb.builders.hub_discovery.find_service`:
``remote_url``, or inside a JupyterHub server the Hub's service, called with the server's token.

>>> client = RemoteBuildClient("http://127.0.0.1:8890", token="...")      # doctest: +SKIP
>>> run = client.submit_request(request)            # returns at once       # doctest: +SKIP
>>> run.url                                                              # doctest: +SKIP
'http://127.0.0.1:8890/imagebuild/builds/4f1c2a9b0d3e5f67'
>>> for event in client.events(run.id): ...                              # doctest: +SKIP
>>> again = RemoteBuildClient.from_settings(settings)  # a new process    # doctest: +SKIP
>>> again.wait(run.id)["status"]                                         # doctest: +SKIP
'succeeded'
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from typing import IO, Any
from urllib.parse import urlsplit

import httpx

from imagebuild_nb.build import RemoteRun
from imagebuild_nb.builders.base import BuildRequest
from imagebuild_nb.builders.hub_discovery import NOT_CONFIGURED_HINT, ServiceEndpoint, find_service
from imagebuild_nb.errors import BuilderUnavailableError, BuildFailedError, ServiceError
from imagebuild_nb.events import BuildEvent, is_terminal
from imagebuild_nb.settings import Settings
from imagebuild_nb.wire import BuildStatus, parse_sse, paths

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class RemoteBuildClient:
    """One httpx client for one service. Thread-safe for independent calls.

    ``endpoint`` (from :func:`find_service`) says where the URL and token came from, for the
    messages, and where a browser opens the build pages.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        stream_idle_timeout: float = 60.0,
        reconnect_for: float = 60.0,
        endpoint: ServiceEndpoint | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.endpoint = endpoint or ServiceEndpoint(self.url, token)
        headers = {"Authorization": f"token {token}"} if token else {}
        verify: ssl.SSLContext | bool = self.endpoint.ssl_context or True
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(timeout, read=stream_idle_timeout),
            verify=verify,
            # A Hub service's URL is internal: a proxy set for pip would not reach it.
            trust_env=not self.endpoint.from_hub,
        )
        self.timeout = timeout
        self.reconnect_for = reconnect_for

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kwargs: Any) -> RemoteBuildClient:
        """The service of ``remote_url``, or inside JupyterHub the Hub's ``hub_service``."""
        endpoint = find_service(settings or Settings.from_env())
        return cls(endpoint.url, endpoint.token, endpoint=endpoint, **kwargs)

    def link(self, path: str) -> str:
        """An API address of a record's ``links`` (absolute paths under the server's base URL)."""
        return _join(self.url, path)

    def page_url(self, record: Mapping[str, Any]) -> str:
        """The build page a browser opens: through the Hub's proxy for a Hub service."""
        page = str((record.get("links") or {}).get("page", paths.page(str(record.get("id")))))
        pages_origin = self.endpoint.pages_origin
        if pages_origin is None:
            return _join(self.url, page)
        if page.startswith("/"):
            return pages_origin + page  # "": a path on the browser's own origin (the proxy)
        return _join(self.url, page)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteBuildClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plain calls -----------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._json("GET", paths.health)

    def get(self, build_id: str) -> dict[str, Any]:
        return self._json("GET", paths.build(build_id))

    def cancel(self, build_id: str) -> dict[str, Any]:
        return self._json("POST", paths.cancel(build_id))

    def exists(self, reference: str, **options: str) -> dict[str, Any]:
        """The service's tri-state answer (checked with the service's registry credentials);
        ``options``: ``spec_hash``, ``platform``."""
        return self._json("GET", paths.existence, params={"reference": reference, **options})

    def upload_context(self, request: BuildRequest) -> str:
        """Send the request's context tar unless the service has it already; its digest."""
        with tempfile.SpooledTemporaryFile(max_size=32 * _CHUNK) as spool:
            digest, size = _write_tar(request, spool)
            path = paths.context(digest)
            if self._request("HEAD", path, allow={404}).status_code == 200:
                return digest
            spool.seek(0)
            self._request(
                "PUT",
                path,
                content=iter(lambda: spool.read(_CHUNK), b""),
                headers={"Content-Type": "application/x-tar", "Content-Length": str(size)},
            )
            return digest

    def submit(
        self,
        uri: str,
        context: str,
        *,
        dockerfile: str = "Dockerfile",
        push: bool = True,
        force: bool = False,
        spec: dict[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        platform: str | None = None,
    ) -> RemoteRun:
        """``secrets``: BuildKit secret id -> the name the service resolves (never a value).
        ``platform``: os/arch[,os/arch...] (several: one multi-platform index)."""
        body: dict[str, Any] = {
            "uri": uri, "context": context, "dockerfile": dockerfile, "push": push, "force": force
        }
        if spec is not None:
            body["spec"] = spec
        if secrets:
            body["secrets"] = dict(secrets)
        if platform:  # only when asked: a service from before platforms refuses the field
            body["platform"] = platform
        record = self._json("POST", paths.builds, json=body)
        return self._run(record)

    def submit_request(self, request: BuildRequest, *, spec: dict[str, Any] | None = None,
                       secrets: Mapping[str, str] | None = None) -> RemoteRun:
        """Upload the context and submit; returns at once (``wait=False``)."""
        digest = self.upload_context(request)
        return self.submit(
            request.primary_tag,
            digest,
            dockerfile=request.dockerfile_path,
            push=request.push,
            force=request.no_cache,
            spec=spec,
            secrets=secrets,
            platform=request.platform,
        )

    def run_for(self, build_id: str) -> RemoteRun:
        """Attach to an existing build by id (e.g. from a new kernel)."""
        return self._run(self.get(build_id))

    # -- events ----------------------------------------------------------------------------
    def events(
        self, build_id: str, *, after: int = 0, cancel: threading.Event | None = None
    ) -> Iterator[BuildEvent]:
        """Every event with seq > ``after`` exactly once, until the terminal one.

        Reconnects with ``Last-Event-ID`` when the stream drops; a set ``cancel`` asks the
        service to cancel (the stream then ends with the ``cancelled`` event).
        """
        last = after
        down_since: float | None = None
        watcher = _CancelWatcher(self, build_id, cancel) if cancel is not None else None
        try:
            while True:
                try:
                    for event in self._stream(build_id, last):
                        down_since = None
                        if event.seq <= last:
                            continue
                        last = event.seq
                        yield event
                        if is_terminal(event):
                            return
                    problem = "the stream ended before the build did"
                except (httpx.TransportError, ServiceUnreachable) as error:
                    problem = _short(error)
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since > self.reconnect_for:
                    raise ServiceError(
                        f"lost contact with the build service at {self.url} while following "
                        f"build {build_id} ({problem}); its outcome is unknown, not failed",
                        hint=f"re-attach later with the build id {build_id!r}",
                    )
                log.info("event stream of build %s dropped (%s); resuming after %d",
                         build_id, problem, last)
                time.sleep(0.2)
        finally:
            if watcher is not None:
                watcher.stop()

    def wait(self, build_id: str, *, after: int = 0) -> dict[str, Any]:
        """Follow to the end; the final record. Raises for failed, cancelled or lost builds."""
        for _ in self.events(build_id, after=after):
            pass
        record = self.get(build_id)
        check_outcome(record)
        return record

    # -- internals -------------------------------------------------------------------------
    def _stream(self, build_id: str, after: int) -> Iterator[BuildEvent]:
        headers = {"Accept": "text/event-stream", "Last-Event-ID": str(after)}
        try:
            with self._http.stream(
                "GET", paths.events(build_id), headers=headers
            ) as response:
                if response.status_code != 200:
                    response.read()
                    self._raise_for(response)
                yield from parse_sse(response.iter_lines())
        except httpx.ConnectError as error:
            raise ServiceUnreachable(str(error)) from None

    def _run(self, record: dict[str, Any]) -> RemoteRun:
        links = record.get("links") or {}
        return RemoteRun(
            id=record["id"],
            url=self.page_url(record),
            api_url=self.link(str(links.get("self", paths.build(record["id"])))),
            deduplicated=bool(record.get("deduplicated", False)),
        )

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        data: dict[str, Any] = self._request(method, path, **kwargs).json()
        return data

    def _request(
        self, method: str, path: str, *, allow: set[int] = frozenset(), **kwargs: Any  # type: ignore[assignment]
    ) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise BuilderUnavailableError(
                f"the build service at {self.url} is unreachable ({_short(error)})"
                + (f"; found as {self.endpoint.origin}" if self.endpoint.from_hub else ""),
                hint=_unreachable_hint(self.endpoint),
            ) from None
        except httpx.TransportError as error:
            raise ServiceError(
                f"the build service at {self.url} did not answer ({_short(error)})"
            ) from None
        if response.status_code >= 400 and response.status_code not in allow:
            self._raise_for(response)
        return response

    def _raise_for(self, response: httpx.Response) -> None:
        status = response.status_code
        try:
            message = str(response.json().get("message") or response.reason_phrase)
        except (ValueError, AttributeError):  # not JSON, or not an object
            message = response.reason_phrase
        if status in (401, 403) and self.endpoint.from_hub:
            raise ServiceError(
                f"the build service ({self.endpoint.origin}) refused the request with this "
                f"server's Hub token ({status}): {message}",
                status_code=status,
                hint=("the Hub's operator grants server tokens access to the service "
                      "(imagebuild_nb.service.hub.configure_hub does); another user's build "
                      "is refused unless the operator grants that too"),
            )
        if status == 401:
            raise ServiceError(
                f"the build service did not accept the token ({status}): {message}",
                status_code=status,
                hint="set IMAGEBUILD_NB_REMOTE_TOKEN to the service's Jupyter token (behind a "
                     "JupyterHub: an API token of yours from the Hub's token page)",
            )
        if status == 403:  # a known caller, refused this one thing: the service says why
            raise ServiceError(
                f"the build service refused the request ({status}): {message}",
                status_code=status,
                hint="the token is accepted but may not do this; the service's operator "
                     "decides who may (behind a JupyterHub: its roles and scopes)",
            )
        raise ServiceError(f"the build service answered {status}: {message}", status_code=status)


class ServiceUnreachable(Exception):
    """Internal: a (re)connect was refused; ``events`` retries, then raises ServiceError."""


def check_outcome(record: dict[str, Any]) -> None:
    """Raise for a build that did not succeed; a lost build is a ServiceError, not a failure."""
    status = record.get("status")
    if status == BuildStatus.SUCCEEDED:
        return
    if status == BuildStatus.INTERRUPTED:
        raise ServiceError(
            f"the build service lost build {record.get('id')}: {record.get('error')}",
            hint="submit the build again",
        )
    if status == BuildStatus.CANCELLED:
        from imagebuild_nb.errors import BuildCancelledError

        raise BuildCancelledError(f"build {record.get('id')} was cancelled")
    if status == BuildStatus.FAILED:
        # The same structured error as a local failure: the service keeps the failed event's
        # step, exit code and log tail in the record.
        raise BuildFailedError(
            f"build {record.get('id')} failed: {record.get('error')}",
            step=record.get("step"),
            exit_code=record.get("exit_code"),
            log_tail=record.get("log_tail") or (),
            hint=f"the full log: `imagebuild logs {record.get('id')}` or the build's page",
        )
    raise ServiceError(f"build {record.get('id')} has not ended (status {status!r})")


class _CancelWatcher:
    """Turns a set ``cancel`` event into one POST .../cancel (from its own thread)."""

    def __init__(self, client: RemoteBuildClient, build_id: str, cancel: threading.Event) -> None:
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(client, build_id, cancel), daemon=True
        )
        self._thread.start()

    def _run(self, client: RemoteBuildClient, build_id: str, cancel: threading.Event) -> None:
        while not self._stopped.is_set():
            if cancel.wait(0.1):
                try:
                    client.cancel(build_id)
                except (ServiceError, BuilderUnavailableError) as error:
                    log.warning("could not cancel build %s: %s", build_id, error)
                return

    def stop(self) -> None:
        self._stopped.set()


def _write_tar(request: BuildRequest, spool: IO[bytes]) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0

    class _Hashing:
        def write(self, data: bytes) -> int:
            nonlocal size
            hasher.update(data)
            size += len(data)
            return spool.write(data)

    request.context.write_tar(_Hashing())  # type: ignore[arg-type]
    return "sha256:" + hasher.hexdigest(), size


def _short(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _join(base: str, link: str) -> str:
    """``base`` + a link. The service's links are absolute paths that already hold its base
    URL ("/services/imagebuild/imagebuild/builds/ID"), so when ``base`` has that path too the
    link goes on its origin; a path ``base`` lacks (a proxy that strips its own prefix) goes
    after ``base``."""
    if "://" in link:
        return link
    if not link.startswith("/"):
        return f"{base.rstrip('/')}/{link}"
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    if path and (link == path or link.startswith(path + "/")):
        return f"{parts.scheme}://{parts.netloc}{link}"
    return base.rstrip("/") + link


def _unreachable_hint(endpoint: ServiceEndpoint) -> str:
    if endpoint.from_hub:
        return ("the Hub lists the service at this internal URL: ask the Hub's operator whether "
                "it runs; or set IMAGEBUILD_NB_REMOTE_URL (and IMAGEBUILD_NB_REMOTE_TOKEN) to "
                "reach a build service directly")
    return NOT_CONFIGURED_HINT


__all__ = ["RemoteBuildClient", "ServiceUnreachable", "check_outcome"]
