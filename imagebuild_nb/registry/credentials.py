"""Registry credentials and the keychains that find them for a host.

A keychain answers one question: which credential do I use for this registry host? Keychains
compose; the first one that knows the host wins (go-containerregistry's ``MultiKeychain``).

>>> chain = ChainKeychain(StaticKeychain({"localhost:5002": Credential("u", "p")}))
>>> chain.resolve("localhost:5002").username
'u'
>>> chain.resolve("ghcr.io") is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from imagebuild_nb.spec.reference import DOCKER_HUB, DOCKER_HUB_API_HOST

# Every name Docker Hub credentials are stored under; config.json uses the legacy index URL.
DOCKER_HUB_ALIASES = (
    "https://index.docker.io/v1/",
    "index.docker.io",
    DOCKER_HUB,
    DOCKER_HUB_API_HOST,
)


@dataclass(frozen=True)
class Credential:
    """A username/password pair or an OAuth2 identity (refresh) token. Secrets stay out of repr.

    >>> Credential("me", "secret")
    Credential(username='me', password=***)
    """

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)

    @property
    def has_basic(self) -> bool:
        return bool(self.username) and self.password is not None

    def __repr__(self) -> str:
        if self.identity_token:
            return f"Credential(username={self.username!r}, identity_token=***)"
        return f"Credential(username={self.username!r}, password=***)"


@runtime_checkable
class Keychain(Protocol):
    """Finds the credential for a registry host (``host[:port]``), or None for anonymous.

    Implementations may block (credential helpers run a process); callers run them off the
    event loop. They raise :class:`~imagebuild_nb.errors.RegistryAuthError` when a configured
    source fails (a helper that hangs or crashes), so that the failure is reported, not hidden.
    """

    def resolve(self, host: str) -> Credential | None: ...


class AnonymousKeychain:
    """Never has credentials."""

    def resolve(self, host: str) -> Credential | None:
        return None


class StaticKeychain:
    """Explicit credentials per host, e.g. from configuration.

    >>> StaticKeychain({"docker.io": ("me", "pw")}).resolve("registry-1.docker.io").username
    'me'
    """

    def __init__(self, credentials: Mapping[str, Credential | tuple[str, str]]) -> None:
        self._by_host: dict[str, Credential] = {}
        for host, value in credentials.items():
            credential = value if isinstance(value, Credential) else Credential(*value)
            self._by_host[normalize_host(host)] = credential

    def resolve(self, host: str) -> Credential | None:
        for alias in host_aliases(host):
            found = self._by_host.get(normalize_host(alias))
            if found is not None:
                return found
        return None


class ChainKeychain:
    """Asks each keychain in turn; the first credential found wins."""

    def __init__(self, *keychains: Keychain) -> None:
        self.keychains = keychains

    def resolve(self, host: str) -> Credential | None:
        for keychain in self.keychains:
            found = keychain.resolve(host)
            if found is not None:
                return found
        return None


def normalize_host(key: str) -> str:
    """``https://host:5000/v1/`` -> ``host:5000`` (config.json keys come in every shape)."""
    text = key.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0]
    if text in ("index.docker.io", DOCKER_HUB):
        return DOCKER_HUB_API_HOST
    return text.lower()


def host_aliases(host: str) -> tuple[str, ...]:
    """The names a host's credentials may be stored under, most specific first."""
    if normalize_host(host) == DOCKER_HUB_API_HOST:
        return DOCKER_HUB_ALIASES
    return (host,)
