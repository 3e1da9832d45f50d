"""BuildRecord: the widget's last build (steps and log) and the previous build's log file."""

from __future__ import annotations

import doctest
from pathlib import Path

from imagebuild_nb.events import BuildStarted, CacheHit, LogLine, StepStarted
from imagebuild_nb.notebook import build_record as build_record_module
from imagebuild_nb.notebook.build_record import BuildRecord


def test_doctests() -> None:
    assert doctest.testmod(build_record_module).failed == 0


def test_the_previous_log_stays_until_the_next_build_and_close_removes_both() -> None:
    record = BuildRecord(tail_lines=3, max_bytes=1024 * 1024)
    assert record.path is None and record.previous_path is None and record.text() == ""
    record.start()
    record.feed(LogLine(text="first build"))
    first = record.path
    record.start()
    record.feed(LogLine(text="second build"))
    assert record.previous_path == first and record.path != first
    assert record.previous is not None and record.previous.read_text().strip() == "first build"
    record.start()  # a third build: the first build's file goes
    assert not Path(first or "").exists()
    paths = [record.path, record.previous_path]
    record.close()
    assert not any(Path(path or "").exists() for path in paths)


def test_feeding_numbers_steps_as_the_steps_view_and_pages_the_file() -> None:
    record = BuildRecord(tail_lines=2, max_bytes=1024 * 1024)
    record.start()
    for event in [BuildStarted(uri="r/x:1", builder="local", dockerfile="FROM b\nRUN a\n"),
                  StepStarted(number=1, total=2, instruction="FROM b"), CacheHit(step=1),
                  StepStarted(number=2, total=2, instruction="RUN a"),
                  *(LogLine(text=f"line {n}", step=2) for n in range(5))]:
        record.feed(event)
    assert record.log.tail() == ["line 3", "line 4"]  # the tail is bounded, the file is not
    assert record.text(0, 3).splitlines() == [
        "── [1/2] FROM b", "   cached: step 1", "── [2/2] RUN a"]
    assert [s.state for s in record.progress.view(now=1.0).steps] == [
        "done", "cached", "running"]  # prepare, the user's two steps
    record.close()


def test_the_note_says_what_the_size_cap_dropped() -> None:
    record = BuildRecord(tail_lines=2, max_bytes=64)
    record.start()
    assert record.note() == ""
    for n in range(20):
        record.feed(LogLine(text=f"a line long enough to fill the file {n}"))
    assert record.note().endswith("lines past the size cap dropped")
    assert int(record.note().split()[0]) > 0
    record.close()
