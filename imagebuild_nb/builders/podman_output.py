"""Parse ``podman build`` output (buildah's format) into build events.

The format (podman 4.x), steps numbered per stage, a step's output plain below its header::

    STEP 2/4: RUN echo hi
    hi
    --> 056746ce973
    STEP 3/4: COPY Dockerfile /x
    --> Using cache 4edd5ad34d0f...
    Error: building at STEP "RUN echo two && exit 3": while running runtime: exit status 3

With ``--platform a,b`` podman builds each platform in turn and says so with a
``[linux/arm64] STEP 1/2: ...`` prefix; the platform goes into the step's stage.

>>> p = PodmanOutputParser()
>>> [e.kind for e in p.feed("STEP 2/4: RUN echo hi")]
['step']
>>> [(e.text, e.step) for e in p.feed("hi")]
[('hi', 2)]
>>> line = 'Error: building at STEP "RUN exit 3": while running runtime: exit status 3'
>>> list(p.feed(line))[0].text
'Error: building at STEP "RUN exit 3": while running runtime: exit status 3'
>>> p.failed_step, p.exit_code
('RUN exit 3', 3)
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator

from imagebuild_nb.events import BuildEvent, CacheHit, LogLine, StepStarted

_PREFIX = re.compile(r"^\[(?P<platform>[a-z0-9]+/[a-z0-9]+(?:/[a-z0-9]+)?)\] (?P<rest>.*)$")
_STEP = re.compile(r"^STEP (?P<n>\d+)/(?P<m>\d+): (?P<instruction>.*)$")
_CACHED = re.compile(r"^--> Using cache [0-9a-f]+")
_ERROR = re.compile(r'^Error: building at STEP "(?P<step>.*)": (?P<why>.*)$')
_EXIT = re.compile(r"exit status (\d+)")
TAIL_LINES = 30


class PodmanOutputParser:
    """Stateful: the current step (number, instruction, platform), the error, a short tail."""

    def __init__(self) -> None:
        self.step: int | None = None
        self.instruction: str | None = None
        self.error: str | None = None
        self.failed_step: str | None = None
        self.exit_code: int | None = None
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)

    def feed(self, line: str) -> Iterator[BuildEvent]:
        line = line.rstrip("\r\n")
        stage = ""
        prefixed = _PREFIX.match(line)
        if prefixed:
            stage, line = prefixed["platform"], prefixed["rest"]
        step = _STEP.match(line)
        if step:
            self.step, self.instruction = int(step["n"]), step["instruction"]
            self._tail.clear()
            yield StepStarted(number=self.step, total=int(step["m"]),
                              instruction=step["instruction"], stage=stage)
            return
        if _CACHED.match(line) and self.step is not None:
            yield CacheHit(step=self.step, instruction=self.instruction or "")
            return
        error = _ERROR.match(line)
        if error:
            self.error = line
            self.failed_step = error["step"]
            code = _EXIT.search(error["why"])
            self.exit_code = int(code[1]) if code else None
        elif line.startswith("Error: "):
            self.error = line
            self.failed_step = self.failed_step or self.instruction
        if not line.startswith("Error: "):  # the error is the message, the tail what led to it
            self._tail.append(line)
        yield LogLine(text=line, step=self.step)

    def tail(self) -> tuple[str, ...]:
        return tuple(self._tail)
