"""Parse the Engine API's legacy build stream (JSON records) into build events.

>>> parser = LegacyStreamParser()
>>> [e.kind for e in parser.feed({"stream": "Step 2/3 : RUN echo hi\\n"})]
['step']
>>> [e.text for e in parser.feed({"stream": "hi\\nth"})], [e.text for e in parser.flush()]
(['hi'], ['th'])
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from typing import Any

from imagebuild_nb.builders.lines import LineSplitter, cut_notice, readable
from imagebuild_nb.events import BuildEvent, CacheHit, LogLine, OutputClipped, StepStarted

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_RUNNING_IN = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})$")
_EXIT_CODE = re.compile(r"returned a non-zero code: (\d+)")
TAIL_LINES = 30


class LegacyStreamParser:
    """Stateful: tracks the current step, the RUN containers seen, the image id and the error."""

    def __init__(self) -> None:
        self.step: int | None = None
        self.instruction: str | None = None
        self.containers: list[str] = []
        self.image_id: str | None = None
        self.error: str | None = None
        self.exit_code: int | None = None
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)  # the current step's output, readable
        self._lines = LineSplitter()

    def feed(self, record: dict[str, Any]) -> Iterator[BuildEvent]:
        if "error" in record or "errorDetail" in record:
            yield from self.flush()
            detail = record.get("errorDetail") or {}
            self.error = str(record.get("error") or detail.get("message") or "build failed")
            match = _EXIT_CODE.search(self.error)
            code = detail.get("code")
            self.exit_code = (int(match.group(1)) if match
                              else (code if isinstance(code, int) else None))
            return
        aux = record.get("aux")
        if isinstance(aux, dict) and "ID" in aux:
            self.image_id = str(aux["ID"])
            return
        if "stream" in record:
            yield from self._text(str(record["stream"]))
        elif "status" in record:  # pulling the base image
            status = str(record["status"])
            if record.get("id"):
                status = f"{record['id']}: {status}"
            yield LogLine(text=status, step=self.step, stream="status")

    def _text(self, chunk: str) -> Iterator[BuildEvent]:
        # RUN output arrives in chunks that do not follow line boundaries.
        for piece in self._lines.feed(chunk):
            yield from self._line(piece.text, cut=piece.cut)

    def flush(self) -> Iterator[BuildEvent]:
        for piece in self._lines.flush():
            yield from self._line(piece.text, cut=piece.cut)

    def _line(self, raw: str, *, cut: bool = False) -> Iterator[BuildEvent]:
        # The engine wraps stderr in colour codes whose reset sticks to the next line: judge
        # a line by what it shows.
        line = readable(raw)
        if raw.strip() and not line:
            return  # terminal codes only: nothing to show
        step = _STEP.match(line)
        if step:
            self.step, self.instruction = int(step.group(1)), step.group(3)
            self.tail.clear()
            yield StepStarted(number=self.step, total=int(step.group(2)),
                              instruction=self.instruction)
            return
        if line == " ---> Using cache" and self.step is not None:
            yield CacheHit(step=self.step, instruction=self.instruction or "")
            return
        running = _RUNNING_IN.match(line)
        if running:
            self.containers.append(running.group(1))
            return
        if line.startswith(" ---> ") or line.startswith("Removing intermediate container"):
            return  # engine bookkeeping, not build output
        self.tail.append(line)
        yield LogLine(text=raw, step=self.step)
        if cut:
            yield OutputClipped(message=cut_notice(self._lines.limit), step=self.step)

    @property
    def failed_step(self) -> str | None:
        if self.step is None:
            return None
        return f"step {self.step}: {self.instruction}"
