"""The widget's log path: ANSI stripping, carriage-return collapse, ring buffer, capped store."""

from __future__ import annotations

import pytest

from imagebuild_nb.events import BuildFinished, CacheHit, LogLine, OutputClipped, StepStarted
from imagebuild_nb.notebook.logpager import PAGE_LINES, LogPager
from imagebuild_nb.notebook.logview import LogBuffer, LogStore
from imagebuild_nb.terminal_text import collapse_cr, strip_ansi


@pytest.fixture
def store() -> LogStore:
    store = LogStore()
    yield store
    store.close()


def test_strip_ansi_removes_colours_cursor_moves_titles_and_stray_controls() -> None:
    raw = ("\x1b[1;31mERROR\x1b[0m \x1b[2K\x1b[1Gdone "
           "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \x07\x00!")
    assert strip_ansi(raw) == "ERROR done link !"
    assert strip_ansi("tab\tkept") == "tab\tkept"


@pytest.mark.parametrize(("raw", "shown"), [
    ("10%\r50%\r100%", "100%"),
    ("100%\r", "100%"),
    ("\rfresh", "fresh"),
    ("plain", "plain"),
    ("\r\r", ""),
])
def test_collapse_cr_keeps_what_a_terminal_shows(raw: str, shown: str) -> None:
    assert collapse_cr(raw) == shown


def test_progress_lines_replace_each_other_and_only_the_final_one_is_stored(
        store: LogStore) -> None:
    buffer = LogBuffer(tail_lines=10, store=store)
    buffer.add("Collecting six")
    for percent in range(0, 101, 10):
        buffer.add(f"\x1b[32mDownloading {percent}%\x1b[0m\r")
    buffer.add("Installed six")
    assert buffer.tail() == ["Collecting six", "Installed six"]
    assert store.read(0, 10) == ["Collecting six", "Installed six"]
    assert buffer.lines_total == 2


def test_a_trailing_progress_line_is_committed_when_the_stream_ends(store: LogStore) -> None:
    buffer = LogBuffer(store=store)
    buffer.add("50%\r")
    buffer.add("100%\r")
    assert buffer.tail() == ["100%"] and store.lines == 0
    buffer.finish()
    assert store.read(0, 5) == ["100%"]


def test_multi_line_records_and_crlf_split_into_lines() -> None:
    buffer = LogBuffer()
    buffer.add("one\r\ntwo\nthree\n")
    assert buffer.tail() == ["one", "two", "three"]


def test_ring_buffer_keeps_only_the_tail_however_long_the_log(store: LogStore) -> None:
    buffer = LogBuffer(tail_lines=50, store=store)
    for n in range(100_000):
        buffer.add(f"line {n}")
    assert buffer.tail() == [f"line {n}" for n in range(99_950, 100_000)]
    assert buffer.lines_total == 100_000 == store.lines
    assert store.read(99_998, 10) == ["line 99998", "line 99999"]
    assert store.read(1234, 2) == ["line 1234", "line 1235"]


def test_long_lines_are_clipped_in_the_view_but_whole_in_the_store(store: LogStore) -> None:
    buffer = LogBuffer(max_line_chars=20, store=store)
    buffer.add("x" * 100)
    assert buffer.tail() == ["x" * 20 + " … [+80 chars]"]
    assert store.read(0, 1) == ["x" * 100]


def test_store_is_capped_and_counts_what_it_dropped() -> None:
    store = LogStore(max_bytes=100)
    try:
        for n in range(50):
            store.append(f"line {n:03d}")  # 9 bytes each
        assert store.lines == 11 and store.dropped == 39 and store.truncated
        assert store.path.stat().st_size <= 100
    finally:
        store.close()
    assert not store.path.exists()


def test_events_become_log_lines_and_markers() -> None:
    buffer = LogBuffer()
    for event in (StepStarted(number=1, total=2, instruction="FROM base"),
                  CacheHit(step=1, instruction="FROM base"),
                  LogLine(text="hello"),
                  OutputClipped(message="log limit reached"),
                  LogLine(text="99%\r"),
                  BuildFinished(uri="r/x:1")):
        buffer.add_event(event)
    assert buffer.tail() == ["── step 1/2: FROM base", "   cached: step 1 FROM base", "hello",
                             "[output clipped by the builder: log limit reached]", "99%"]
    assert buffer.lines_total == 5


def test_pager_shows_pages_of_the_store(store: LogStore) -> None:
    for n in range(PAGE_LINES * 2 + 7):
        store.append(f"line {n}")
    pager = LogPager()
    try:
        pager.show(store, None)
        assert pager.page_number.max == 3 and pager.page_number.value == 3
        assert "line 1006" in pager.page_view.value and "line 999<" not in pager.page_view.value
        pager.show(store, 1)
        assert "lines 1-500 of 1007" in pager.page_view.value
        pager.show(store, 99)
        assert pager.page_number.value == 3
        pager.hide()
        assert pager.layout.display == "none"
    finally:
        pager.close()


def test_a_store_nobody_closes_leaves_no_file_when_collected() -> None:
    # A widget is rarely closed: its log file must go with it (and with the kernel), not stay
    # in /tmp.
    import gc

    from imagebuild_nb.notebook.logview import LogStore

    store = LogStore()
    path = store.path
    store.append("a line")
    assert path.exists()
    del store
    gc.collect()
    assert not path.exists()
