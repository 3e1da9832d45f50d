"""Memory stays bounded whatever a registry sends: endless manifests, lying lengths, huge 401 and
redirect bodies, compression bombs. A scripted server streams the bodies over a real socket; the
peak of Python allocations (tracemalloc, all threads) is measured around each request."""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from imagebuild_nb.checkers import ExistenceChecker
from imagebuild_nb.errors import RegistryError
from imagebuild_nb.registry import RegistryClient
from imagebuild_nb.registry.bounded import MAX_BODY
from imagebuild_nb.settings import Settings
from imagebuild_nb.spec.reference import ImageReference
from tests.support.scripted_http import ScriptedRequest, scripted_server

MIB = 1024 * 1024
BODY = 64 * MIB  # what the hostile server streams
BOUND = 16 * MIB  # the peak allowed: a quarter of the body (the cap is 4 MiB)
CHUNK = b" " * (64 * 1024)
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def endless(total: int = BODY) -> Iterator[bytes]:
    for _ in range(total // len(CHUNK)):
        yield CHUNK


def huge_manifest(request: ScriptedRequest) -> None:
    request.reply(200, {"Content-Type": MANIFEST_TYPE}, endless())


def lying_length(request: ScriptedRequest) -> None:
    # Declares 1.5 GB and would send 64 MiB of it: the length alone must be refused.
    request.reply(200, {"Content-Type": MANIFEST_TYPE, "Content-Length": str(1536 * MIB)},
                  endless())


def huge_401(request: ScriptedRequest) -> None:
    request.reply(401, {"WWW-Authenticate": 'Basic realm="x"', "Content-Type": "application/json"},
                  endless())


def huge_redirect(request: ScriptedRequest) -> None:
    if "/elsewhere" in request.path:
        request.reply(200, {"Content-Type": MANIFEST_TYPE}, b"{}")
        return
    request.reply(302, {"Location": "/v2/team/app/manifests/elsewhere"}, endless())


_BOMB = gzip.compress(b" " * BODY, compresslevel=9)  # ~64 KiB that inflates to 64 MiB


def gzip_bomb(request: ScriptedRequest) -> None:
    request.reply(200, {"Content-Type": MANIFEST_TYPE, "Content-Encoding": "gzip"}, _BOMB)


def peak_of(action: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        try:
            outcome: Any = action()
        except Exception as error:  # noqa: BLE001 - the caller asserts on the outcome
            outcome = error
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def get_manifest(netloc: str) -> Any:
    async def main() -> Any:
        async with RegistryClient(timeout=30) as client:
            return await client.get_manifest(ImageReference.parse(f"{netloc}/team/app:1"))

    return asyncio.run(main())


@pytest.mark.parametrize(
    "script", [huge_manifest, lying_length, huge_401, huge_redirect, gzip_bomb],
    ids=["endless-body", "lying-length", "401-body", "redirect-body", "gzip-bomb"])
def test_hostile_bodies_are_refused_with_bounded_memory(script):
    with scripted_server(script) as server:
        outcome, peak = peak_of(lambda: get_manifest(server.netloc))
        sent = max((r.sent for r in server.requests), default=0)
    assert isinstance(outcome, RegistryError), outcome
    assert server.netloc in outcome.message
    assert peak < BOUND, f"peak {peak / MIB:.1f} MiB for a {BODY // MIB} MiB body"
    # The client hung up early instead of draining the rest.
    assert sent < BODY


def test_a_huge_manifest_makes_existence_unknown_not_a_crash():
    with scripted_server(huge_manifest) as server, \
            ExistenceChecker(Settings(registry_timeout=30)) as checker:
        # A spec hash needs the manifest itself (a plain check HEADs only).
        result, peak = peak_of(lambda: checker.check(f"{server.netloc}/team/app:1",
                                                     spec_hash="abc"))
    assert result.unknown, result
    assert result.reason.startswith("registry error:") and f"{MAX_BODY // MIB} MiB" in result.reason
    assert peak < BOUND, f"peak {peak / MIB:.1f} MiB"


def test_a_small_manifest_still_reads():
    body = (b'{"schemaVersion": 2, "mediaType": "%s", "config": {}, "layers": []}'
            % MANIFEST_TYPE.encode())

    def small(request: ScriptedRequest) -> None:
        request.reply(200, {"Content-Type": MANIFEST_TYPE}, iter([body[:10], body[10:]]))

    with scripted_server(small) as server:
        manifest = get_manifest(server.netloc)
    assert manifest.body == body and manifest.media_type == MANIFEST_TYPE
