"""Parse BuildKit's ``--progress=plain`` output into build events.

The format (docker 20.10 CLI and buildx alike), one vertex per ``#N`` id, lines interleaved::

    #5 [stage-0 2/4] RUN pip install six
    #5 sha256:cef3...
    #5 0.085 Collecting six
    #5 CACHED
    #5 0.220 [output clipped, log limit 200KiB/s reached]
    #5 ERROR: executor failed running [/bin/sh -c false]: exit code: 1
    #5 DONE 0.5s

>>> p = PlainProgressParser()
>>> [e.kind for e in p.feed("#5 [stage-0 2/4] RUN echo hi")]
['step']
>>> [(e.text, e.step) for e in p.feed("#5 0.085 hi")]
[('hi', 2)]
>>> [e.kind for e in p.feed("#5 0.220 [output clipped, log limit 200KiB/s reached]")]
['clipped']
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from imagebuild_nb.builders.lines import LineSplitter, cut_notice, readable
from imagebuild_nb.events import BuildEvent, CacheHit, LogLine, OutputClipped, StepStarted

_VERTEX = re.compile(r"^#(\d+) (.*)$")
_STEP = re.compile(r"^\[(?:(?P<stage>[^\]]*?) )?(?P<n>\d+)/(?P<m>\d+)\] (?P<instruction>.*)$")
_NAMED = re.compile(r"^\[(?P<name>[^\]]+)\] (?P<what>.*)$")
_TIMED = re.compile(r"^(\d+\.\d+) ?(.*)$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ERROR = re.compile(r"^ERROR: (.*)$")
_EXIT_CODE = re.compile(r"exit code: (\d+)")
_CLIPPED = re.compile(r"^\[output clipped, log limit [^\]]*reached\]$")
TAIL_LINES = 30

CLIP_HINT = (
    "BuildKit in the engine dropped output of this step. The limits are dockerd environment "
    "variables: restart dockerd with BUILDKIT_STEP_LOG_MAX_SIZE=1073741824 and "
    "BUILDKIT_STEP_LOG_MAX_SPEED=104857600 (large values: -1 is not honoured by older engines), "
    "or build with local_driver='docker-api', which streams all output."
)


@dataclass
class _Vertex:
    name: str
    step: int | None = None


class PlainProgressParser:
    """Stateful: vertices by id, the failing vertex and its error, a tail per step."""

    def __init__(self) -> None:
        self.vertices: dict[str, _Vertex] = {}
        self.error: str | None = None
        self.exit_code: int | None = None
        self.failed_vertex: str | None = None
        self.clipped = False
        self.tails: dict[str, deque[str]] = {}
        self.trailer: deque[str] = deque(maxlen=TAIL_LINES)  # lines outside any vertex
        self._lines = LineSplitter()
        self._last_vertex: str | None = None

    def feed_chunk(self, chunk: str) -> Iterator[BuildEvent]:
        """Output as it comes off the pipe, in pieces that need not end at a line's end."""
        for piece in self._lines.feed(chunk):
            yield from self.feed(piece.text, cut=piece.cut)

    def flush(self) -> Iterator[BuildEvent]:
        for piece in self._lines.flush():
            yield from self.feed(piece.text, cut=piece.cut)

    def feed(self, line: str, *, cut: bool = False) -> Iterator[BuildEvent]:
        """One line of output; ``cut`` when it was longer and its head is all there is."""
        for event in self._parse(line.rstrip("\r\n")):
            yield event
            if cut and isinstance(event, LogLine):
                yield OutputClipped(message=cut_notice(), step=event.step)

    def _parse(self, line: str) -> Iterator[BuildEvent]:
        match = _VERTEX.match(line)
        if not match:
            if line.strip() and line.strip() != "------":
                self.trailer.append(readable(line))
                if self.error is None and line.startswith(("error:", "ERROR:", "failed to")):
                    self.error = (line.split(":", 1)[1].strip()
                                  if line.startswith(("error:", "ERROR:")) else line)
                yield LogLine(text=line, stream="system")
            return
        vid, rest = match.group(1), match.group(2)
        self._last_vertex = vid
        vertex = self.vertices.get(vid)
        if vertex is None:
            vertex = self.vertices[vid] = _Vertex(name=rest)
            step = _STEP.match(rest)
            if step:
                vertex.step = int(step.group("n"))
                vertex.name = step.group("instruction")
                yield StepStarted(number=vertex.step, total=int(step.group("m")),
                                  instruction=vertex.name, stage=step.group("stage") or "")
            else:
                named = _NAMED.match(rest)
                yield LogLine(text=named.group("what") if named else rest, stream="system")
            return
        if rest == "CACHED":
            if vertex.step is not None:
                yield CacheHit(step=vertex.step, instruction=vertex.name)
            return
        if rest.startswith("DONE") or _DIGEST.match(rest):
            return
        error = _ERROR.match(rest)
        if error:
            self.error, self.failed_vertex = error.group(1), vid
            code = _EXIT_CODE.search(self.error)
            self.exit_code = int(code.group(1)) if code else None
            return
        timed = _TIMED.match(rest)
        text = timed.group(2) if timed else rest
        if _CLIPPED.match(text):
            self.clipped = True
            yield OutputClipped(message=f"{text} {CLIP_HINT}", step=vertex.step)
            return
        self.tails.setdefault(vid, deque(maxlen=TAIL_LINES)).append(readable(text))
        yield LogLine(text=text, step=vertex.step, stream="stdout" if timed else "system")

    @property
    def failed_step(self) -> str | None:
        if self.failed_vertex is None:
            return None
        vertex = self.vertices[self.failed_vertex]
        if vertex.step is None:
            return vertex.name
        return f"step {vertex.step}: {vertex.name}"

    @property
    def current_step(self) -> str | None:
        """The step that printed last (where a build that went quiet is stuck)."""
        return self._describe(self._last_vertex)

    def current_tail(self) -> tuple[str, ...]:
        return tuple(self.tails.get(self._last_vertex or "", ()))

    def _describe(self, vid: str | None) -> str | None:
        vertex = self.vertices.get(vid or "")
        if vertex is None:
            return None
        return vertex.name if vertex.step is None else f"step {vertex.step}: {vertex.name}"

    def failure_tail(self) -> tuple[str, ...]:
        if self.failed_vertex is not None and self.failed_vertex in self.tails:
            return tuple(self.tails[self.failed_vertex])
        return tuple(self.trailer)
