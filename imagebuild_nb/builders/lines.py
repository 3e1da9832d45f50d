"""Raw build output into lines a person can read: bounded in length, free of terminal codes.

Both drivers read output in chunks that do not follow line boundaries (the Engine API's
``stream`` records, the docker CLI's pipe). :class:`LineSplitter` joins them into lines without
ever holding more than ``limit`` characters of one line: a longer line comes out at once, cut at
the limit and marked, and the rest of it is counted and dropped (a 10 MB line of output costs no
memory and shows up as soon as its first part arrives). :func:`readable` is the form of a line
shown in a failure's tail: without ANSI codes, and with only what a terminal would show after a
carriage return.

>>> splitter = LineSplitter(limit=5)
>>> [(p.text, p.cut) for p in splitter.feed("ab\\ncdefgh")]
[('ab', False), ('cdefg', True)]
>>> [(p.text, p.cut) for p in splitter.feed("ij\\nk")], [p.text for p in splitter.flush()]
([], ['k'])
>>> splitter.dropped
3
>>> readable("\\x1b[91mdownloading 10%\\rdownloading 100%\\x1b[0m")
'downloading 100%'
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from imagebuild_nb.terminal_text import strip_ansi

# Longer lines are cut: plenty for any message meant to be read, small enough for every view.
MAX_LINE = 16 * 1024


@dataclass(frozen=True)
class Piece:
    """One line of output; ``cut`` when it went on past the limit (the rest was dropped)."""

    text: str
    cut: bool = False


class LineSplitter:
    """Chunks in, lines out, holding at most ``limit`` characters of the current line."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = limit
        self.dropped = 0  # characters dropped from cut lines, over the whole stream
        self._parts: list[str] = []
        self._size = 0
        self._cutting = False  # inside a line whose head already came out

    def feed(self, chunk: str) -> Iterator[Piece]:
        start = 0
        while start < len(chunk):
            end = chunk.find("\n", start)
            stop = len(chunk) if end < 0 else end
            yield from self._add(chunk[start:stop])
            if end < 0:
                return
            yield from self._end_line()
            start = end + 1

    def flush(self) -> Iterator[Piece]:
        """The last line when the output did not end with a newline."""
        if self._parts:
            yield from self._end_line()
        self._cutting = False

    def _add(self, text: str) -> Iterator[Piece]:
        if self._cutting:
            self.dropped += len(text)
            return
        room = self.limit - self._size
        if len(text) <= room:
            if text:
                self._parts.append(text)
                self._size += len(text)
            return
        self._parts.append(text[:room])
        self.dropped += len(text) - room
        line = "".join(self._parts).rstrip("\r")
        self._parts, self._size, self._cutting = [], 0, True
        yield Piece(line, cut=True)

    def _end_line(self) -> Iterator[Piece]:
        if self._cutting:
            self._cutting = False
            return
        line = "".join(self._parts).rstrip("\r")
        self._parts, self._size = [], 0
        yield Piece(line)


def readable(line: str) -> str:
    """A line as a terminal would show it: no ANSI codes, the text after the last ``\\r``."""
    line = strip_ansi(line)
    if "\r" in line:
        shown = [part for part in line.split("\r") if part.strip()]
        line = shown[-1] if shown else ""
    return line.rstrip()


def cut_notice(limit: int = MAX_LINE) -> str:
    return f"a line of output longer than {limit} characters was cut; the rest of it is not shown"
