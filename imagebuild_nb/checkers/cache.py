"""A short-lived in-process cache of existence answers, keyed by the reference itself.

Only definite answers (exists / missing) are kept: an unknown answer is retried next time.
``latest`` and untagged references are never cached, since they move. The key is the full
reference (its content tag is the identity of the spec), never a file path.

>>> cache = ResultCache(ttl=30, clock=lambda: 0.0)
>>> cache.get("localhost:5001/app:1", None, None) is None
True
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

from imagebuild_nb.checkers.result import ExistenceResult
from imagebuild_nb.spec.reference import ImageReference

_Key = tuple[str, "str | None", "str | None"]
_MAX_ENTRIES = 4096


class ResultCache:
    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[_Key, tuple[ExistenceResult, float]] = {}
        self._lock = threading.Lock()

    def get(self, reference: str, spec_hash: str | None,
            platform: str | None) -> ExistenceResult | None:
        key = (reference, spec_hash, platform)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            result, stored = entry
            if self._clock() - stored >= self.ttl:
                del self._entries[key]
                return None
        return dataclasses.replace(result, cached=True)

    def put(self, ref: ImageReference, spec_hash: str | None, platform: str | None,
            result: ExistenceResult) -> None:
        if self.ttl <= 0 or result.unknown or ref.manifest_reference == "latest":
            return
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.pop(next(iter(self._entries)))
            self._entries[(str(ref), spec_hash, platform)] = (result, self._clock())

    def invalidate(self, reference: str | None = None) -> int:
        """Forget one reference (all its spec hashes and platforms) or everything; returns how
        many answers were dropped."""
        with self._lock:
            if reference is None:
                count = len(self._entries)
                self._entries.clear()
                return count
            doomed = [key for key in self._entries if key[0] == reference]
            for key in doomed:
                del self._entries[key]
            return len(doomed)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
