"""Link resolution through a tree's own links, checked against what the kernel does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagebuild_nb.spec.links import MAX_FOLLOWS, LinkLoopError, LinkTree

CHAIN = "/".join(["s"] * 12 + [".."] * 12) + "/x"


@pytest.mark.parametrize(
    ("links", "link", "target", "expected"),
    [
        ({}, "a", "b", "b"),
        ({}, "d/a", "../b", "b"),
        ({}, "a", "..", None),
        ({}, "a", "/etc/passwd", None),
        ({"s": "."}, "a", CHAIN, None),
        ({"s": "."}, "a", "s/s/s/x", "x"),
        ({"d/up": ".."}, "a", "d/up/d/up/x", "x"),
        ({"d/up": ".."}, "a", "d/up/..", None),
        ({"abs": "/"}, "a", "abs/etc", None),
        ({"d/l": "../e"}, "d/a", "l/f", "e/f"),
        ({"e": "d", "d/l": "."}, "a", "e/l/l/../f", "f"),
        ({}, "a", ".", ""),
    ],
)
def test_resolution(links: dict[str, str], link: str, target: str, expected: str | None) -> None:
    assert LinkTree(links).resolve(link, target) == expected


def test_matches_the_kernel_on_a_real_tree(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "e" / "f").write_text("x")
    links = {"s": ".", "d/up": "..", "d/e/l": "../../s/d", "a": "d/up/s/d/e/l/e/f"}
    for path, target in links.items():
        (root / path).symlink_to(target)
    resolved = LinkTree(links).resolve("a", links["a"])
    assert resolved == "d/e/f"
    assert os.path.realpath(root / "a") == str(root / resolved)


def test_loops_are_refused() -> None:
    with pytest.raises(LinkLoopError, match="links"):
        LinkTree({"a": "b", "b": "a"}).resolve("a", "b")
    chain = {f"l{i}": f"l{i + 1}" for i in range(MAX_FOLLOWS + 2)}
    with pytest.raises(LinkLoopError):
        LinkTree(chain).resolve("l0", "l1")


def test_work_is_bounded_over_a_whole_tree() -> None:
    tree = LinkTree({"s": "."}, budget=1000)
    with pytest.raises(LinkLoopError, match="too many steps"):
        for i in range(1000):
            tree.resolve(f"a{i}", "s/s/s/s/s/x")
