"""deferred_signals: Ctrl-C and SIGTERM wait for the end of the block, then run their handlers."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from imagebuild_nb.signals import deferred_signals


@pytest.fixture
def terms() -> Iterator[list[int]]:
    """SIGTERM handled by a Python function (as ``imagebuild`` does) that records it."""
    seen: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    yield seen
    signal.signal(signal.SIGTERM, previous)


def test_a_signal_inside_the_block_runs_its_handler_at_the_end(terms: list[int]) -> None:
    handler = signal.getsignal(signal.SIGTERM)
    with deferred_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        assert terms == []
    assert terms == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is handler
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_raises_after_the_block_even_when_the_block_raised() -> None:
    with pytest.raises(KeyboardInterrupt) as caught:
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)
            raise ValueError("the block's own error")
    assert isinstance(caught.value.__context__, ValueError)


def test_nested_blocks_hand_the_signal_to_the_outer_one() -> None:
    reached: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_signals():
            with deferred_signals():
                os.kill(os.getpid(), signal.SIGINT)
            reached.append("after the inner block")
    assert reached == ["after the inner block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ignored_and_default_dispositions_are_left_alone() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with deferred_signals():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
            os.kill(os.getpid(), signal.SIGINT)  # still ignored
    finally:
        signal.signal(signal.SIGINT, previous)


def test_off_the_main_thread_it_changes_nothing() -> None:
    seen: list[object] = []

    def other() -> None:
        with deferred_signals():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]
