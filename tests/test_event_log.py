"""EventLog: a bounded window in memory, the rest in a spool file, replay from any seq (fast)."""

from __future__ import annotations

import gc

import pytest

from imagebuild_nb.errors import ImageBuildError
from imagebuild_nb.event_log import EventLog
from imagebuild_nb.events import BuildFailed, LogLine, StepStarted


def _filled(count: int, **limits: int) -> EventLog:
    log = EventLog(**limits)
    for seq in range(1, count + 1):
        log.append(LogLine(text=f"line {seq}", step=seq % 3 or None, seq=seq))
    return log


def test_replay_from_every_sequence_number_across_batches_and_the_window() -> None:
    log = _filled(100, window=7)
    assert log.in_memory <= 7 and log._spool is not None
    for after in range(0, 103):
        replayed = list(log.replay(after=after))
        assert [e.seq for e in replayed] == list(range(after + 1, 101)), after
        assert all(e == LogLine(text=f"line {e.seq}", step=e.seq % 3 or None, seq=e.seq,
                                time=e.time) for e in replayed)
    log.close()


def test_a_replay_is_a_snapshot_and_events_keep_their_types_and_fields() -> None:
    log = EventLog(window=2)
    events = [StepStarted(number=1, total=None, instruction="RUN x", seq=1),
              BuildFailed(message="boom", step="step 1", exit_code=3, lines=("a", "b"), seq=2),
              LogLine(text="é\n\"quoted\"", stream="stderr", seq=3)]
    log.append(events[0])
    log.append(events[1])
    replay = log.replay()
    log.append(events[2])
    assert list(replay) == events[:2] and list(log.replay()) == events
    log.close()


def test_huge_lines_are_bounded_by_size_not_only_by_count() -> None:
    log = EventLog(window=1000, window_bytes=4 << 20)
    for seq in range(1, 41):
        log.append(LogLine(text=str(seq % 10) * (1 << 20), seq=seq))  # 40 lines of 1 MiB
    assert log.in_memory <= 5
    assert [len(e.text) for e in log.replay()] == [1 << 20] * 40
    assert [e.text[0] for e in log.replay(after=38)] == ["9", "0"]
    log.close()


def test_a_short_log_stays_in_memory_without_a_file() -> None:
    log = _filled(50)
    assert log._spool is None and log.in_memory == 50 and len(list(log.replay())) == 50


def test_events_must_come_in_order() -> None:
    log = _filled(3)
    with pytest.raises(ValueError, match="event 5 appended after 3"):
        log.append(LogLine(text="x", seq=5))


def test_closing_frees_the_spool_and_says_what_is_gone() -> None:
    log = _filled(100, window=10)
    spool = log._spool
    assert spool is not None
    in_progress = log.replay()
    assert next(in_progress).seq == 1
    log.close()
    assert spool.closed
    with pytest.raises(ImageBuildError, match="gone") as caught:
        list(in_progress)  # a replay that was reading the spool when it closed
    assert "before closing" in (caught.value.hint or "")
    with pytest.raises(ImageBuildError, match="discarded when it was closed"):
        log.replay()
    assert [e.seq for e in log.replay(after=99)] == [100]
    collected = _filled(100, window=10)
    spool = collected._spool
    del collected
    gc.collect()
    assert spool is not None and spool.closed
