"""HTTP handlers of the build service: thin, authenticated, JSON in and out; logic is in the backend
(``backend.BuildBackend``: the embedded manager, or a farm replica on PostgreSQL).

Every route is listed in ``openapi.yaml`` next to this module.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from importlib import resources
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import iostream, web

from imagebuild_nb import wire
from imagebuild_nb.service.access import Caller
from imagebuild_nb.service.archive import ArchiveTooLargeError, UnsafeArchiveError
from imagebuild_nb.service.backend import BuildBackend
from imagebuild_nb.service.existence import check_existence
from imagebuild_nb.service.manager import MissingContextError
from imagebuild_nb.service.page import log_lines
from imagebuild_nb.service.submission import (
    DIGEST_RE,
    Submission,
    SubmissionError,
    UserLimitError,
    parse_json_body,
)
from imagebuild_nb.service.uploads import ContextUpload

log = logging.getLogger(__name__)

AUTH_RESOURCE = "imagebuild"
_LOG_PIECE = 256 * 1024  # characters of GET .../log written before waiting for the client
# Jupyter Server reads "Authorization: token <t>" and "Authorization: Bearer <t>".
CHALLENGE = 'token realm="imagebuild", Bearer realm="imagebuild"'
BUILD_ID = r"(?P<build_id>[^/]+)"


class ServiceHandler(ExtensionHandlerMixin, APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def backend(self) -> BuildBackend:
        return self.settings["imagebuild_backend"]  # type: ignore[no-any-return]

    @property
    def service_config(self) -> dict[str, Any]:
        return self.settings["imagebuild_config"]  # type: ignore[no-any-return]

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        self._require_user()

    def check_xsrf_cookie(self) -> None:
        # An API client without credentials is unauthenticated (401), not an XSRF suspect (403);
        # before prepare() has authenticated (tornado's early call) we defer: prepare() checks
        # again. (Not the base class's job: behind a Hub, JupyterHub's patch of it checks at
        # once and refuses token-authenticated uploads and submissions.)
        if not hasattr(self, "_jupyter_current_user"):
            return
        self._require_user()
        super().check_xsrf_cookie()

    def _require_user(self) -> None:
        if not getattr(self, "_jupyter_current_user", None):
            raise web.HTTPError(401, "authentication required: send 'Authorization: token <token>'")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 401:
            # Set here, not where the 401 is raised: send_error() clears the headers first.
            self.set_header("WWW-Authenticate", CHALLENGE)
        if self.request.method == "HEAD":
            # A HEAD answer has no body; writing the JSON error makes tornado drop the connection.
            self.finish()
            return
        super().write_error(status_code, **kwargs)

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))

    def record_json(self, record: wire.BuildInfo) -> dict[str, Any]:
        data = record.to_dict()
        data.pop("deduplicated", None)
        if not record.attempt:  # farm fields: which attempt on which engine
            data.pop("attempt")
            data.pop("engine")
        data["links"] = wire.links(self.base_url, record.id)
        return data

    @property
    def caller(self) -> Caller:
        return Caller.of(self.current_user, self.settings["imagebuild_admin_scope"])

    async def find(self, build_id: str) -> wire.BuildInfo:
        """The build, when the caller may see it (``Caller.find``); 404 otherwise."""
        record = await self.caller.find(self.backend, build_id)
        if record is None:
            raise web.HTTPError(404, f"no build with id {build_id}")
        return record


class HealthHandler(ServiceHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.backend.health())


@web.stream_request_body
class ContextHandler(ServiceHandler):
    """``PUT`` a build context tar under its sha256; ``HEAD`` says whether it is already here."""

    _upload: ContextUpload | None = None
    _refused: Exception | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        # Refusals are answered from head()/put(), after the body is drained (discarded, never
        # stored): tornado closes a streaming connection refused in prepare(), and a reply sent
        # while the client is still uploading reaches it as a connection reset.
        limit = int(self.service_config["max_upload_bytes"])
        # Typed as the HTTPConnection interface; the HTTP/1 server's connection has the method.
        self.request.connection.set_max_body_size(2 * limit)  # type: ignore[union-attr]
        try:
            await super().prepare()
        except web.HTTPError as error:
            self._refused = error
            return
        if self.request.method != "PUT":
            return
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "write", AUTH_RESOURCE)
        )
        digest = self.path_kwargs["digest"]
        declared = self.request.headers.get("Content-Length", "")
        if not allowed:
            self._refused = web.HTTPError(403, "not authorized to upload build contexts")
        elif not DIGEST_RE.match(digest):
            self._refused = web.HTTPError(400, "the digest must be 'sha256:' + 64 hex digits")
        elif declared.isdigit() and int(declared) > 2 * limit:
            raise web.HTTPError(413, f"the context upload is larger than {limit} bytes")
        else:
            self._upload = ContextUpload(self.backend.upload_dir(), digest, max_bytes=limit)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if self.request.method == "PUT":
            # Refused before the body was read: tornado drops the connection, so say so.
            self.set_header("Connection", "close")
        super().write_error(status_code, **kwargs)

    def data_received(self, chunk: bytes) -> None:
        if self._upload is None or self._refused is not None:
            return
        try:
            self._upload.write(chunk)
        except ArchiveTooLargeError as error:
            self._refused = error
            self._upload.abort()

    def on_finish(self) -> None:
        if self._upload is not None:
            self._upload.abort()

    def on_connection_close(self) -> None:
        self.on_finish()
        super().on_connection_close()

    async def head(self, digest: str) -> None:
        if isinstance(self._refused, web.HTTPError):
            raise self._refused
        await self._exists(digest)  # type: ignore[misc]  # @web.authenticated: Awaitable | None

    @web.authenticated
    @authorized
    async def _exists(self, digest: str) -> None:
        # A HEAD that finds the context is a use: the client skips the upload and submits.
        if not DIGEST_RE.match(digest) or not await self.backend.use_context(digest):
            raise web.HTTPError(404)
        self.set_status(200)
        self.finish()

    async def put(self, digest: str) -> None:
        # prepare() authenticated and authorized before any byte was stored; see there.
        if isinstance(self._refused, web.HTTPError):
            raise self._refused
        if isinstance(self._refused, ArchiveTooLargeError):
            raise web.HTTPError(413, str(self._refused))
        await self._store(digest)  # type: ignore[misc]  # @web.authenticated: Awaitable | None

    @web.authenticated
    @authorized
    async def _store(self, digest: str) -> None:
        assert self._upload is not None
        destination = self.backend.context_destination(digest)
        upload, self._upload = self._upload, None
        try:
            summary = await asyncio.to_thread(
                upload.finish, destination, self.backend.archive_limits
            )
            await self.backend.store_context(digest, destination)
        except ArchiveTooLargeError as error:  # the farm's size limit too
            raise web.HTTPError(413, str(error)) from None
        except UnsafeArchiveError as error:
            raise web.HTTPError(400, str(error)) from None
        self.reply(
            {"digest": digest, "size": upload.size, "files": summary.files}, status=201
        )


class BuildsHandler(ServiceHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        status = self.get_argument("status", None)
        if status is not None and status not in wire.ALL_STATUSES:
            raise web.HTTPError(400, f"status must be one of {', '.join(wire.ALL_STATUSES)}")
        limit = _int_argument(self, "limit", 100, low=1, high=1000)
        records = await self.backend.list(status=status, limit=limit,
                                          visible_to=self.caller.filter)
        self.reply({"builds": [self.record_json(record) for record in records]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        try:
            submission = Submission.from_json(parse_json_body(self.request.body))
            record, deduplicated = await self.backend.submit(submission, self.caller.owner)
        except UserLimitError as error:
            raise web.HTTPError(429, str(error)) from None
        except SubmissionError as error:
            raise web.HTTPError(400, str(error)) from None
        except MissingContextError:
            raise web.HTTPError(
                409,
                "the build context was not uploaded: PUT it to /imagebuild/api/contexts/<digest>",
            ) from None
        data = self.record_json(record)
        data["deduplicated"] = deduplicated
        self.reply(data, status=202)


class BuildHandler(ServiceHandler):
    @web.authenticated
    @authorized
    async def get(self, build_id: str) -> None:
        self.reply(self.record_json(await self.find(build_id)))


class CancelHandler(ServiceHandler):
    @web.authenticated
    @authorized
    async def post(self, build_id: str) -> None:
        record = await self.find(build_id)
        if not self.caller.may_cancel(record):
            raise web.HTTPError(
                403, f"build {build_id} was started by {record.owner}: joining an identical "
                "build shares its log and outcome, not the right to cancel it (submit with "
                "force=True for a build of your own)")
        self.reply(self.record_json(await self.backend.cancel(build_id)), status=202)


class EventsHandler(ServiceHandler):
    """Server-Sent Events: ``id: <seq>``; resume with ``Last-Event-ID`` (or ``?after=``)."""

    @web.authenticated
    @authorized
    async def get(self, build_id: str) -> None:
        await self.find(build_id)
        after = _int_argument(self, "after", 0, low=0, high=2**53)
        try:
            after = wire.last_event_id(self.request.headers.get("Last-Event-ID"), after)
        except ValueError as error:
            raise web.HTTPError(400, str(error)) from None
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        keepalive = float(self.service_config["keepalive_interval"])
        try:
            self.write(wire.RETRY)
            await self.flush()
            async for batch in self.backend.follow(build_id, after=after, keepalive=keepalive):
                if batch is None:
                    self.write(wire.KEEPALIVE)
                else:
                    self.write("".join(wire.format_event(seq, text) for seq, text in batch))
                await self.flush()
        except iostream.StreamClosedError:
            return
        self.finish(set_content_type="text/event-stream")


class LogHandler(ServiceHandler):
    @web.authenticated
    @authorized
    async def get(self, build_id: str) -> None:
        await self.find(build_id)
        # The same lines as the build's page shows, sent in pieces as they are read: a log of
        # any length never sits in memory whole.
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        lines = log_lines(iter(await self.backend.read_events(build_id)))
        piece: list[str] = []
        size = 0
        try:
            for line in lines:
                piece.append(f"{line}\n")
                size += len(line) + 1
                if size >= _LOG_PIECE:
                    self.write("".join(piece))
                    piece, size = [], 0
                    await self.flush()
        except iostream.StreamClosedError:
            return
        self.finish("".join(piece), set_content_type="text/plain; charset=utf-8")


class ExistenceHandler(ServiceHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        reference = self.get_argument("reference", None)
        if not reference:
            raise web.HTTPError(400, "give the image as ?reference=registry/name:tag")
        spec_hash = self.get_argument("spec_hash", None)
        if spec_hash is not None and not re.fullmatch(r"[0-9a-f]{16,64}", spec_hash):
            raise web.HTTPError(400, "spec_hash must be 16 to 64 lower-case hex digits")
        status, body = await check_existence(
            reference, self.settings["imagebuild_checker"], spec_hash=spec_hash,
            platform=self.get_argument("platform", None))
        self.reply(body, status=status)


class OpenAPIHandler(ServiceHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        text = resources.files("imagebuild_nb.service").joinpath("openapi.yaml").read_text()
        self.finish(text, set_content_type="application/yaml")


def _int_argument(handler: APIHandler, name: str, default: int, *, low: int, high: int) -> int:
    raw = handler.get_argument(name, None)
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,16}", raw) or not low <= int(raw) <= high:
        raise web.HTTPError(400, f"{name} must be an integer from {low} to {high}")
    return int(raw)
