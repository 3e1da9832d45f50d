"""``EventLog``: every event of one build, the newest in memory and the rest in a spool file.

A build can print millions of lines; keeping them all as objects costs hundreds of MB. The log
keeps a bounded window of the newest events (by count and by size) and writes older ones, in
pickled batches, to an anonymous temporary file it owns: the file has no name on disk (nothing is
left behind, even after ``kill -9``), only this process can write it, and its space is freed when
the log is closed or collected. Replay from any sequence number reads the file batch by batch,
then the window, in order. (Pickle, not JSON: a build may publish millions of events, and
encoding was most of the cost of publishing one.)

>>> from imagebuild_nb.events import LogLine
>>> log = EventLog(window=3)
>>> for seq in range(1, 6):
...     log.append(LogLine(text=f"line {seq}", seq=seq))
>>> log.count, log.in_memory, [e.text for e in log.replay(after=2)]
(5, 2, ['line 3', 'line 4', 'line 5'])
>>> log.close()
"""

from __future__ import annotations

import os
import pickle
import tempfile
import threading
import weakref
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import BinaryIO, overload

from imagebuild_nb.errors import ImageBuildError
from imagebuild_nb.events import BuildEvent

WINDOW_EVENTS = 1000  # newest events kept as objects; older ones are read back from the spool
WINDOW_BYTES = 1 << 20  # ... and at most about this much text among them
_GONE_HINT = "replay the events (or read .logs) before closing the build"


class EventLog:
    """Numbered events (``seq`` 1, 2, ...) appended in order; thread-safe."""

    def __init__(self, *, window: int = WINDOW_EVENTS, window_bytes: int = WINDOW_BYTES,
                 name: str = "") -> None:
        if window < 1 or window_bytes < 1:
            raise ValueError("an event log needs room for at least one event in memory")
        self._window_limit, self._bytes_limit, self._name = window, window_bytes, name
        self._lock = threading.Lock()
        self._count = 0
        self._window: list[BuildEvent] = []  # seq _first .. _count
        self._weights = array("q")  # each window event's _weight()
        self._weight = 0
        self._first = 1
        self._spool: BinaryIO | None = None
        self._closer: weakref.finalize | None = None  # type: ignore[type-arg]
        self._flushed = 0  # events 1.._flushed are in the spool
        self._size = 0  # bytes in the spool
        # One entry per batch in the spool: its first seq and its offset (16 bytes a batch).
        self._batch_seqs, self._batch_offsets = array("q"), array("q")
        self._closed = False

    @property
    def count(self) -> int:
        """How many events were appended (the last one's ``seq``)."""
        return self._count

    @property
    def in_memory(self) -> int:
        """How many of them are held as objects (the window)."""
        with self._lock:
            return len(self._window)

    def append(self, event: BuildEvent) -> None:
        """Record ``event``, whose ``seq`` must be the next number."""
        with self._lock:
            if event.seq != self._count + 1:
                raise ValueError(f"event {event.seq} appended after {self._count}")
            weight = _weight(event)
            self._window.append(event)
            self._weights.append(weight)
            self._weight += weight
            self._count += 1
            if len(self._window) > self._window_limit or (
                    self._weight > self._bytes_limit and len(self._window) > 1):
                self._spill()

    def replay(self, after: int = 0) -> Iterator[BuildEvent]:
        """The events with ``seq > after`` recorded so far, in order (a snapshot: events
        appended later are not included). Old events are read from the spool lazily."""
        with self._lock:
            after = max(after, 0)
            last_on_disk = self._first - 1  # the spool holds more; the window has those too
            if after < last_on_disk and self._closed:
                raise ImageBuildError(f"events {after + 1}..{last_on_disk} of this build were "
                                      "discarded when it was closed", hint=_GONE_HINT)
            recent = self._window[max(after + 1 - self._first, 0):]
            batches: list[tuple[int, int]] = []  # (offset, length) of the batches to read
            if after < last_on_disk:  # from the batch holding after + 1 to the one of last
                first = bisect_right(self._batch_seqs, after + 1) - 1
                stop = bisect_right(self._batch_seqs, last_on_disk)
                ends = [*self._batch_offsets[first + 1:], self._size]
                batches = [(offset, end - offset) for offset, end
                           in zip(self._batch_offsets[first:stop], ends, strict=False)]
            spool = self._spool
        return _replay(spool, batches, after, last_on_disk, recent)

    def snapshot(self) -> EventSnapshot:
        """The events so far as a read-only sequence that reads the spool only when used."""
        return EventSnapshot(self, self._count)

    def close(self) -> None:
        """Free the spool; events not in the window are gone (replaying them raises)."""
        with self._lock:
            self._closed = True
            closer, self._closer, self._spool = self._closer, None, None
        if closer is not None:
            closer()

    # -- the spool ----------------------------------------------------------------------------

    def _spill(self) -> None:
        """Write the window's unwritten events to the spool, then drop the oldest half."""
        if not self._closed:
            self._write(self._window[self._flushed + 1 - self._first:])
        keep_count = self._window_limit // 2
        drop, kept_weight = 0, self._weight
        while drop < len(self._window) - 1 and (
                len(self._window) - drop > keep_count or kept_weight > self._bytes_limit // 2):
            kept_weight -= self._weights[drop]
            drop += 1
        del self._window[:drop], self._weights[:drop]
        self._weight, self._first = kept_weight, self._first + drop

    def _write(self, events: list[BuildEvent]) -> None:
        if not events:
            return
        if self._spool is None:
            self._spool = tempfile.TemporaryFile(prefix=f"imagebuild-events-{self._name}-")
            # Collected without close(): still freed, and without a ResourceWarning.
            self._closer = weakref.finalize(self, self._spool.close)
        batch = pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL)
        self._spool.seek(0, os.SEEK_END)
        self._spool.write(batch)
        self._spool.flush()
        self._batch_seqs.append(events[0].seq)
        self._batch_offsets.append(self._size)
        self._size += len(batch)
        self._flushed = events[-1].seq


