"""Per-registry connection policy, decided once per host and shared by a client's pools: is it
insecure (Docker's rules, see :mod:`~imagebuild_nb.registry.insecure`), and which TLS context
speaks to it (:mod:`~imagebuild_nb.registry.tls`).

>>> import asyncio
>>> hosts = RegistryHosts()
>>> asyncio.run(hosts.is_insecure("localhost:5001"))
True
>>> asyncio.run(hosts.is_insecure("192.0.2.1:5000"))
False
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence

from imagebuild_nb.registry.insecure import InsecureRegistries, host_of, literal_addresses
from imagebuild_nb.registry.tls import CertsDir, host_ssl_context

log = logging.getLogger(__name__)

Resolver = Callable[[str], Awaitable[Sequence[str]]]
# DNS is asked only to match CIDR ranges; a resolver that hangs must not hold the check up.
_RESOLVE_TIMEOUT = 3.0


async def resolve_host(host: str) -> Sequence[str]:
    """The addresses ``host`` resolves to (none when it does not), as dockerd looks them up."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), _RESOLVE_TIMEOUT)
    except (OSError, asyncio.TimeoutError, UnicodeError):
        return ()
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


class RegistryHosts:
    """Which registries are insecure, and the TLS context for each registry.

    ``resolve`` looks host names up for the CIDR ranges (None: names are matched as written,
    as for an injected test transport that has no DNS behind it); ``ssl_context`` replaces
    the base trust of secure registries.
    """

    def __init__(
        self,
        *,
        insecure: InsecureRegistries | None = None,
        extra_ca_files: Iterable[str] = (),
        certs_dir: str | os.PathLike[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        resolve: Resolver | None = resolve_host,
    ) -> None:
        self.insecure = insecure if insecure is not None else InsecureRegistries()
        self.certs_dir = certs_dir
        self._extra_ca_files = tuple(extra_ca_files)
        self._override = ssl_context
        self._resolve = resolve
        self._insecure_hosts: dict[str, bool] = {}
        self._contexts: dict[tuple[str, bool], ssl.SSLContext] = {}
        self._base: ssl.SSLContext | None = ssl_context
        self._plain_insecure: ssl.SSLContext | None = None

    async def is_insecure(self, netloc: str) -> bool:
        known = self._insecure_hosts.get(netloc)
        if known is not None:
            return known
        host = host_of(netloc)
        addresses: Sequence[str] = literal_addresses(host)
        named = netloc.lower() in self.insecure.names
        if not addresses and not named and self._resolve is not None:
            addresses = await self._resolve(host)
        decided = self.insecure.covers(netloc, addresses)
        if decided:
            log.debug("%s is an insecure registry (addresses %s)", netloc, ", ".join(addresses))
        self._insecure_hosts[netloc] = decided
        return decided

    def context_for(self, netloc: str, *, insecure: bool) -> ssl.SSLContext:
        """The TLS context for ``netloc``; built once, shared where nothing is host-specific."""
        key = (netloc, insecure)
        context = self._contexts.get(key)
        if context is None:
            certs = CertsDir.read(self.certs_dir, netloc)
            if certs.empty:
                context = self._insecure_context() if insecure else self.base_context()
            else:
                context = host_ssl_context(self._extra_ca_files, certs, insecure=insecure)
            self._contexts[key] = context
        return context

    def base_context(self) -> ssl.SSLContext:
        if self._base is None:
            self._base = host_ssl_context(self._extra_ca_files, CertsDir(), insecure=False)
        return self._base

    def _insecure_context(self) -> ssl.SSLContext:
        if self._plain_insecure is None:
            self._plain_insecure = host_ssl_context((), CertsDir(), insecure=True)
        return self._plain_insecure

    def forget(self) -> None:
        """Decide again on next use (after a change in DNS or in a registry's certs.d)."""
        self._insecure_hosts.clear()
        self._contexts.clear()
