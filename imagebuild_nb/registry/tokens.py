"""Bearer tokens cached per (realm, service, scope, who asked) until they expire."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# distribution's token spec: expires_in defaults to 60 s when the server omits it.
DEFAULT_EXPIRES_IN = 60.0
# Renew a little early so a token does not expire between lookup and use.
_MARGIN = 5.0


@dataclass(frozen=True)
class TokenKey:
    realm: str
    service: str | None
    scope: str | None
    principal: str  # username, or "" for anonymous tokens


class TokenCache:
    """A small thread-safe map of live tokens.

    >>> cache = TokenCache(clock=lambda: 0.0)
    >>> key = TokenKey("https://auth/token", "reg", "repository:a:pull", "")
    >>> cache.put(key, "t0k3n", expires_in=300)
    >>> cache.get(key)
    't0k3n'
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[TokenKey, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: TokenKey) -> str | None:
        with self._lock:
            entry = self._tokens.get(key)
            if entry is None:
                return None
            token, expires_at = entry
            if self._clock() >= expires_at:
                del self._tokens[key]
                return None
            return token

    def put(self, key: TokenKey, token: str, *, expires_in: float | None) -> None:
        lifetime = DEFAULT_EXPIRES_IN if not expires_in or expires_in <= 0 else expires_in
        with self._lock:
            self._tokens[key] = (token, self._clock() + max(1.0, lifetime - _MARGIN))

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._tokens)
