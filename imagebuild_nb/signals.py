"""Ctrl-C at a safe point: signals that arrive inside :func:`deferred_signals` run their handler
when the block ends.

Python runs a signal's handler between two bytecodes of the main thread, and the default SIGINT
handler raises KeyboardInterrupt right there. Inside ``threading.Condition.wait`` that can be
after the wait released its lock and before the ``try`` that takes it back: the ``with`` around
the wait then fails with ``RuntimeError: cannot release un-acquired lock`` instead of the
KeyboardInterrupt (``imagebuild build`` exited as an internal error instead of cancelling,
1 Ctrl-C in about 100). The builds' handles wrap their waits on the main thread in this block.

Handlers that are Python functions (the default KeyboardInterrupt one, the command's SIGTERM)
are deferred; ``SIG_DFL`` and ``SIG_IGN`` are left as they are. Blocks nest: an inner block
hands what it caught to the outer one, which runs the handler when it ends.

>>> import os, signal
>>> try:
...     with deferred_signals():
...         os.kill(os.getpid(), signal.SIGINT)
...         print("the block goes on")
... except KeyboardInterrupt:
...     print("then Ctrl-C")
the block goes on
then Ctrl-C
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

DEFERRED = (signal.SIGINT, signal.SIGTERM)

Handler = Callable[[int, FrameType | None], Any]


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM (where a Python handler takes them) until the block ends, then
    run their handlers in arrival order. Off the main thread (where Python runs no handlers)
    it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Handler] = {}
    arrived: list[tuple[int, FrameType | None]] = []

    def record(signum: int, frame: FrameType | None) -> None:
        arrived.append((signum, frame))

    try:
        for signum in DEFERRED:
            handler = signal.getsignal(signum)
            if callable(handler):
                previous[signum] = handler
                signal.signal(signum, record)
        yield
    finally:
        # Blocked while the handlers go back: one arriving halfway would leave the other ours.
        with _blocked(previous):
            for number, handler in previous.items():
                signal.signal(number, handler)
        for number, frame in arrived:
            previous[number](number, frame)


@contextmanager
def _blocked(signums: Iterable[int]) -> Iterator[None]:
    """The kernel holds ``signums`` back inside the block (delivered when it ends)."""
    wanted = set(signums)
    if not wanted or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


__all__ = ["deferred_signals"]
