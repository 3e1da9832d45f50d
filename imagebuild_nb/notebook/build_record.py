"""What the widget keeps of its builds: the last build's steps and log, and the log before it.

A :class:`BuildRecord` folds the events of the widget's last build into its progress model (the
steps view) and its log (a bounded tail in memory, the whole log in a capped file, with step
headers numbered as the steps view numbers them). The previous build's log file stays readable
until the next build starts; both files go when the record closes. Not thread-safe: the widget's
flush is its only writer.

>>> from imagebuild_nb.events import BuildStarted, LogLine, StepStarted
>>> record = BuildRecord(tail_lines=5, max_bytes=1024)
>>> record.start()
>>> dockerfile = 'FROM b\\nLABEL "io.imagebuild-nb.spec-hash"="abc"\\nRUN make\\n'
>>> for event in [BuildStarted(uri="r/x:1", builder="local", dockerfile=dockerfile),
...               StepStarted(number=3, total=3, instruction="RUN make"),
...               LogLine(text="compiling", step=3)]:
...     record.feed(event)
>>> record.log.tail()  # the builder's step 3/3 is the user's 2/2 (the label is the engine's)
['── [2/2] RUN make', 'compiling']
>>> record.start()  # the next build: the last log is now the previous one
>>> record.text(), record.previous is not None
('', True)
>>> record.close()
"""

from __future__ import annotations

from imagebuild_nb.events import BuildEvent, StepStarted
from imagebuild_nb.notebook.logview import LogBuffer, LogStore
from imagebuild_nb.progress.model import Progress
from imagebuild_nb.progress.plan import shown


class BuildRecord:
    """The last build's :class:`Progress` and :class:`LogBuffer`, the previous build's log file."""

    def __init__(self, *, tail_lines: int, max_bytes: int) -> None:
        self.log = LogBuffer(tail_lines=tail_lines)
        self.progress = Progress()
        self.previous: LogStore | None = None
        self._max_bytes = max_bytes

    @property
    def path(self) -> str | None:
        """The file holding the full log of the last build."""
        store = self.log.store
        return str(store.path) if store is not None else None

    @property
    def previous_path(self) -> str | None:
        """The file holding the full log of the build before the last one."""
        return str(self.previous.path) if self.previous is not None else None

    def text(self, start: int = 0, count: int | None = None) -> str:
        """The last build's log (all of it by default), cleaned of ANSI codes."""
        store = self.log.store
        if store is None:
            return ""
        if start == 0 and count is None:
            return store.read_text()
        return "\n".join(store.read(start, count if count is not None else store.lines))

    def start(self) -> None:
        """A build starts: a new log and steps view; the last log becomes the previous one."""
        if self.previous is not None:
            self.previous.close()
        self.previous = self.log.store
        self.log.clear()
        self.log.store = LogStore(max_bytes=self._max_bytes)
        self.progress = Progress()

    def feed(self, event: BuildEvent) -> None:
        self.progress.feed(event)
        if isinstance(event, StepStarted):  # numbered as the steps view numbers it
            label = self.progress.label_of(event.number) or str(event.number)
            self.log.mark(f"── [{label}] {shown(event.instruction)}")
        else:
            self.log.add_event(event)

    def note(self) -> str:
        """What the log lost, if anything: lines past the file's size cap."""
        store = self.log.store
        return f"{store.dropped} lines past the size cap dropped" if store and store.dropped \
            else ""

    def close(self) -> None:
        for store in (self.log.store, self.previous):
            if store is not None:
                store.close()
