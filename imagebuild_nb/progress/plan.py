"""Which of a build's steps are the user's: the Dockerfile's instructions, ours marked.

The engine renders steps the user never wrote (the virtual environment, extra CA certificates,
the spec-hash label). Views number only the user's steps and fold ours into one "prepare" row.
Builders number steps their own way: the legacy builder counts every instruction of every stage,
BuildKit counts only the instructions that make a vertex (FROM, RUN, COPY, ADD, WORKDIR) per
stage. :meth:`StepPlan.locate` tells, from a builder's ``n/m``, which instruction it is.

>>> plan = StepPlan.from_dockerfile(
...     'FROM base\\nRUN [ -x /opt/venv/bin/python ] || python3 -m venv /opt/venv\\n'
...     'ENV VIRTUAL_ENV=/opt/venv PATH="/opt/venv/bin:$PATH"\\nRUN pip install six\\n'
...     'LABEL "io.imagebuild-nb.spec-hash"="abc"\\n')
>>> [(i.keyword, i.internal) for i in plan.instructions]
[('FROM', False), ('RUN', True), ('ENV', True), ('RUN', False), ('LABEL', True)]
>>> plan.locate(4, 5)  # the legacy builder's step 4/5 is the user's step 2 of 2
PlannedStep(user_number=2, user_total=2, internal=False, instruction='RUN pip install six')
>>> plan.locate(2, 3)  # BuildKit's 2/3 (no ENV or LABEL vertices) is our venv step
PlannedStep(user_number=None, user_total=2, internal=True, instruction='RUN [ -x /opt/venv/bin/python ] || python3 -m venv /opt/venv')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagebuild_nb.labels import SPEC_HASH_LABEL

# Kept in step with imagebuild_nb.render.dockerfile (a test renders real images against this).
_VENV_RUN = "python3 -m venv /opt/venv"
_VENV_ENV = "ENV VIRTUAL_ENV=/opt/venv"
_BUILD_CA_DIR = "/usr/local/share/ca-certificates/imagebuild-nb-build"
_CA_REFRESH = "update-ca-certificates"
_CA_ENV = "ENV SSL_CERT_FILE="

# Instructions BuildKit shows as numbered steps; the others only change the image config.
VERTEX_KEYWORDS = frozenset({"FROM", "RUN", "COPY", "ADD", "WORKDIR"})
_DIRECTIVE = re.compile(r"^#\s*(\w+)\s*=\s*(\S+)\s*$")
_SPACE = re.compile(r"\s+")


def normalize(instruction: str) -> str:
    """One line, single spaces: how builders print an instruction, whatever its layout."""
    return _SPACE.sub(" ", instruction).strip()


@dataclass(frozen=True)
class Instruction:
    keyword: str
    text: str  # normalized, continuation lines joined
    stage: int  # 0 for the first FROM's stage
    internal: bool = False


@dataclass(frozen=True)
class PlannedStep:
    user_number: int | None  # None for our own (internal) steps
    user_total: int
    internal: bool
    instruction: str


class InternalMarker:
    """Recognises the engine's own instructions in order (some depend on the one before).

    >>> marker = InternalMarker()
    >>> [marker.is_internal(t) for t in ("FROM x", "RUN make", 'LABEL "io.imagebuild-nb.spec-hash"="1"')]
    [False, False, True]
    """

    def __init__(self) -> None:
        self._after_ca = 0  # instructions of the build-CA block still to come

    def is_internal(self, instruction: str) -> bool:
        text = normalize(instruction)
        if self._after_ca:
            self._after_ca -= 1
            if (text.startswith("RUN") and _CA_REFRESH in text) or text.startswith(_CA_ENV):
                return True
            self._after_ca = 0
        if text.startswith("COPY") and _BUILD_CA_DIR in text:
            self._after_ca = 2
            return True
        if text.startswith("RUN") and _VENV_RUN in text and "[ -x /opt/venv/bin/python ]" in text:
            return True
        if text.startswith(_VENV_ENV):
            return True
        return text.startswith("LABEL") and SPEC_HASH_LABEL in text


@dataclass(frozen=True)
class StepPlan:
    """A Dockerfile's instructions, in order, with the engine's own ones marked."""

    instructions: tuple[Instruction, ...] = ()

    @classmethod
    def from_dockerfile(cls, text: str) -> StepPlan:
        marker = InternalMarker()
        found: list[Instruction] = []
        stage = -1
        for raw in _instructions(text):
            keyword = raw.split(None, 1)[0].upper()
            if keyword == "FROM":
                stage += 1
            line = normalize(raw)
            found.append(Instruction(keyword, line, max(stage, 0), marker.is_internal(line)))
        return cls(tuple(found))

    def __bool__(self) -> bool:
        return bool(self.instructions)

    def locate(self, number: int, total: int | None) -> PlannedStep | None:
        """Which instruction a builder's step ``number/total`` is (None: cannot tell)."""
        for counted in self._schemes():
            if total is not None and len(counted) != total:
                continue
            if not 1 <= number <= len(counted):
                continue
            entry = counted[number - 1]
            user_total = sum(not item.internal for item in counted)
            user_number = None if entry.internal else sum(
                not item.internal for item in counted[:number])
            return PlannedStep(user_number, user_total, entry.internal, entry.text)
        return None

    def user_steps(self, total: int | None) -> list[tuple[int, str]]:
        """(user number, instruction) of every user step, for the scheme matching ``total``."""
        for counted in self._schemes():
            if total is None or len(counted) == total:
                users = [item for item in counted if not item.internal]
                return [(index + 1, item.text) for index, item in enumerate(users)]
        return []

    def _schemes(self) -> list[tuple[Instruction, ...]]:
        everything = self.instructions
        stages = {item.stage for item in everything}
        schemes = [everything]
        if len(stages) == 1:  # BuildKit numbers per stage: only a single stage maps cleanly
            schemes.append(tuple(i for i in everything if i.keyword in VERTEX_KEYWORDS))
        return schemes


def _instructions(text: str) -> list[str]:
    """The instructions of a Dockerfile, continuation lines joined (comments dropped)."""
    escape = "\\"
    lines = text.splitlines()
    for line in lines:  # parser directives come first, before any other line
        match = _DIRECTIVE.match(line.strip())
        if not match:
            break
        if match.group(1).lower() == "escape" and match.group(2) in ("`", "\\"):
            escape = match.group(2)
    out: list[str] = []
    current: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped or (stripped.startswith("#")):
            continue  # comments and blank lines, also between continuation lines
        if stripped.endswith(escape):
            current.append(stripped[:-1])
            continue
        current.append(stripped)
        out.append(" ".join(current))
        current = []
    if current:
        out.append(" ".join(current))
    return out
