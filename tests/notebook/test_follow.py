"""The foreground follower batches log output and caps what stays in the cell."""

from __future__ import annotations

import io

from imagebuild_nb.events import BuildFinished, BuildStarted, CacheHit, LogLine, StepStarted
from imagebuild_nb.notebook.follow import FollowPrinter


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_lines_are_written_in_batches_not_one_by_one():
    out = CountingStream()
    printer = FollowPrinter(out=out, flush_interval=3600, max_lines=100_000)
    printer.follow([BuildStarted(uri="x", builder="local", driver="docker-api")]
                   + [LogLine(text=f"line {i}") for i in range(10_000)])
    assert out.writes == 1
    assert out.getvalue().count("\n") == 10_001


def test_idle_ticks_flush_pending_output():
    out = CountingStream()
    printer = FollowPrinter(out=out, flush_interval=0.0)
    printer.follow([LogLine(text="a"), None, LogLine(text="b"), None])
    assert out.getvalue() == "a\nb\n"


def test_cap_keeps_the_cell_bounded_and_says_where_the_rest_is():
    out = io.StringIO()
    printer = FollowPrinter(out=out, max_lines=50, flush_interval=3600)
    printer.follow(LogLine(text=f"line {i}") for i in range(100_000))
    printer.close("; the full log: %imagebuild logs b1")
    lines = out.getvalue().splitlines()
    assert len(lines) == 51
    assert lines[-1] == "... 99950 more log lines not shown here; the full log: %imagebuild logs b1"


def test_steps_and_progress_line():
    out, progress = io.StringIO(), []
    printer = FollowPrinter(out=out, show_progress=progress.append)
    printer.follow([StepStarted(number=2, total=5, instruction="RUN make"),
                    CacheHit(step=3, instruction="COPY . /app"),
                    BuildFinished(uri="x", digest="sha256:abc")])
    assert "[2/5] RUN make" in out.getvalue()
    assert "[2/5] RUN make\n    (cached)\n" in out.getvalue()
    assert progress[0].startswith("step 2/5") and progress[-1].startswith("done")
