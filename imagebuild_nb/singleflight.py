"""Single flight: concurrent calls for one key share the first call's outcome.

The engine runs identical concurrent builds once: the first caller for a key leads (decides and
starts the build), later callers join and wait for the leader's outcome. The lock guards only the
table of flights; nobody waits while holding it, so calls for other keys never wait on a flight.

>>> flights: SingleFlight[str, str] = SingleFlight()
>>> flight, leading = flights.lead_or_join("img:1")
>>> leading, flights.lead_or_join("img:1") == (flight, False)
(True, True)
>>> flights.land("img:1", flight, "built")
>>> flight.outcome(), flights.lead_or_join("img:1")[1]
('built', True)
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Flight(Generic[V]):
    """One key's call in progress; joiners wait on :meth:`outcome`."""

    def __init__(self) -> None:
        self._decided = threading.Event()
        self._value: V | None = None
        self.joiners = 0  # calls that joined this flight (counted under the table lock)

    def outcome(self, timeout: float | None = None) -> V | None:
        """Block until the leader shares its outcome; None when the leader failed (the joiner
        then makes the call itself). Raises TimeoutError when ``timeout`` passes first."""
        if not self._decided.wait(timeout):
            raise TimeoutError("the call being joined has not decided yet")
        return self._value

    def _share(self, value: V | None) -> None:
        self._value = value
        self._decided.set()


class SingleFlight(Generic[K, V]):
    """The table of flights in progress, keyed by what makes two calls identical."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[K, Flight[V]] = {}

    def lead_or_join(self, key: K) -> tuple[Flight[V], bool]:
        """The flight for ``key`` and whether this caller leads it (True: it was not flying)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                flight.joiners += 1
                return flight, False
            flight = self._flights[key] = Flight()
            return flight, True

    def share(self, flight: Flight[V], value: V) -> None:
        """Hand ``value`` to the joiners while the flight goes on (e.g. a build still running)."""
        flight._share(value)

    def land(self, key: K, flight: Flight[V], value: V | None) -> None:
        """End the flight: joiners get ``value`` (None: leader failed); new calls lead anew.

        Idempotent, and safe after :meth:`share` with the same value."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        if not flight._decided.is_set() or value is not None:
            flight._share(value)

    def joiners(self, key: K) -> int:
        """How many calls have joined the flight for ``key`` (0 when none is flying)."""
        with self._lock:
            flight = self._flights.get(key)
            return 0 if flight is None else flight.joiners

    def __len__(self) -> int:
        with self._lock:
            return len(self._flights)
