"""An in-process OCI registry app for ``httpx.MockTransport``: faults the real one cannot make.

It stores manifests and blobs in dicts, answers HEAD/GET like distribution does (Accept-aware:
an OCI index is 404 unless its type is accepted), and can be told to misbehave per request:
``faults`` maps a path substring to a callable returning a response (429, 500, slow...).
Every request is recorded in ``requests`` so tests can assert on headers sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

Fault = Callable[[httpx.Request], "httpx.Response | Awaitable[httpx.Response] | None"]


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


@dataclass
class FakeRegistry:
    host: str = "registry.test"
    basic: tuple[str, str] | None = None  # require Basic auth with these credentials
    bearer_realm: str | None = None  # require Bearer tokens issued by this realm
    bearer_service: str = "registry.test"
    send_digest: bool = True
    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)

    def transport(self, *others: Callable[[httpx.Request], Any]) -> httpx.MockTransport:
        """A transport serving this registry; ``others`` answer requests to other hosts."""

        async def handler(request: httpx.Request) -> httpx.Response:
            # A snapshot: auth flows mutate and resend the same Request object.
            self.requests.append(httpx.Request(request.method, request.url,
                                               headers=request.headers.copy()))
            if request.url.host != self.host.split(":")[0]:
                for other in others:
                    response = other(request)
                    if asyncio.iscoroutine(response):
                        response = await response
                    if response is not None:
                        return response
                return httpx.Response(502, text=f"no such host {request.url.host}")
            for marker, fault in self.faults.items():
                if marker in request.url.path:
                    response = fault(request)
                    if asyncio.iscoroutine(response):
                        response = await response
                    if response is not None:
                        return response
            return self.handle(request)

        return httpx.MockTransport(handler)

    # -- content ------------------------------------------------------------------------------

    def put_manifest(self, repository: str, reference: str, media_type: str,
                     data: dict[str, Any]) -> str:
        body = json.dumps(data).encode()
        digest = digest_of(body)
        self.manifests[(repository, reference)] = (media_type, body)
        self.manifests[(repository, digest)] = (media_type, body)
        return digest

    def put_blob(self, data: bytes) -> str:
        digest = digest_of(data)
        self.blobs[digest] = data
        return digest

    def put_image(self, repository: str, tag: str, *, labels: dict[str, str] | None = None,
                  architecture: str = "amd64") -> str:
        config = self.put_blob(json.dumps({"architecture": architecture, "os": "linux",
                                           "config": {"Labels": labels or {}}}).encode())
        return self.put_manifest(repository, tag, "application/vnd.oci.image.manifest.v1+json", {
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config, "size": 10},
            "layers": [],
        })

    # -- protocol -----------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        parts = request.url.path.split("/")
        if request.url.path == "/v2/":
            return httpx.Response(200, json={})
        if "manifests" in parts:
            at = parts.index("manifests")
            return self._manifest(request, "/".join(parts[2:at]), parts[at + 1])
        if "blobs" in parts:
            at = parts.index("blobs")
            blob = self.blobs.get(parts[at + 1])
            if blob is None:
                return _error(404, "BLOB_UNKNOWN")
            return httpx.Response(200, content=blob,
                                  headers={"Docker-Content-Digest": parts[at + 1]})
        return httpx.Response(404)

    def _manifest(self, request: httpx.Request, repository: str, reference: str) -> httpx.Response:
        stored = self.manifests.get((repository, reference))
        if stored is None:
            return _error(404, "MANIFEST_UNKNOWN")
        media_type, body = stored
        accepted = request.headers.get_list("accept", split_commas=True)
        if media_type not in accepted:
            return _error(404, "MANIFEST_UNKNOWN")  # as distribution does for unaccepted OCI types
        headers = {"Content-Type": media_type, "Content-Length": str(len(body))}
        if self.send_digest:
            headers["Docker-Content-Digest"] = digest_of(body)
        content = b"" if request.method == "HEAD" else body
        response = httpx.Response(200, headers=headers, content=content)
        return response

    def _authenticate(self, request: httpx.Request) -> httpx.Response | None:
        header = request.headers.get("Authorization", "")
        if self.basic is not None:
            expected = "Basic " + base64.b64encode(":".join(self.basic).encode()).decode()
            if header != expected:
                return _error(401, "UNAUTHORIZED",
                              {"WWW-Authenticate": 'Basic realm="fake"'})
        if self.bearer_realm is not None:
            token = header.removeprefix("Bearer ")
            if not header.startswith("Bearer ") or token not in self.valid_tokens:
                repository = request.url.path.split("/manifests/")[0].removeprefix("/v2/")
                challenge = (f'Bearer realm="{self.bearer_realm}",service="{self.bearer_service}",'
                             f'scope="repository:{repository}:pull"')
                return _error(401, "UNAUTHORIZED", {"WWW-Authenticate": challenge})
        return None


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers,
                          json={"errors": [{"code": code, "message": code.lower()}]})