class EventSnapshot(Sequence[BuildEvent]):
    """Events 1..n of a log: ``len``, indexing, slicing and iteration, each reading only what it
    needs (so ``for event in build.events`` stays bounded however long the build was).

    >>> from imagebuild_nb.events import LogLine
    >>> log = EventLog(window=2)
    >>> for seq in range(1, 6):
    ...     log.append(LogLine(text=f"line {seq}", seq=seq))
    >>> events = log.snapshot()
    >>> log.append(LogLine(text="later", seq=6))
    >>> len(events), events[0].text, events[-1].text, [e.seq for e in events[1:3]]
    (5, 'line 1', 'line 5', [2, 3])
    >>> log.close()
    """

    def __init__(self, log: EventLog, count: int) -> None:
        self._log, self._count = log, count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[BuildEvent]:
        return islice(self._log.replay(), self._count)

    @overload
    def __getitem__(self, index: int) -> BuildEvent: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[BuildEvent, ...]: ...

    def __getitem__(self, index: int | slice) -> BuildEvent | tuple[BuildEvent, ...]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._count)
            if step != 1 or start >= stop:
                return tuple(self[i] for i in range(start, stop, step))
            return tuple(islice(self._log.replay(after=start), stop - start))
        position = index + self._count if index < 0 else index
        if not 0 <= position < self._count:
            raise IndexError(f"event index {index} out of range ({self._count} events)")
        return next(self._log.replay(after=position))

    def __repr__(self) -> str:
        return f"<{self._count} build events>"


def _replay(spool: BinaryIO | None, batches: list[tuple[int, int]], after: int, last_on_disk: int,
            recent: list[BuildEvent]) -> Iterator[BuildEvent]:
    """Events ``after < seq <= last_on_disk`` from the spool's batches, then ``recent``."""
    for offset, length in batches:
        try:
            # pread: the writer appends concurrently, and the file position is the writer's.
            events: list[BuildEvent] = pickle.loads(os.pread(spool.fileno(), length, offset))  # type: ignore[union-attr]
        except (AttributeError, OSError, ValueError) as error:  # closed meanwhile
            raise ImageBuildError("the build's spooled events are gone (it was closed)",
                                  hint=_GONE_HINT) from error
        for event in events:
            if after < event.seq <= last_on_disk:
                yield event
    yield from recent


def _weight(event: BuildEvent) -> int:
    """About how much memory an event's text takes (enough to bound the window)."""
    values = event.__dict__
    size = 128 + len(values.get("text") or "") + len(values.get("message") or "")
    lines = values.get("lines")
    return size + sum(len(line) + 64 for line in lines) if lines else size
