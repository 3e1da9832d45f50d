"""Input validation for the Image spec: every check names the argument and the fix.

Validation is strict on purpose: whatever passes here is rendered into a Dockerfile, so the
grammar accepted for package names, env keys and image paths is the one that renders inertly.

>>> apt_package("git")
'git'
>>> image_path("/app/src", argument="dst")
'/app/src'
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from imagebuild_nb.errors import SpecError

# Debian policy: name [a-z0-9][a-z0-9+.-]+, optional :arch, =version or /release.
_APT_RE = re.compile(
    r"^[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?(?:=[A-Za-z0-9.+~:-]+|/[A-Za-z0-9.+_-]+)?$"
)
_PY_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_MARKER_VARS = ("python_version|python_full_version|os_name|sys_platform|platform_release|"
                "platform_system|platform_version|platform_machine|"
                "platform_python_implementation|implementation_name|implementation_version|extra")
# Blanks are spaces and tabs only (a line break would end the RUN line), and every pattern is
# used with fullmatch (``$`` alone also matches before a trailing newline).
_B = r"[ \t]"
_VERSION_CLAUSE = rf"{_B}*(?:===|==|!=|~=|<=|>=|<|>){_B}*[A-Za-z0-9.*+!_-]+"
# PEP 508, restricted to characters that cannot do harm once quoted: a name, extras, version
# clauses or a URL, and an environment marker without shell metacharacters beyond quotes.
_PIP_RE = re.compile(
    rf"{_PY_NAME}(?:{_B}*\[{_B}*{_PY_NAME}(?:{_B}*,{_B}*{_PY_NAME})*{_B}*\])?"
    rf"(?:{_VERSION_CLAUSE}(?:{_B}*,{_VERSION_CLAUSE})*"
    rf"|{_B}*@{_B}*[A-Za-z][A-Za-z0-9+.-]*://[^\s;`$\\\"']+)?"
    rf"(?:{_B}*;{_B}*\(?{_B}*(?:{_MARKER_VARS}){_B}*(?:[<>=!~]=?|in\b|not{_B}+in\b)"
    r"[A-Za-z0-9_.'\"<>=!~ (),-]*)?"
)
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL_RE = re.compile(r"^https?://[^\s`$\\\"']+$")
# Characters an image path may not contain: the Dockerfile parser would expand or unquote them.
_PATH_FORBIDDEN = set('$"\\`') | {chr(c) for c in range(32)} | {"\x7f"}


def reject_nested(values: Sequence[object], *, argument: str, method: str) -> None:
    """Varargs methods get a list by mistake often; say how to unpack it."""
    for value in values:
        if isinstance(value, (list, tuple, set, frozenset)):
            raise SpecError(
                f"{method}() takes {argument} as separate arguments, got a {type(value).__name__}",
                argument=argument,
                hint=f"unpack it: {method}(*{list(value)!r})",
            )


def non_empty(values: Sequence[object], *, argument: str, method: str) -> None:
    if not values:
        raise SpecError(f"{method}() needs at least one of {argument}", argument=argument,
                        hint=f"e.g. {method}('name'), or drop the call")


def _string(value: object, *, argument: str) -> str:
    if not isinstance(value, str):
        raise SpecError(f"{argument} must be a string, got {type(value).__name__} {value!r}",
                        argument=argument)
    return value


def apt_package(name: object) -> str:
    text = _string(name, argument="packages")
    if not _APT_RE.fullmatch(text):
        raise SpecError(
            f"packages: {text!r} is not a valid Debian package name",
            argument="packages",
            hint="use names like 'git', 'libpq-dev', 'curl=7.88.1-10' or 'jq/bookworm'",
        )
    return text


def pip_requirement(spec: object) -> str:
    text = _string(spec, argument="packages")
    if text.startswith("-"):
        raise SpecError(f"packages: {text!r} looks like a pip option", argument="packages",
                        hint="pass pip options with extra_args=[...], index_url= or pre=True")
    if not _PIP_RE.fullmatch(text):
        raise SpecError(
            f"packages: {text!r} is not a valid requirement",
            argument="packages",
            hint="use PEP 508 requirements such as 'pandas==2.2.3', 'six', "
            "'uvicorn[standard]>=0.30' or 'pkg @ https://host/pkg.whl'",
        )
    return text


def index_url(url: object, *, argument: str) -> str:
    text = _string(url, argument=argument)
    if not _URL_RE.fullmatch(text):
        raise SpecError(f"{argument}={text!r} is not an http(s) URL", argument=argument,
                        hint="e.g. 'https://pypi.org/simple'")
    return text


def string_list(values: object, *, argument: str) -> tuple[str, ...]:
    """A sequence of strings; a single string counts as one item."""
    if values is None:
        return ()
    if isinstance(values, str):
        return (values,)
    if not isinstance(values, Iterable):
        raise SpecError(f"{argument} must be a list of strings", argument=argument)
    return tuple(_string(v, argument=argument) for v in values)


def shell_word(value: str, *, argument: str) -> str:
    if any(ch in value for ch in "\n\r\0"):
        raise SpecError(f"{argument}: {value!r} contains a line break or NUL", argument=argument,
                        hint="pass each argument as a single line")
    return value


def extra_args(values: object) -> tuple[str, ...]:
    if isinstance(values, str):
        values = shlex.split(values)
    return tuple(shell_word(v, argument="extra_args")
                 for v in string_list(values, argument="extra_args"))


def command(value: object) -> str:
    text = _string(value, argument="commands")
    if not text.strip():
        raise SpecError("commands: an empty command", argument="commands",
                        hint="remove the empty string from the list")
    if "\0" in text:
        raise SpecError("commands: a command contains a NUL byte", argument="commands")
    if text.lstrip().startswith("-"):
        # The Dockerfile reads leading "--words" of a RUN line as RUN flags (--mount,
        # --network, --security) and /bin/sh -c reads a leading "-" as its own option.
        raise SpecError(
            f"commands: {text.strip()[:60]!r} starts with '-': a RUN line would read it as a "
            "flag (--mount, --network, --security), not as a command",
            argument="commands",
            hint="start each command with the program to run; RUN flags are not available "
            "through with_commands (a program named '-x' runs as './-x')",
        )
    return text


def env_vars(env: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(env, Mapping):
        raise SpecError(f"env must be a dict of str to str, got {type(env).__name__}",
                        argument="env", hint="with_env_vars({'MODE': 'prod'})")
    if not env:
        raise SpecError("with_env_vars() needs at least one variable", argument="env")
    items = []
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_KEY_RE.fullmatch(key):
            raise SpecError(f"env: {key!r} is not a valid variable name", argument="env",
                            hint="use letters, digits and '_', not starting with a digit")
        if not isinstance(value, str):
            raise SpecError(f"env[{key!r}] must be a string, got {type(value).__name__}",
                            argument="env", hint=f"convert it: {{{key!r}: str(value)}}")
        if any(ch in value for ch in "\n\r\0"):
            raise SpecError(
                f"env[{key!r}] contains a line break or NUL, which a Dockerfile ENV cannot hold",
                argument="env",
                hint="store multi-line values in a file (with_source_file) and read it at runtime",
            )
        items.append((key, value))
    return tuple(items)


def image_path(value: object, *, argument: str, absolute: bool = False) -> str:
    """A path inside the image: no '..', no characters the Dockerfile parser interprets."""
    text = _string(value, argument=argument)
    if not text:
        raise SpecError(f"{argument} must not be empty", argument=argument)
    bad = sorted({ch for ch in text if ch in _PATH_FORBIDDEN})
    if bad:
        raise SpecError(f"{argument}={text!r} contains characters not allowed in an image path: "
                        f"{''.join(bad)!r}", argument=argument,
                        hint="use plain path characters "
                             "(letters, digits, '/', '.', '_', '-', spaces)")
    if ".." in text.split("/"):
        raise SpecError(f"{argument}={text!r} points outside the image root", argument=argument,
                        hint="give a path without '..' components, e.g. '/app/src'")
    if absolute and not text.startswith("/"):
        raise SpecError(f"{argument}={text!r} must be an absolute path", argument=argument,
                        hint=f"e.g. '/{text.lstrip('./')}'")
    keep_slash = text.endswith("/") and text != "/"
    normal = posixpath.normpath(text)
    return normal + "/" if keep_slash else normal


def local_path(value: object, *, argument: str, kind: str) -> Path:
    """An existing local file or folder, made absolute against the current directory."""
    if not isinstance(value, (str, os.PathLike)):
        raise SpecError(f"{argument} must be a path, got {type(value).__name__}",
                        argument=argument)
    path = Path(os.path.abspath(os.fspath(value)))
    ok = path.is_dir() if kind == "folder" else path.is_file()
    if not ok:
        what = "folder" if kind == "folder" else "file"
        raise SpecError(f"{argument}={os.fspath(value)!r}: no such {what} ({path})",
                        argument=argument,
                        hint=f"check the path; relative paths are resolved against {os.getcwd()}")
    return path
