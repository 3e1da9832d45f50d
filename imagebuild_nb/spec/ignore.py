""".dockerignore rules with Docker's semantics (moby/patternmatcher), plus the default junk rules.

Rules are matched against slash-separated paths relative to the folder root; the last matching
rule wins; ``!rule`` re-includes; a rule that matches a directory excludes everything in it.

>>> rules = IgnoreRules.parse("*.log\\n!keep.log\\n")
>>> rules.excluded("app.log"), rules.excluded("keep.log"), rules.excluded("src/app.log")
(True, False, False)
>>> DEFAULT_JUNK.excluded("pkg/__pycache__/mod.cpython-311.pyc")
True
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from functools import cached_property

from imagebuild_nb.errors import SpecError

# Ignored in every source folder and build context unless a user rule re-includes them.
JUNK_PATTERNS = ("**/.git", "**/__pycache__", "**/*.pyc", "**/.ipynb_checkpoints", "**/.venv")

# Go's regexp reads POSIX classes inside a class; Python's re does not: spelled out (ASCII).
_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z", "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}
_PATTERN_HINT = ("escape a literal '[', ']' or '\\' with a backslash ('\\['); a character class "
                 "looks like [abc], [a-z] or [^a] (Docker's filepath.Match syntax)")


class PatternError(ValueError):
    """A .dockerignore pattern Docker would refuse too (filepath.Match syntax)."""


@dataclass(frozen=True)
class Rule:
    pattern: str
    negated: bool

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(_translate(self.pattern))


def _translate(pattern: str) -> str:
    """moby/patternmatcher's translation to a regex, with classes checked the way Docker's
    ``filepath.Match`` checks them (a malformed pattern fails the build there too)."""
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(?:.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i >= n:
                raise PatternError("a trailing '\\' escapes nothing")
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            text, i = _char_class(pattern, i)
            out.append(text)
        else:
            out.append(re.escape(ch))
    out.append("$")
    return "".join(out)


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    """The class starting after the '[' at ``i - 1``, as a Python class, and where it ends."""
    parts = ["["]
    if pattern.startswith("^", i):
        parts.append("^")
        i += 1
    members = 0
    while True:
        if i >= len(pattern):
            raise PatternError("a '[' opens a character class that is never closed")
        if pattern[i] == "]" and members:
            return "".join(parts) + "]", i + 1
        if pattern.startswith("[:", i) and ":]" in pattern[i + 2:]:
            name = pattern[i + 2:pattern.index(":]", i + 2)]
            if name not in _POSIX_CLASSES:
                raise PatternError(f"[:{name}:] is not a character class")
            parts.append(_POSIX_CLASSES[name])
            i += len(name) + 4
        else:
            low, i = _class_member(pattern, i)
            if pattern.startswith("-", i):
                high, i = _class_member(pattern, i + 1)
                if high < low:
                    raise PatternError(f"the range {low}-{high} is reversed")
                parts.append(f"{re.escape(low)}-{re.escape(high)}")
            else:
                parts.append(re.escape(low))
        members += 1


def _class_member(pattern: str, i: int) -> tuple[str, int]:
    if i >= len(pattern):
        raise PatternError("a '[' opens a character class that is never closed")
    ch = pattern[i]
    if ch == "\\":
        if i + 1 >= len(pattern):
            raise PatternError("a trailing '\\' escapes nothing")
        return pattern[i + 1], i + 2
    if ch in "-]":
        raise PatternError(f"a '{ch}' inside a character class must be escaped ('\\{ch}')")
    return ch, i + 1


@dataclass(frozen=True)
class IgnoreRules:
    """An ordered list of rules. ``text`` is what identity hashes (the rules, not the file)."""

    rules: tuple[Rule, ...] = ()

    @classmethod
    def parse(cls, text: str, *, source: str = ".dockerignore",
              argument: str = "path") -> IgnoreRules:
        """Rules from a .dockerignore text; a malformed pattern raises a SpecError naming
        ``source``, the line and the pattern (``argument`` is the spec argument it came from)."""
        rules = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            if negated:
                line = line[1:].strip()
            try:
                if not line:
                    raise PatternError("a '!' alone re-includes nothing")
                line = posixpath.normpath(line)
                if len(line) > 1 and line.startswith("/"):
                    line = line.lstrip("/") or "/"
                rule = Rule(line, negated)
                _ = rule.regex  # compile now: a bad pattern fails here, with its line
            except (PatternError, re.error) as error:
                raise SpecError(f"{source}, line {number}: {raw.strip()!r} is not a valid "
                                f"pattern: {error}", argument=argument,
                                hint=_PATTERN_HINT) from None
            rules.append(rule)
        return cls(tuple(rules))

    def __add__(self, other: IgnoreRules) -> IgnoreRules:
        return IgnoreRules(self.rules + other.rules)

    @property
    def canonical(self) -> list[list[object]]:
        return [[rule.pattern, rule.negated] for rule in self.rules]

    @cached_property
    def has_negations(self) -> bool:
        return any(rule.negated for rule in self.rules)

    @cached_property
    def _combined(self) -> re.Pattern[str] | None:
        # Without negations "excluded" is "any rule matches": one alternation is much faster.
        if self.has_negations or not self.rules:
            return None
        return re.compile("|".join(f"(?:{_translate(rule.pattern)})" for rule in self.rules))

    def excluded(self, path: str) -> bool:
        """Whether ``path`` (relative, '/'-separated) is excluded, its parents considered."""
        if not self.rules:
            return False
        combined = self._combined
        parts = path.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if combined is not None:
            return any(combined.match(candidate) for candidate in candidates)
        matched = False
        for rule in self.rules:
            if rule.negated != matched:
                continue
            if any(rule.regex.match(candidate) for candidate in candidates):
                matched = not rule.negated
        return matched

    def excluded_direct(self, path: str) -> bool:
        """Like :meth:`excluded` for a walker that never enters excluded folders.

        Only valid without negations: parents were already checked on the way down.
        """
        combined = self._combined
        if combined is not None:
            return combined.match(path) is not None
        return self.excluded(path)


DEFAULT_JUNK = IgnoreRules.parse("\n".join(JUNK_PATTERNS))
