"""Which proxy a registry request goes through: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY``,
read the way the Docker engine and CLI read them (Go's ``httpproxy.FromEnvironment``):

- ``HTTPS_PROXY`` for https URLs, ``HTTP_PROXY`` for http URLs (upper case first, then lower);
  a value without a scheme means ``http://``;
- ``localhost`` and loopback addresses never go through a proxy;
- ``NO_PROXY`` is a comma-separated list of ``*``, IP addresses, CIDR ranges and domain names,
  each optionally with ``:port``; ``example.com`` matches it and its subdomains,
  ``.example.com`` (or ``*.example.com``) only the subdomains.

>>> config = ProxyConfig.from_env({"HTTPS_PROXY": "proxy:3128",
...                                "NO_PROXY": "internal.example,10.0.0.0/8"})
>>> config.proxy_for("https", "ghcr.io")
'http://proxy:3128'
>>> hosts = ("reg.internal.example:5000", "10.1.2.3:443", "localhost:5001")
>>> [config.proxy_for("https", host) for host in hosts]
[None, None, None]
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from imagebuild_nb.errors import SpecError

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class _Rule:
    """One NO_PROXY entry: a network, or a domain suffix, with an optional port."""

    network: _Network | None = None
    domain: str | None = None  # with a leading dot
    exact_too: bool = False  # "example.com" also matches example.com itself
    port: str | None = None

    def matches(self, host: str, port: str, address: _Address | None) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address is not None and address in self.network
        assert self.domain is not None
        return address is None and (host.endswith(self.domain)
                                    or (self.exact_too and host == self.domain[1:]))


@dataclass(frozen=True)
class ProxyConfig:
    http_proxy: str | None = None
    https_proxy: str | None = field(default=None)
    no_proxy: str = ""
    _rules: tuple[_Rule, ...] = field(default=(), init=False, repr=False, compare=False)
    _everything: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rules, everything = _parse_no_proxy(self.no_proxy)
        object.__setattr__(self, "_rules", rules)
        object.__setattr__(self, "_everything", everything)
        for name, value in (("HTTP_PROXY", self.http_proxy), ("HTTPS_PROXY", self.https_proxy)):
            if value and "://" in value and not value.lower().startswith(
                    ("http://", "https://", "socks5://", "socks5h://")):
                raise SpecError(
                    f"{name} has a scheme the registry client cannot use",
                    argument=name,
                    hint="use http://host:port (or https://, socks5://) for the proxy URL",
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProxyConfig:
        env = os.environ if environ is None else environ

        def first(*names: str) -> str | None:
            for name in names:
                if env.get(name):
                    return env[name]
            return None

        return cls(
            http_proxy=first("HTTP_PROXY", "http_proxy"),
            https_proxy=first("HTTPS_PROXY", "https_proxy"),
            no_proxy=first("NO_PROXY", "no_proxy") or "",
        )

    def proxy_for(self, scheme: str, netloc: str) -> str | None:
        """The proxy URL for a request to ``scheme://netloc``, or None to connect directly."""
        raw = self.https_proxy if scheme == "https" else self.http_proxy
        if not raw or not self._uses_proxy(netloc, scheme):
            return None
        return raw if "://" in raw else f"http://{raw}"

    def _uses_proxy(self, netloc: str, scheme: str) -> bool:
        host, port = _split(netloc, "443" if scheme == "https" else "80")
        if host == "localhost":
            return False
        try:
            address: _Address | None = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and address.is_loopback:
            return False
        if self._everything:
            return False
        return not any(rule.matches(host, port, address) for rule in self._rules)


def _split(netloc: str, default_port: str) -> tuple[str, str]:
    text = netloc.strip().lower()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, port
    return text, default_port


def _parse_no_proxy(value: str) -> tuple[tuple[_Rule, ...], bool]:
    rules: list[_Rule] = []
    for raw in value.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return (), True
        try:
            rules.append(_Rule(network=ipaddress.ip_network(entry, strict=False))
                         if "/" in entry else _address_rule(entry))
            continue
        except ValueError:
            pass
        host, port = _split(entry, "")
        if not host:
            continue
        try:
            rules.append(_Rule(network=ipaddress.ip_network(host), port=port or None))
            continue
        except ValueError:
            pass
        if host.startswith("*."):
            host = host[1:]
        exact_too = not host.startswith(".")
        rules.append(_Rule(domain=host if host.startswith(".") else "." + host,
                           exact_too=exact_too, port=port or None))
    return tuple(rules), False


def _address_rule(entry: str) -> _Rule:
    # A bare IPv6 address has colons but no port: try it whole before splitting off a port.
    return _Rule(network=ipaddress.ip_network(entry))
