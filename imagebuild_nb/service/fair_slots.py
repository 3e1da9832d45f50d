"""Build slots shared fairly between users.

A service runs ``total`` builds at once. When a slot frees, it goes to the waiting build whose
user has the fewest builds running; between users with as many, to the one whose last build
started longest ago; and of that user's builds, the oldest. So one user's fifty queued builds
never starve another user's one: the second user's build starts at the next free slot.
``per_user`` (0: none) caps how many builds of one user run at once, even with slots free.

>>> import asyncio
>>> async def demo():
...     slots, order = FairSlots(1), []
...     async def build(user, name):
...         async with slots.slot(user):
...             order.append(name)
...             await asyncio.sleep(0)
...     await asyncio.gather(*(build(u, n) for u, n in
...                            [("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1")]))
...     return order
>>> asyncio.run(demo())
['a1', 'b1', 'a2', 'a3']
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass(order=True)
class _Waiter:
    order: int
    user: str | None = field(compare=False)
    granted: asyncio.Future[None] = field(compare=False)


class FairSlots:
    def __init__(self, total: int, *, per_user: int = 0) -> None:
        if total < 1:
            raise ValueError("a build service needs at least one build slot")
        self.total = total
        self.per_user = per_user
        self._running: Counter[str | None] = Counter()
        self._waiting: list[_Waiter] = []
        self._order = itertools.count()
        self._last_start: dict[str | None, int] = {}  # user -> order of their latest start

    @property
    def free(self) -> int:
        return self.total - sum(self._running.values())

    def running(self, user: str | None) -> int:
        return self._running[user]

    @asynccontextmanager
    async def slot(self, user: str | None) -> AsyncIterator[None]:
        """Wait for a slot for one build of ``user``; hold it inside the block."""
        waiter = _Waiter(next(self._order), user, asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        self._dispatch()
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            elif waiter.granted.done() and not waiter.granted.cancelled():
                self._release(user)  # granted at the moment it was cancelled
            raise
        try:
            yield
        finally:
            self._release(user)

    def _release(self, user: str | None) -> None:
        self._running[user] -= 1
        if self._running[user] <= 0:
            del self._running[user]
            if not any(waiter.user == user for waiter in self._waiting):
                self._last_start.pop(user, None)
        self._dispatch()

    def _dispatch(self) -> None:
        while self.free > 0:
            eligible = [waiter for waiter in self._waiting
                        if not self.per_user or self._running[waiter.user] < self.per_user]
            if not eligible:
                return
            chosen = min(eligible, key=lambda waiter: (
                self._running[waiter.user], self._last_start.get(waiter.user, -1), waiter.order))
            self._waiting.remove(chosen)
            self._running[chosen.user] += 1
            self._last_start[chosen.user] = next(self._order)
            chosen.granted.set_result(None)


__all__ = ["FairSlots"]
