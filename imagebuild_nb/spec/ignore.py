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

# Ignored in every source folder and build context unless a user rule re-includes them.
JUNK_PATTERNS = ("**/.git", "**/__pycache__", "**/*.pyc", "**/.ipynb_checkpoints", "**/.venv")

_REGEX_SPECIAL = set(".+()|{}$^")


@dataclass(frozen=True)
class Rule:
    pattern: str
    negated: bool

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(_translate(self.pattern))


def _translate(pattern: str) -> str:
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
        elif ch == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch in _REGEX_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    out.append("$")
    return "".join(out)


@dataclass(frozen=True)
class IgnoreRules:
    """An ordered list of rules. ``text`` is what identity hashes (the rules, not the file)."""

    rules: tuple[Rule, ...] = ()

    @classmethod
    def parse(cls, text: str) -> IgnoreRules:
        rules = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            if negated:
                line = line[1:].strip()
            if not line:
                continue
            line = posixpath.normpath(line)
            if len(line) > 1 and line.startswith("/"):
                line = line.lstrip("/") or "/"
            rules.append(Rule(line, negated))
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
