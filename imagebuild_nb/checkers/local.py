"""The local engine checker: the embedded default for images that name no registry.

docker-py is blocking, so each lookup runs in a worker thread; the client is created once
(lazily, so a machine without Docker pays nothing until it asks) and recreated after a
failure, since the daemon may come up later.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import docker
import docker.errors
import requests

from imagebuild_nb.checkers.base import Stopwatch, spec_hash_verdict
from imagebuild_nb.checkers.result import ExistenceResult
from imagebuild_nb.registry.manifests import Platform
from imagebuild_nb.spec.reference import ImageReference

log = logging.getLogger(__name__)

DockerClientFactory = Callable[[], docker.DockerClient]


class LocalEngineChecker:
    """Asks the Docker engine (``DOCKER_HOST``, the CLI context, or the local socket).

    >>> checker = LocalEngineChecker(lambda: docker.from_env(timeout=10))
    >>> await checker.check(ImageReference.parse("analysis:1f2e3d"))  # doctest: +SKIP
    <ExistenceResult missing analysis:1f2e3d (local engine, 3.1 ms)>
    """

    name = "local engine"

    def __init__(self, client_factory: DockerClientFactory) -> None:
        self._factory = client_factory
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    async def check(
        self, ref: ImageReference, *, spec_hash: str | None = None, platform: str | None = None
    ) -> ExistenceResult:
        watch = Stopwatch(ref, self.name)
        wanted = Platform.parse(platform) if platform else None
        return await asyncio.to_thread(self._check, watch, ref, spec_hash, wanted)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _check(
        self, watch: Stopwatch, ref: ImageReference, spec_hash: str | None, wanted: Platform | None
    ) -> ExistenceResult:
        name = str(ref) if (ref.tag or ref.digest) else f"{ref}:latest"
        try:
            attrs = self._docker().images.get(name).attrs
        except docker.errors.ImageNotFound:
            return watch.result("missing")
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            if isinstance(error, docker.errors.APIError) and not _unavailable(error):
                return watch.unknown(f"error: the Docker engine failed to answer ({error})")
            self.close()
            return watch.unknown(f"daemon down: the Docker engine does not answer ({error})")
        return _result(watch, attrs, spec_hash, wanted)

    def _docker(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client


def _unavailable(error: docker.errors.APIError) -> bool:
    status = error.status_code or 0
    return status in (502, 503, 504)


def _result(
    watch: Stopwatch, attrs: dict[str, Any], spec_hash: str | None, wanted: Platform | None
) -> ExistenceResult:
    have = Platform.from_json({"os": attrs.get("Os"), "architecture": attrs.get("Architecture"),
                               "variant": attrs.get("Variant")})
    platforms = (str(have),) if have else ()
    if wanted is not None and have is not None and not wanted.matches(have):
        return watch.result("missing", platforms=platforms,
                            reason=f"the local image is for {have}, not {wanted}")
    matches, reason = spec_hash_verdict({"config": attrs.get("Config") or {}}, spec_hash)
    return watch.result("exists", digest=attrs.get("Id"), platforms=platforms,
                        spec_hash_matches=matches, reason=reason)
