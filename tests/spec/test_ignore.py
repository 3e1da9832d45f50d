""".dockerignore semantics (moby/patternmatcher) used for source folders and Dockerfile contexts."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagebuild_nb import Image
from imagebuild_nb.errors import SpecError
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


@pytest.mark.parametrize(
    ("rules", "path", "excluded"),
    [
        ("[^a].txt", "b.txt", True),
        ("[^a].txt", "a.txt", False),
        ("[!a].txt", "!.txt", True),  # Go's classes negate with '^' only; '!' is literal
        ("[a-c]x", "bx", True),
        ("[\\]a]x", "]x", True),  # ']' and '-' are members when escaped
        ("[a\\-]x", "-x", True),
        ("[[]x", "[x", True),  # '[' inside a class is a member (no Python nested-set warning)
        ("[a&&b]", "&", True),  # no Python set operations either
        ("[[]]", "[]", True),  # a class holding "[", then a literal "]"
        ("\\[x\\]", "[x]", True),  # escaped brackets are literal
        ("\\[x\\]", "x", False),
        ("[[:digit:]].log", "7.log", True),
        ("[[:digit:]].log", "a.log", False),
    ],
)
def test_character_classes_follow_docker(rules: str, path: str, excluded: bool) -> None:
    assert IgnoreRules.parse(rules).excluded(path) is excluded


@pytest.mark.parametrize(
    ("text", "line", "pattern"),
    [
        ("*.log\n[\n", 2, "["),
        ("# c\n\nbuild/[a-\n", 3, "build/[a-"),
        ("ok\n!x[\n", 2, "!x["),
        ("a\\", 1, "a\\"),  # a trailing backslash escapes nothing
        ("[z-a]", 1, "[z-a]"),  # a reversed range
        ("[]a]", 1, "[]a]"),  # Docker's filepath.Match wants ']' and '-' escaped in a class
        ("[a-]", 1, "[a-]"),
        ("!", 1, "!"),  # Docker: illegal exclusion pattern
        ("[[:nope:]]", 1, "[[:nope:]]"),
    ],
)
def test_a_bad_pattern_names_the_file_the_line_and_the_pattern(text: str, line: int,
                                                             pattern: str) -> None:
    with pytest.raises(SpecError) as caught:
        IgnoreRules.parse(text, source="/proj/.dockerignore", argument="src")
    message = str(caught.value)
    assert "/proj/.dockerignore" in message and f"line {line}" in message
    assert repr(pattern) in message
    assert caught.value.argument == "src" and "\\[" in (caught.value.hint or "")


def test_a_bad_pattern_in_a_folders_own_dockerignore_fails_at_the_call(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("a = 1\n")
    (tmp_path / "src" / ".dockerignore").write_text("*.pyc\nbuild[\n")
    with pytest.raises(SpecError) as caught:
        _ = Image.from_base("busybox:1", name="x").with_source_folder(tmp_path / "src").uri
    assert str(tmp_path / "src" / ".dockerignore") in str(caught.value)
    assert "line 2" in str(caught.value) and caught.value.argument == "src"


def test_a_bad_pattern_in_with_dockerignore_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "rules").write_text("[oops\n")
    img = (Image.from_base("busybox:1", name="x").with_dockerignore(tmp_path / "rules")
           .with_source_folder(tmp_path / "src"))
    with pytest.raises(SpecError) as caught:
        _ = img.uri
    assert str(tmp_path / "rules") in str(caught.value) and "line 1" in str(caught.value)
