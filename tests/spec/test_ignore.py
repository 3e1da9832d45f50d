""".dockerignore semantics (moby/patternmatcher) used for source folders and Dockerfile contexts."""

from __future__ import annotations

import pytest

from imagebuild_nb.spec.ignore import DEFAULT_JUNK, IgnoreRules


@pytest.mark.parametrize(
    ("rules", "path", "excluded"),
    [
        ("*.log", "a.log", True),
        ("*.log", "dir/a.log", False),  # '*' does not cross '/'
        ("**/*.log", "dir/sub/a.log", True),
        ("**/*.log", "a.log", True),
        ("build", "build/out/x.o", True),  # a matching folder excludes its contents
        ("/build", "build/x", True),  # a leading '/' is the context root
        ("docs/**", "docs/a/b.md", True),
        ("*.md\n!README.md", "README.md", False),
        ("*.md\n!README.md", "CHANGES.md", True),
        ("!README.md\n*.md", "README.md", True),  # the last matching rule wins
        ("# comment\n\n  *.tmp  ", "x.tmp", True),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[ab].txt", "b.txt", True),
        ("data\n!data/keep.csv", "data/keep.csv", False),
        ("data\n!data/keep.csv", "data/drop.csv", True),
        ("./x/../y", "y", True),  # patterns are cleaned
        ("file.(1)", "file.(1)", True),  # regex specials are literal
    ],
)
def test_rules(rules: str, path: str, excluded: bool) -> None:
    assert IgnoreRules.parse(rules).excluded(path) is excluded


@pytest.mark.parametrize(
    "path",
    [".git", ".git/HEAD", "pkg/__pycache__/m.pyc", "m.pyc", "a/.ipynb_checkpoints/n.ipynb",
     ".venv/bin/python", "sub/.venv"],
)
def test_default_junk(path: str) -> None:
    assert DEFAULT_JUNK.excluded(path)


@pytest.mark.parametrize("path", ["git", "src/app.py", "pycache.py", "venv/x", ".gitignore"])
def test_not_junk(path: str) -> None:
    assert not DEFAULT_JUNK.excluded(path)


def test_user_rule_can_reinclude_junk() -> None:
    assert not (DEFAULT_JUNK + IgnoreRules.parse("!.git")).excluded(".git")


def test_canonical_form_ignores_comments_and_whitespace() -> None:
    assert IgnoreRules.parse("# c\n *.log \n").canonical == IgnoreRules.parse("*.log").canonical
