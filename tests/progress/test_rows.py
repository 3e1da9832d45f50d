"""Rows: one step's state, time and bounded log tail; lanes of rows per platform."""

from __future__ import annotations

import doctest

from imagebuild_nb.progress import rows as rows_module
from imagebuild_nb.progress.rows import LINE_CHARS, TAIL_LINES, Lane, Row, row_label


def test_doctests() -> None:
    assert doctest.testmod(rows_module).failed == 0


def test_a_row_keeps_a_bounded_tail_of_cut_lines() -> None:
    row = Row("", "RUN make", number=1)
    for n in range(TAIL_LINES + 5):
        row.add(f"line {n}")
    row.add("x" * (LINE_CHARS + 50))
    assert row.lines == TAIL_LINES + 6
    assert len(row.tail) == TAIL_LINES
    assert row.tail[-1] == "x" * LINE_CHARS + " …"


def test_the_prepare_row_sums_its_segments() -> None:
    row = Row("prepare", "prepare")
    row.begin(0.0)
    row.close(1.0)
    row.state = "queued"  # the next internal step runs it again
    row.begin(5.0)
    assert row.duration(now=7.5) == 3.5
    assert row_label(row, 4) == "prepare"


def test_ending_a_lane_closes_the_running_row_and_skips_the_queued_ones() -> None:
    lane = Lane()
    running, queued = Row("", "RUN a", number=1), Row("", "RUN b", number=2)
    lane.steps = {1: running, 2: queued}
    running.begin(1.0)
    lane.end(4.0, "failed")
    assert (running.state, queued.state, lane.prepare.state) == ("failed", "skipped", "skipped")
    assert lane.ended == 4.0 and lane.total() is None
