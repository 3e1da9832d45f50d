"""The widget's log path: clean each line, keep a bounded tail for the view, the full log on disk.

A build can print hundreds of thousands of lines; the kernel must not keep them all in memory
and the browser must not receive them all. :class:`LogBuffer` keeps the last ``tail_lines``
cleaned lines (a ring buffer) and appends every final line to a :class:`LogStore`, a temp file
capped at ``max_bytes`` that can be paged through later.

>>> buffer = LogBuffer(tail_lines=2, store=None)
>>> buffer.add("\\x1b[32mok\\x1b[0m")
>>> buffer.add("Downloading 10%\\rDownloading 100%")
>>> buffer.add("done")
>>> buffer.tail()
['Downloading 100%', 'done']
>>> buffer.lines_total
3
"""

from __future__ import annotations

import os
import tempfile
import threading
import weakref
from collections import deque
from pathlib import Path
from typing import IO

from imagebuild_nb.events import (
    BuildEvent,
    CacheHit,
    LogLine,
    OutputClipped,
    StepStarted,
    is_terminal,
)
from imagebuild_nb.terminal_text import collapse_cr, strip_ansi

_INDEX_EVERY = 1000


class LogStore:
    """The full log as a temp file, capped at ``max_bytes``; thread-safe; pages by line number.

    >>> store = LogStore(max_bytes=1000)
    >>> for n in range(3):
    ...     store.append(f"line {n}")
    >>> store.read(1, 5)
    ['line 1', 'line 2']
    >>> store.close()
    """

    def __init__(self, *, max_bytes: int = 64 * 1024 * 1024, directory: str | None = None) -> None:
        fd, name = tempfile.mkstemp(prefix="imagebuild-", suffix=".log", dir=directory)
        self.path = Path(name)
        self.max_bytes = max_bytes
        self.lines = 0
        self.dropped = 0
        self._file = os.fdopen(fd, "w+", encoding="utf-8", errors="replace", newline="\n")
        self._bytes = 0
        self._offsets: list[int] = []  # byte offset of every _INDEX_EVERY-th line
        self._lock = threading.Lock()
        # A widget nobody closes (the usual end of a kernel) must not leave its log in /tmp.
        self._remove_at_exit = weakref.finalize(self, _discard, self._file, name)

    @property
    def truncated(self) -> bool:
        return self.dropped > 0

    def append(self, line: str) -> None:
        data = line + "\n"
        size = len(data.encode("utf-8", "replace"))
        with self._lock:
            if self._file.closed:
                return
            if self._bytes + size > self.max_bytes:
                self.dropped += 1
                return
            if self.lines % _INDEX_EVERY == 0:
                self._offsets.append(self._bytes)
            self._file.write(data)
            self._bytes += size
            self.lines += 1

    def read(self, start: int, count: int) -> list[str]:
        """Lines ``start .. start+count-1`` (0-based); fewer at the end of the log."""
        with self._lock:
            if self._file.closed or start >= self.lines or count <= 0:
                return []
            start = max(0, start)
            self._file.flush()
            block = start // _INDEX_EVERY
            with open(self.path, "rb") as reader:
                reader.seek(self._offsets[block])
                for _ in range(start - block * _INDEX_EVERY):
                    reader.readline()
                out: list[str] = []
                while len(out) < count:
                    raw = reader.readline()
                    if not raw:
                        break
                    out.append(raw.decode("utf-8", "replace").rstrip("\n"))
            return out

    def search(self, query: str, limit: int = 500) -> list[tuple[int, str]]:
        """(line number from 1, line) of the first ``limit`` lines holding ``query`` (any case)."""
        needle = query.lower()
        found: list[tuple[int, str]] = []
        with self._lock:
            if self._file.closed or not needle:
                return found
            self._file.flush()
            with open(self.path, encoding="utf-8", errors="replace") as reader:
                for number, line in enumerate(reader, start=1):
                    if needle in line.lower():
                        found.append((number, line.rstrip("\n")))
                        if len(found) >= limit:
                            break
        return found

    def read_text(self) -> str:
        with self._lock:
            if self._file.closed:
                return ""
            self._file.flush()
            return self.path.read_text(encoding="utf-8", errors="replace")

    def close(self, *, remove: bool = True) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()
            if remove:
                self._remove_at_exit()


def _discard(file: IO[str], path: str) -> None:
    file.close()
    Path(path).unlink(missing_ok=True)


class LogBuffer:
    """Cleans incoming log text, keeps the last ``tail_lines`` lines and feeds the store.

    A text ending in ``\\r`` (a progress line with no newline yet) is provisional: the next
    line replaces it in the tail, and only final lines reach the store. Not thread-safe: the
    widget's flusher is its only caller.
    """

    def __init__(
        self,
        *,
        tail_lines: int = 120,
        max_line_chars: int = 400,
        store: LogStore | None = None,
    ) -> None:
        if tail_lines < 1:
            raise ValueError("tail_lines must be at least 1")
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self.max_line_chars = max_line_chars
        self.store = store
        self.lines_total = 0
        self._provisional: str | None = None  # full text of a trailing provisional line
        self.version = 0  # bumped on every change, so the flusher can skip unchanged renders

    def add(self, text: str) -> None:
        """Add one log record (usually one line; may hold ``\\n`` and ``\\r``)."""
        text = strip_ansi(text)
        if "\r\n" in text:
            text = text.replace("\r\n", "\n")
        parts = text.split("\n")
        if len(parts) > 1 and parts[-1] == "":
            parts.pop()  # a trailing newline ends the record, it is not an empty line
        for part in parts:
            self._put(collapse_cr(part), provisional=part.endswith("\r"))

    def add_event(self, event: BuildEvent) -> None:
        """Log what a build event says: its text, or a marker line for steps and notices."""
        if isinstance(event, LogLine):
            self.add(event.text)
        elif isinstance(event, StepStarted):
            total = f"/{event.total}" if event.total else ""
            self.mark(f"── step {event.number}{total}: {event.instruction}")
        elif isinstance(event, CacheHit):
            self.mark(f"   cached: step {event.step} {event.instruction}".rstrip())
        elif isinstance(event, OutputClipped):
            self.mark(f"[output clipped by the builder: {event.message}]")
        elif is_terminal(event):
            self.finish()

    def mark(self, text: str) -> None:
        """Add a line written by the widget itself (step headers, notices); also stored."""
        self._put(text, provisional=False)

    def finish(self) -> None:
        """Commit a trailing provisional line (the stream ended on a ``\\r``)."""
        if self._provisional is not None:
            self._commit(self._provisional)
            self._provisional = None

    def tail(self) -> list[str]:
        return list(self._tail)

    def clear(self) -> None:
        self._tail.clear()
        self.lines_total = 0
        self._provisional = None
        self.version += 1

    def _put(self, line: str, *, provisional: bool) -> None:
        shown = line
        if len(shown) > self.max_line_chars:
            shown = shown[: self.max_line_chars] + f" … [+{len(line) - self.max_line_chars} chars]"
        if self._provisional is not None and self._tail:
            self._tail[-1] = shown
        else:
            self._tail.append(shown)
        if provisional:
            self._provisional = line
        else:
            self._provisional = None
            self._commit(line)
        self.version += 1

    def _commit(self, line: str) -> None:
        self.lines_total += 1
        if self.store is not None:
            self.store.append(line)
