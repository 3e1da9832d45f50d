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
>>> venv = plan.locate(2, 3)  # BuildKit's 2/3 (no ENV or LABEL vertices) is our venv step
>>> venv  # doctest: +NORMALIZE_WHITESPACE
PlannedStep(user_number=None, user_total=2, internal=True,
            instruction='RUN [ -x /opt/venv/bin/python ] || python3 -m venv /opt/venv')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagebuild_nb.labels import SPEC_HASH_LABEL

# Kept in step with imagebuild_nb.render.dockerfile (a test renders real images against this).
_VENV_RUN = "python3 -m venv /opt/venv"
_VENV_ENV = "ENV VIRTUAL_ENV=/opt/venv"
_CA_DIR = "/usr/local/share/ca-certificates/imagebuild-nb-"
_OURS = "imagebuild-nb"
_TOOL_DIR = "/opt/imagebuild-nb/"
_CA_REFRESH = "update-ca-certificates"
_CA_ENV = "ENV SSL_CERT_FILE="
_OUR_LABELS = SPEC_HASH_LABEL.rsplit(".", 1)[0] + "."  # io.imagebuild-nb.*

# Instructions BuildKit shows as numbered steps; the others only change the image config.
VERTEX_KEYWORDS = frozenset({"FROM", "RUN", "COPY", "ADD", "WORKDIR"})
_BUILDER_LABELS = 4  # the Engine API appends a LABEL step per label of the request
_DIRECTIVE = re.compile(r"^#\s*(\w+)\s*=\s*(\S+)\s*$")
_SPACE = re.compile(r"\s+")
_ALIAS = re.compile(r"\s+AS\s+(\S+)\s*$", re.IGNORECASE)
_OUR_MOUNT = re.compile(
    r"--mount=\S*(?:imagebuild-nb|/var/cache/apt|/var/lib/apt/lists)\S*\s+")


def normalize(instruction: str) -> str:
    """One line, single spaces: how builders print an instruction, whatever its layout."""
    return _SPACE.sub(" ", instruction).strip()


def shown(instruction: str) -> str:
    """An instruction as views show it: without the mounts the engine adds (CA bundle, caches).

    >>> shown("RUN --mount=type=cache,target=/var/cache/imagebuild-nb/pip pip install six")
    'RUN pip install six'
    """
    text = normalize(instruction)
    if "--mount=" not in text:
        return text
    return _OUR_MOUNT.sub("", text)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    text: str  # normalized, continuation lines joined
    stage: int  # 0 for the first FROM's stage
    internal: bool = False
    stage_name: str = ""  # the FROM's ``AS`` name, if any
    index: int = 0  # position in the Dockerfile


@dataclass(frozen=True)
class PlannedStep:
    user_number: int | None  # None for our own (internal) steps
    user_total: int
    internal: bool
    instruction: str


class InternalMarker:
    """Recognises the engine's own instructions in order (some depend on the one before).

    >>> marker = InternalMarker()
    >>> [marker.is_internal(t)
    ...  for t in ("FROM x", "RUN make", 'LABEL "io.imagebuild-nb.spec-hash"="1"')]
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
        if text.startswith("COPY") and _CA_DIR in text:
            self._after_ca = 2
            return True
        if text.startswith(("ARG", "COPY --from=")) and _OURS in text:
            return True  # build-time CA variables, the installer tool copied from its stage
        if text.startswith("RUN") and _VENV_RUN in shown(text).split("||")[-1] and \
                "[ -x /opt/venv/bin/python ]" in text:
            return True
        if text.startswith("RUN") and _TOOL_DIR in text and "install uv" in text:
            return True  # the installer tool's own stage
        if text.startswith(_VENV_ENV):
            return True
        return text.startswith("LABEL") and (SPEC_HASH_LABEL in text or _OUR_LABELS in text)


@dataclass(frozen=True)
class StepPlan:
    """A Dockerfile's instructions, in order, with the engine's own ones marked."""

    instructions: tuple[Instruction, ...] = ()

    @classmethod
    def from_dockerfile(cls, text: str) -> StepPlan:
        marker = InternalMarker()
        found: list[Instruction] = []
        stage, name = -1, ""
        for index, raw in enumerate(_instructions(text)):
            keyword = raw.split(None, 1)[0].upper()
            line = normalize(raw)
            if keyword == "FROM":
                stage += 1
                alias = _ALIAS.search(line)
                name = alias.group(1) if alias else ""
            # A stage of our own (the installer tool's) is ours from its FROM on.
            internal = marker.is_internal(line) or name.startswith(_OURS)
            found.append(Instruction(keyword, line, max(stage, 0), internal, name, index))
        return cls(tuple(found))

    def __bool__(self) -> bool:
        return bool(self.instructions)

    def locate(self, number: int, total: int | None, stage: str = "") -> PlannedStep | None:
        """Which instruction a builder's step ``number/total`` (of BuildKit ``stage``) is.

        None when it cannot tell. The Engine API appends LABEL steps of its own for the
        request's labels: steps past the Dockerfile's end are the builder's, folded like ours.
        """
        found = self._scheme(total, stage)
        if found is None or number < 1:
            return None
        counted, numbered = found
        users = [item for item in numbered if not item.internal]
        if number > len(counted):
            return PlannedStep(None, len(users), True, "")
        entry = counted[number - 1]
        if entry.internal:
            return PlannedStep(None, len(users), True, entry.text)
        return PlannedStep(users.index(entry) + 1, len(users), False, entry.text)

    def user_steps(self, total: int | None, stage: str = "") -> list[tuple[int, str]]:
        """(user number, instruction) of every user step, for the scheme matching ``total``."""
        found = self._scheme(total, stage)
        users = [item for item in (found[1] if found else ()) if not item.internal]
        return [(index + 1, item.text) for index, item in enumerate(users)]

    def _scheme(self, total: int | None, stage: str
                ) -> tuple[tuple[Instruction, ...], tuple[Instruction, ...]] | None:
        """(the steps the builder counts for ``total``, all steps the user's are numbered in)."""
        everything = self.instructions
        if not stage and total is not None and 0 <= total - len(everything) <= _BUILDER_LABELS:
            return everything, everything  # the legacy builder: every instruction, globally
        vertices = tuple(i for i in everything if i.keyword in VERTEX_KEYWORDS)
        stages = sorted({i.stage for i in everything})
        if not stage and len(stages) == 1:
            counted = vertices
        elif not stage:
            return None  # BuildKit names the stage of every step of a multi-stage build
        else:
            counted = tuple(i for i in vertices if stage in (i.stage_name, f"stage-{i.stage}"))
        if not counted or (total is not None and len(counted) != total):
            return None
        return counted, vertices  # BuildKit: vertices per stage; users count them all


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
