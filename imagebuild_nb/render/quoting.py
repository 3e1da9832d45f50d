"""Quoting for the two languages a Dockerfile mixes: Dockerfile words and /bin/sh words.

>>> print(env_pair("MSG", 'say "hi" $(id)'))
MSG="say \\"hi\\" \\$(id)"
>>> print(run_instruction("echo hi"))
RUN echo hi
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable

from imagebuild_nb.errors import SpecError

# A line break ends a Dockerfile instruction whatever the quoting around it (the parser splits
# lines before it reads quotes), so no rendered word may hold one.
_LINE_BREAKS = ("\n", "\r", "\0")


def one_line(value: str, *, what: str = "a value") -> str:
    """``value`` unchanged, or a SpecError when it would break the Dockerfile line it is on."""
    if any(ch in value for ch in _LINE_BREAKS):
        raise SpecError(f"{what} {value!r} contains a line break or NUL, which would end the "
                        "Dockerfile instruction it is rendered into", argument=what,
                        hint="pass single-line values")
    return value


def sh(words: Iterable[str]) -> str:
    """A /bin/sh command line from words, each quoted as needed (one Dockerfile line)."""
    return " ".join(shlex.quote(one_line(word, what="a shell word")) for word in words)


def dockerfile_string(value: str) -> str:
    """A double-quoted Dockerfile word: the parser unescapes ``\\``, ``"`` and ``$`` only.

    A line break cannot be held by a Dockerfile word at all: it is refused.
    """
    one_line(value, what="a Dockerfile string")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def env_pair(key: str, value: str) -> str:
    return f"{key}={dockerfile_string(value)}"


def json_array(words: Iterable[str]) -> str:
    """The JSON ("exec") form used by COPY and RUN: no Dockerfile-level word splitting."""
    return json.dumps(list(words), ensure_ascii=False)


def _needs_exec_form(command: str) -> bool:
    # A line break would end the instruction; a trailing backslash would continue it into the
    # next one; "<<" starts a BuildKit heredoc; a leading "[" would be read as the JSON form;
    # a leading "--" would be read as a RUN flag (--mount, --network, --security).
    stripped = command.strip()
    return ("\n" in command or "\r" in command or stripped.endswith("\\") or "<<" in command
            or stripped.startswith(("[", "-")))


def run_instruction(command: str, mounts: str = "") -> str:
    """``RUN`` a user's shell command so nothing in it can leak into the Dockerfile.

    >>> print(run_instruction("--mount=type=secret,id=x cat /run/secrets/x"))
    RUN ["/bin/sh", "-c", " --mount=type=secret,id=x cat /run/secrets/x"]
    """
    prefix = f"RUN {mounts} " if mounts else "RUN "
    if _needs_exec_form(command):
        # sh -c would read a leading "-" as its own option; a blank in front is the same script.
        script = " " + command if command.startswith("-") else command
        return prefix + json.dumps(["/bin/sh", "-c", script], ensure_ascii=True)
    return prefix + command.strip()


_PLAIN_PATH = re.compile(r"[A-Za-z0-9/._+@:,=-]+")


def path_word(path: str) -> str:
    """A path as a WORKDIR argument: bare when plain, else a Dockerfile string (WORKDIR expands
    ``$`` and unquotes like the shell; validated paths hold neither, this holds anyway)."""
    return path if _PLAIN_PATH.fullmatch(path) else dockerfile_string(path)
