"""ImageBuildWidget headless: one comm message per flush, bounded memory, the pager.

Outgoing comm messages are recorded by replacing ``comm.create_comm``, as ipywidgets' own
tests do. Most tests use manual flushing (``flush_interval=None``) so every flush is explicit.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any

from imagebuild_nb.events import (
    BuildFinished,
    LogLine,
    StepStarted,
)
from imagebuild_nb.notebook.logpager import DOWNLOAD_INLINE_BYTES, LogPager
from imagebuild_nb.notebook.logview import LogStore
from tests.support.widgets import DIGEST, URI, ManualBuilder, engine_with, scripted, updates


def test_one_comm_message_per_flush_whatever_the_log_volume(make_widget: Any,
                                                            sent: list[Any]) -> None:
    builder = ManualBuilder()
    widget = make_widget(engine_with(builder))
    sent.clear()
    widget.build_button.click()
    assert builder.started.wait(5)
    time.sleep(0.1)
    widget.flush()  # the transition to "building" (panel + disabled controls)
    transition = updates(sent)
    assert 1 < len(transition) <= 9, transition
    for burst in (10, 5_000, 50_000):
        sent.clear()
        for n in range(burst):
            builder.emit(LogLine(text=f"line {n}"))
        builder.emit(StepStarted(number=2, total=3, instruction="RUN x"))
        _drained(builder, widget)
        widget.flush()
        messages = updates(sent)
        assert len(messages) == 1, messages
        comm_id, data = messages[0]
        assert comm_id == widget.panel.comm.comm_id and set(data["state"]) == {"value"}
        assert f"line {burst - 1}" in data["state"]["value"]
        assert len(data["state"]["value"]) < 50_000
    sent.clear()
    widget.flush()
    widget.flush()
    assert len(updates(sent)) <= 1  # nothing new: at most the elapsed-time tick
    builder.emit(BuildFinished(uri=URI, digest=DIGEST))
    assert widget.wait_idle(5) and widget.status == "built"


def test_flusher_thread_sends_a_few_messages_per_second(make_widget: Any,
                                                        sent: list[Any]) -> None:
    lines = [LogLine(text=f"line {n}") for n in range(3000)]
    widget = make_widget(scripted(*lines, delay=0.0003), flush_interval=0.1)
    started = time.monotonic()
    widget.build_button.click()
    assert widget.wait_idle(30)
    elapsed = time.monotonic() - started
    panel = [m for m in updates(sent) if m[0] == widget.panel.comm.comm_id]
    assert elapsed > 0.5  # the script really streamed for a while
    assert len(panel) <= elapsed / 0.1 + 3, (len(panel), elapsed)
    assert widget.state.status == "built" and "line 2999" in widget.panel.value


def test_memory_stays_bounded_for_a_100k_line_log(make_widget: Any) -> None:
    builder = ManualBuilder()
    widget = make_widget(engine_with(builder), tail_lines=100)
    widget.build_button.click()
    assert builder.started.wait(5)
    for n in range(100_000):
        builder.emit(LogLine(text=f"\x1b[36mline {n}\x1b[0m"))
        if n % 20_000 == 0:
            widget.flush()
    builder.emit(BuildFinished(uri=URI, digest=DIGEST))
    assert widget.wait_idle(5)
    assert len(widget._log.tail()) == 100
    assert widget._log.lines_total == 100_000
    assert "100000 log lines, last 100 shown" in widget.panel.value
    assert len(widget.panel.value) < 40_000
    assert widget.full_log(99_999, 1) == "line 99999"


def test_full_log_pager_opens_on_the_last_page(make_widget: Any) -> None:
    widget = make_widget(scripted(*(LogLine(text=f"l{n}") for n in range(1200))))
    widget.build_button.click()
    assert widget.wait_idle(5)
    widget.full_log_button.value = True
    widget.flush()
    pager = widget.log_pager
    assert pager.layout.display is None and pager.page_number.value == 3
    assert "l1199" in pager.page_view.value
    pager.page_number.value = 1
    widget.flush()
    assert "l0\n" in pager.page_view.value
    widget.full_log_button.value = False
    widget.flush()
    assert pager.layout.display == "none"
    assert widget.log_path and widget.full_log().count("\n") == 1200


def test_a_fast_producer_waits_for_the_flusher_instead_of_filling_memory(make_widget: Any,
                                                                          sent: list[Any]) -> None:
    builder = ManualBuilder()
    widget = make_widget(engine_with(builder), flush_interval=0.05, queue_limit=1000)
    widget.build_button.click()
    assert builder.started.wait(5)
    peak = 0
    for n in range(50_000):  # as fast as the build thread can go: the bounded queue pushes back
        builder.emit(LogLine(text=f"line {n}"))
        if n % 500 == 0:
            peak = max(peak, widget._queue.qsize())
    builder.emit(BuildFinished(uri=URI, digest=DIGEST))
    assert widget.wait_idle(10)
    assert peak <= 1000 and widget._dropped == 0
    assert widget._log.lines_total == 50_000 and "line 49999" in widget.panel.value


def _drained(builder: ManualBuilder, widget: Any) -> None:
    """Wait until the build thread has handed every emitted event to the widget."""
    deadline = time.monotonic() + 30
    while not builder.events.empty() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)


def test_full_log_pager_numbers_lines_and_searches_the_whole_log(make_widget: Any) -> None:
    widget = make_widget(scripted(*(LogLine(text=f"l{n}" + (" needle" if n % 400 == 7 else ""))
                                    for n in range(1200))))
    widget.build_button.click()
    assert widget.wait_idle(5)
    widget.full_log_button.value = True
    widget.flush()
    pager = widget.log_pager
    assert "1001 │ l1000\n" in pager.page_view.value  # the last page, numbered
    pager.search.value = "NEEDLE"
    widget.flush()
    view = pager.page_view.value
    assert "3 lines with &#x27;NEEDLE&#x27; of 1200" in view
    assert "  8 │ l7 needle\n408 │ l407 needle\n808 │ l807 needle</pre>" in view


def test_full_log_pager_downloads_the_whole_log_as_a_file(make_widget: Any) -> None:
    widget = make_widget(scripted(*(LogLine(text=f"l{n} é") for n in range(1200))))
    widget.build_button.click()
    assert widget.wait_idle(5)
    assert widget.log_pager.download.value == ""  # nothing read before the pager opens
    widget.full_log_button.value = True
    widget.flush()
    link = widget.log_pager.download.value
    match = re.search(r'<a download="([^"]+)" href="data:text/plain;charset=utf-8;base64,([^"]+)"',
                      link)
    assert match, link
    assert match.group(1).endswith(".log") and "/" not in match.group(1)
    assert base64.b64decode(match.group(2)).decode() == widget.full_log()


def test_a_log_too_big_to_inline_is_named_not_inlined(tmp_path: Any) -> None:
    store = LogStore(max_bytes=64 * 1024 * 1024)
    try:
        for n in range(20_000):
            store.append(f"line {n} " + "x" * 60)
        pager = LogPager(inline_limit=256 * 1024)
        pager.show(store, None, name="big")
        assert "data:" not in pager.download.value and len(pager.download.value) < 2000
        assert str(store.path) in pager.download.value and "w.log_path" in pager.download.value
        assert DOWNLOAD_INLINE_BYTES <= 8 * 1024 * 1024  # the default bound
    finally:
        store.close()
