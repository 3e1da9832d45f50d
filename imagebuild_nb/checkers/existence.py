"""``ExistenceChecker``: the one object the engine, the magics and the widget ask.

It routes each reference to a checker (a registry when the reference names one, the local
engine otherwise), bounds every check in time, caches definite answers briefly, and offers
the same API sync and async. All network work runs on a private background loop with one
shared httpx client, so the sync calls are safe inside a Jupyter kernel's running loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from types import TracebackType

import docker
import httpx

from imagebuild_nb.checkers.background import BackgroundLoop
from imagebuild_nb.checkers.base import Checker, Stopwatch
from imagebuild_nb.checkers.cache import ResultCache
from imagebuild_nb.checkers.local import LocalEngineChecker
from imagebuild_nb.checkers.registry import RegistryChecker
from imagebuild_nb.checkers.result import ExistenceResult
from imagebuild_nb.registry import Keychain, RegistryClient, default_keychain
from imagebuild_nb.registry.hosts import RegistryHosts, resolve_host
from imagebuild_nb.registry.insecure import InsecureRegistries
from imagebuild_nb.registry.manifests import Platform
from imagebuild_nb.settings import Settings
from imagebuild_nb.spec.reference import ImageReference

log = logging.getLogger(__name__)

RefLike = ImageReference | str
# The caller's wait is the check's own bound plus this much slack for scheduling.
_GRACE = 5.0


class ExistenceChecker:
    """Does an image exist? exists / missing / unknown, with digest, platforms and reason.

    >>> checker = ExistenceChecker()
    >>> checker.check("localhost:5001/library/busybox:latest")  # doctest: +SKIP
    <ExistenceResult exists localhost:5001/library/busybox:latest sha256:2e9a633075dd
     (registry, 1.9 ms)>
    >>> results = checker.check_many(["localhost:5001/a:1", "local-only:2"])  # doctest: +SKIP
    >>> [r.state for r in results]  # doctest: +SKIP
    ['missing', 'missing']
    >>> checker.close()

    ``keychain`` defaults to the Docker CLI's credentials; ``docker_client_factory`` to
    ``docker.from_env``; ``transport`` replaces the network (an ``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        keychain: Keychain | None = None,
        docker_client_factory: Callable[[], docker.DockerClient] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        # A malformed insecure_registries entry fails here, in the caller's frame.
        InsecureRegistries.parse(self.settings.insecure_registries,
                                 source="the insecure_registries setting")
        self._keychain = keychain if keychain is not None else default_keychain()
        self._transport = transport
        self._background = BackgroundLoop()
        self._cache = ResultCache(self.settings.existence_cache_ttl)
        self._registry: RegistryChecker | None = None
        factory = docker_client_factory or partial(
            docker.from_env, timeout=max(1, int(self.settings.registry_timeout)))
        self._local = LocalEngineChecker(factory)
        # A checker dropped without close() (engines are cheap to make in a notebook) still
        # closes its connections when collected, instead of leaking sockets until exit.
        weakref.finalize(self, _release, self._background, self.__dict__)

    # -- sync API -----------------------------------------------------------------------------

    def check(
        self, ref: RefLike, *, spec_hash: str | None = None, platform: str | None = None,
        use_cache: bool = True,
    ) -> ExistenceResult:
        """Check one reference. Never raises for network or auth trouble (that is "unknown");
        raises :class:`~imagebuild_nb.errors.SpecError` for a malformed reference or platform."""
        parsed, wanted = self._inputs(ref, platform)
        return self._background.run(self._check_one(parsed, spec_hash, wanted, use_cache),
                                    timeout=self._bound(1))

    def check_many(
        self, refs: Iterable[RefLike], *, spec_hash: str | None = None,
        platform: str | None = None, use_cache: bool = True,
    ) -> list[ExistenceResult]:
        """Check many references concurrently (at most ``settings.check_concurrency`` at once),
        over one connection pool; results come back in the order given."""
        parsed = [self._inputs(ref, platform) for ref in refs]
        return self._background.run(self._check_all(parsed, spec_hash, use_cache),
                                    timeout=self._bound(len(parsed)))

    # -- async API ----------------------------------------------------------------------------

    async def acheck(
        self, ref: RefLike, *, spec_hash: str | None = None, platform: str | None = None,
        use_cache: bool = True,
    ) -> ExistenceResult:
        parsed, wanted = self._inputs(ref, platform)
        return await self._background.arun(self._check_one(parsed, spec_hash, wanted, use_cache))

    async def acheck_many(
        self, refs: Iterable[RefLike], *, spec_hash: str | None = None,
        platform: str | None = None, use_cache: bool = True,
    ) -> list[ExistenceResult]:
        parsed = [self._inputs(ref, platform) for ref in refs]
        return await self._background.arun(self._check_all(parsed, spec_hash, use_cache))

    # -- cache and lifecycle ------------------------------------------------------------------

    def invalidate(self, ref: RefLike | None = None) -> int:
        """Forget cached answers for ``ref``, or all of them (and remembered credentials,
        tokens and per-registry TLS decisions, e.g. after ``docker login`` or a new
        ``certs.d`` CA). Returns how many answers were dropped."""
        if ref is None:
            if self._registry is not None:
                self._registry.client.auth.forget()
                self._registry.client.hosts.forget()
            return self._cache.invalidate()
        return self._cache.invalidate(str(_parse(ref)))

    def close(self) -> None:
        """Release connections and the background thread. The checker can be used again after."""
        _release(self._background, self.__dict__)

    def __enter__(self) -> ExistenceChecker:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # -- inside the background loop -----------------------------------------------------------

    async def _check_all(
        self, items: Sequence[tuple[ImageReference, str | None]], spec_hash: str | None,
        use_cache: bool,
    ) -> list[ExistenceResult]:
        gate = asyncio.Semaphore(self.settings.check_concurrency)

        async def one(ref: ImageReference, platform: str | None) -> ExistenceResult:
            async with gate:
                return await self._check_one(ref, spec_hash, platform, use_cache)

        return list(await asyncio.gather(*(one(ref, platform) for ref, platform in items)))

    async def _check_one(
        self, ref: ImageReference, spec_hash: str | None, platform: str | None, use_cache: bool
    ) -> ExistenceResult:
        if use_cache:
            cached = self._cache.get(str(ref), spec_hash, platform)
            if cached is not None:
                return cached
        checker = self._checker_for(ref)
        watch = Stopwatch(ref, checker.name)
        timeout = self.settings.registry_timeout
        try:
            result = await asyncio.wait_for(
                checker.check(ref, spec_hash=spec_hash, platform=platform), timeout)
        except asyncio.TimeoutError:
            result = watch.unknown(f"timed out: no answer from the {checker.name} "
                                   f"within {timeout:g}s")
        except Exception as error:  # a bug in a checker must read "unknown", never "exists"
            log.exception("existence check of %s failed", ref)
            result = watch.unknown(f"error: {type(error).__name__}: {error}")
        self._cache.put(ref, spec_hash, platform, result)
        if result.unknown:
            log.info("existence of %s is unknown: %s", ref, result.reason)
        return result

    def _checker_for(self, ref: ImageReference) -> Checker:
        if ref.registry is None:
            return self._local
        if self._registry is None:
            client = RegistryClient(
                keychain=self._keychain,
                timeout=self.settings.registry_timeout,
                transport=self._transport,
                max_connections=self.settings.check_concurrency,
                hosts=registry_hosts(self.settings, dns=self._transport is None),
            )
            self._registry = RegistryChecker(client)
        return self._registry

    # -- helpers ------------------------------------------------------------------------------

    def _inputs(self, ref: RefLike, platform: str | None) -> tuple[ImageReference, str | None]:
        wanted = platform if platform is not None else self.settings.platform
        if wanted is not None:
            # Validate now, in the caller's frame; "a,b" asks for every one of a set.
            wanted = ",".join(str(Platform.parse(p)) for p in wanted.split(","))
        return _parse(ref), wanted

    def _bound(self, count: int) -> float:
        waves = max(1, math.ceil(count / self.settings.check_concurrency))
        return waves * self.settings.registry_timeout + _GRACE


def registry_hosts(settings: Settings, *, dns: bool = True) -> RegistryHosts:
    """How registries are reached under ``settings``: the insecure registries of the setting and
    of Docker's daemon.json, the CA files, Docker's certs.d. Raises SpecError for a bad list."""
    insecure = InsecureRegistries.parse(settings.insecure_registries,
                                        source="the insecure_registries setting")
    if settings.docker_daemon_config:
        daemon = InsecureRegistries.from_daemon_config(settings.docker_daemon_config)
        insecure = insecure.merged(daemon)
    return RegistryHosts(insecure=insecure, extra_ca_files=settings.extra_ca_files,
                         certs_dir=settings.docker_certs_dir or None,
                         resolve=resolve_host if dns else None)


def _parse(ref: RefLike) -> ImageReference:
    return ref if isinstance(ref, ImageReference) else ImageReference.parse(ref, argument="ref")


def _release(background: BackgroundLoop, state: dict[str, object]) -> None:
    """Close the registry client and the engine client, then stop the loop (idempotent)."""
    registry = state.get("_registry")
    state["_registry"] = None
    if isinstance(registry, RegistryChecker) and not background.in_loop_thread():
        try:
            background.run(registry.client.aclose(), timeout=_GRACE)
        except Exception:  # closing must not fail the caller
            log.debug("closing the registry client failed", exc_info=True)
    local = state.get("_local")
    if isinstance(local, LocalEngineChecker):
        local.close()
    background.stop()
