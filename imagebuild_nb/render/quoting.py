"""Quoting for the two languages a Dockerfile mixes: Dockerfile words and /bin/sh words.

>>> print(env_pair("MSG", 'say "hi" $(id)'))
MSG="say \\"hi\\" \\$(id)"
>>> print(run_instruction("echo hi"))
RUN echo hi
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable


def sh(words: Iterable[str]) -> str:
    """A /bin/sh command line from words, each quoted as needed."""
    return " ".join(shlex.quote(word) for word in words)


def dockerfile_string(value: str) -> str:
    """A double-quoted Dockerfile word: the parser unescapes ``\\``, ``"`` and ``$`` only.

    Values never contain line breaks (validation rejects them): a Dockerfile cannot hold one.
    """
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def env_pair(key: str, value: str) -> str:
    return f"{key}={dockerfile_string(value)}"


def json_array(words: Iterable[str]) -> str:
    """The JSON ("exec") form used by COPY and RUN: no Dockerfile-level word splitting."""
    return json.dumps(list(words), ensure_ascii=False)


def _needs_exec_form(command: str) -> bool:
    # A line break would end the instruction; a trailing backslash would continue it into the
    # next one; "<<" starts a BuildKit heredoc; a leading "[" would be read as the JSON form.
    stripped = command.strip()
    return ("\n" in command or "\r" in command or stripped.endswith("\\") or "<<" in command
            or stripped.startswith("["))


def run_instruction(command: str, mounts: str = "") -> str:
    """``RUN`` a user's shell command so nothing in it can leak into the Dockerfile."""
    prefix = f"RUN {mounts} " if mounts else "RUN "
    if _needs_exec_form(command):
        return prefix + json.dumps(["/bin/sh", "-c", command], ensure_ascii=True)
    return prefix + command.strip()


def path_word(path: str) -> str:
    """A path as a WORKDIR argument (validated paths hold no quote, backslash or ``$``)."""
    return f'"{path}"' if " " in path or "\t" in path else path
