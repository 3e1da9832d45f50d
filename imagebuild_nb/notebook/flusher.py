"""A periodic flusher: the one place where queued build activity becomes widget updates.

Producers (builder threads, event callbacks, button handlers) only put work in a queue and call
:meth:`Flusher.wake`. A daemon thread then calls ``flush()`` every ``interval`` seconds until
``flush()`` reports that nothing is left to do, so a widget sends at most ``1 / interval``
updates per second however fast the log comes, and no thread idles when nothing happens.

A thread rather than the kernel's asyncio loop: a cell that blocks (``time.sleep``, a long
computation) stalls the loop, and the build view must keep moving meanwhile. ipykernel sends
comm messages from any thread through its IOPub thread.

>>> import threading
>>> done = threading.Event()
>>> flusher = Flusher(lambda: done.set() or False, interval=0.01)
>>> flusher.wake()
>>> done.wait(2)
True
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Flusher:
    """Call ``flush`` periodically while there is work; ``flush`` returns True to keep ticking."""

    def __init__(self, flush: Callable[[], bool], *, interval: float = 0.25,
                 name: str = "") -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self._flush = flush
        self._name = name or "imagebuild-flusher"
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending = False

    @property
    def running(self) -> bool:
        with self._lock:
            return self._thread is not None

    def wake(self) -> None:
        """Ask for a flush at the next tick; starts the ticking thread if it is idle."""
        with self._lock:
            self._pending = True
            if self._stopped.is_set() or self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def kick(self) -> None:
        """Flush as soon as possible (a backlog is building up), then keep the usual pace."""
        self.wake()
        self._wakeup.set()

    def stop(self, *, final_flush: bool = True, timeout: float = 5.0) -> None:
        """Stop ticking (after one last flush by default); later wakes are ignored."""
        with self._lock:
            thread = self._thread
            self._stopped.set()
        self._wakeup.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if final_flush:
            self._safe_flush()

    def _run(self) -> None:
        while True:
            self._wakeup.wait(self.interval)
            self._wakeup.clear()
            if self._stopped.is_set():
                break
            with self._lock:
                self._pending = False
            busy = self._safe_flush()
            with self._lock:
                if not busy and not self._pending:
                    self._thread = None
                    return
        with self._lock:
            self._thread = None

    def _safe_flush(self) -> bool:
        try:
            return self._flush()
        except Exception:  # noqa: BLE001 - the callback shows its own errors; a bug must not spin
            return False
