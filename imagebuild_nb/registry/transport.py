"""The registry client's transport: one request, routed the way dockerd would send it.

Per request it picks the TLS context of the target registry (verifying, with that registry's
``certs.d`` CAs, or not verifying for an insecure registry), the proxy from ``HTTPS_PROXY`` /
``HTTP_PROXY`` / ``NO_PROXY`` (:mod:`~imagebuild_nb.registry.proxy`), and caps the response
body (:mod:`~imagebuild_nb.registry.bounded`). Connection pools are kept per (context, proxy).

>>> transport = RegistryTransport(RegistryHosts(), proxies=ProxyConfig())
"""

from __future__ import annotations

import ssl

import httpx

from imagebuild_nb.registry.bounded import MAX_BODY, bounded
from imagebuild_nb.registry.hosts import RegistryHosts
from imagebuild_nb.registry.proxy import ProxyConfig


class RegistryTransport(httpx.AsyncBaseTransport):
    """``inner`` replaces the network (a test's ``httpx.MockTransport``); bodies stay capped."""

    def __init__(
        self,
        hosts: RegistryHosts,
        *,
        proxies: ProxyConfig,
        limits: httpx.Limits | None = None,
        inner: httpx.AsyncBaseTransport | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self.hosts = hosts
        self.proxies = proxies
        self._limits = limits or httpx.Limits()
        self._inner = inner
        self._max_body = max_body
        # (id of the TLS context, proxy) -> (the context, kept alive for its id; the pool)
        self._transports: dict[tuple[int, str | None],
                               tuple[ssl.SSLContext, httpx.AsyncHTTPTransport]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._inner or await self._route(request.url)
        response = await transport.handle_async_request(request)
        return await bounded(response, request, self._max_body)

    async def _route(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        netloc = url.netloc.decode("ascii")
        if url.scheme == "https":
            context = self.hosts.context_for(netloc, insecure=await self.hosts.is_insecure(netloc))
        else:
            context = self.hosts.base_context()  # unused for plain HTTP, but one pool key
        proxy = self.proxies.proxy_for(url.scheme, netloc)
        key = (id(context), proxy)
        entry = self._transports.get(key)
        if entry is None:
            entry = (context, httpx.AsyncHTTPTransport(verify=context, proxy=proxy,
                                                       limits=self._limits, trust_env=False))
            self._transports[key] = entry
        return entry[1]

    async def aclose(self) -> None:
        transports = [t for _, t in self._transports.values()]
        self._transports.clear()
        for transport in transports:
            await transport.aclose()
        if self._inner is not None:
            await self._inner.aclose()
