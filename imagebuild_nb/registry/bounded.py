"""Hard caps on what a registry may make us hold: every response body, at the transport.

The registry client reads manifests, config blobs, tokens and error bodies, all small. A
hostile or broken registry can send gigabytes (an endless manifest, a lying Content-Length, a
huge 401 or redirect body that httpx reads by itself) or a compression bomb. So below httpx:

- a declared ``Content-Length`` over the cap is refused before a byte is read (HEAD aside:
  there it describes the GET's body);
- the body is counted while it streams and refused the moment it passes the cap;
- only identity bodies are accepted (the client asks for ``Accept-Encoding: identity``):
  a compressed body could inflate past any cap after it was counted.

>>> BoundedStream.__name__, MAX_BODY // (1024 * 1024)
('BoundedStream', 4)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from imagebuild_nb.errors import RegistryError

MAX_BODY = 4 * 1024 * 1024
TOO_LARGE = "TOO_LARGE"


class ResponseTooLarge(RegistryError):
    """A registry response body exceeded the cap (or announced that it would)."""


def _refusal(request: httpx.Request, what: str, limit: int) -> ResponseTooLarge:
    where = f"{request.url.netloc.decode('ascii')}{request.url.path}"
    return ResponseTooLarge(
        f"{where} sent {what}, more than the {limit // (1024 * 1024)} MiB allowed for a registry "
        "document; it was refused without reading it",
        code=TOO_LARGE,
        hint="a manifest or image config is a few KiB: check that this is the registry you meant "
        "(not a proxy or web server answering in its place)",
    )


class BoundedStream(httpx.AsyncByteStream):
    """Passes a response body through, and raises once more than ``limit`` bytes came."""

    def __init__(self, inner: httpx.AsyncByteStream, request: httpx.Request, limit: int) -> None:
        self._inner = inner
        self._request = request
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._inner:
            seen += len(chunk)
            if seen > self._limit:
                raise _refusal(self._request, "a body that kept coming", self._limit)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


async def bounded(response: httpx.Response, request: httpx.Request, limit: int = MAX_BODY
                  ) -> httpx.Response:
    """``response`` with its body capped at ``limit`` bytes; raises (and closes it) at once when
    its headers already say too much or announce an encoding we did not ask for."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    length = response.headers.get("Content-Length", "")
    problem: RegistryError | None = None
    if encoding not in ("", "identity"):
        where = request.url.netloc.decode("ascii")
        problem = RegistryError(
            f"{where} sent a body encoded with {encoding!r} although only 'identity' was asked "
            "for; it was refused (a compressed body can inflate past any size limit)",
            hint="check that this is the registry you meant, or put it behind a proxy that "
            "honours Accept-Encoding",
        )
    elif request.method != "HEAD" and length.isdigit() and int(length) > limit:
        problem = _refusal(request, f"Content-Length {int(length)}", limit)
    if problem is not None:
        await response.aclose()
        raise problem
    stream = response.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=BoundedStream(stream, request, limit),
        extensions=response.extensions,
        request=request,
    )
