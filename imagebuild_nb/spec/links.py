"""Where a symlink in a tree leads, resolved the way the kernel will: through the tree's links.

A link target cannot be judged as a string: with ``s -> .`` in the tree, ``s/s/../../x`` reads
as ``x`` but leads two folders above the root. :meth:`LinkTree.resolve` walks a target
component by component and replaces every component that is a link of the tree by that link's
target (as the kernel does); it answers the path the link leads to relative to the root, or
``None`` when it leaves the root. The client (before sending a context) and the build service
(before extracting one) judge links with this one class, so what one accepts the other accepts.

>>> tree = LinkTree({"s": ".", "dir/up": "../s"})
>>> tree.resolve("a", "s/s/../../etc/shadow") is None
True
>>> tree.resolve("dir/a", "up/file")
'file'
"""

from __future__ import annotations

from collections.abc import Mapping

# The kernel follows at most 40 links in one lookup (ELOOP).
MAX_FOLLOWS = 40
# Components processed over all resolutions of one tree: bounds the work a hostile archive of
# many long link chains can cause (a real context with links spends a few per link).
DEFAULT_BUDGET = 2_000_000


class LinkLoopError(ValueError):
    """Resolving a link follows more links, or takes more steps, than allowed."""


class _Node:
    __slots__ = ("children", "target")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.target: str | None = None


class LinkTree:
    """The links of one tree, ``{path: target}`` with '/'-separated paths relative to the root.

    Components that are not links are taken as folders (a lexical step): only links redirect a
    lookup, so with every link of the tree known, the answer is where the kernel would go.
    """

    def __init__(self, links: Mapping[str, str], *, budget: int = DEFAULT_BUDGET) -> None:
        self._root = _Node()
        self._budget = budget
        for path, target in links.items():
            node = self._root
            for part in path.split("/"):
                node = node.children.setdefault(part, _Node())
            node.target = target

    def resolve(self, link: str, target: str) -> str | None:
        """Where the link at ``link`` pointing to ``target`` leads: a normalized relative path
        ('' is the root), or ``None`` when it leaves the root (absolute targets included)."""
        names: list[str] = []
        nodes: list[_Node | None] = [self._root]
        folder = link.split("/")[:-1]
        self._budget -= len(folder)
        for part in folder:  # the link's own folder, taken literally
            parent = nodes[-1]
            names.append(part)
            nodes.append(parent.children.get(part) if parent is not None else None)
        if target.startswith("/"):
            return None
        pending = _components(target)
        follows = 0
        while pending:
            part = pending.pop()
            self._budget -= 1
            if self._budget < 0:
                raise LinkLoopError("the tree's links take too many steps to resolve")
            if part == "..":
                if not names:
                    return None
                names.pop()
                nodes.pop()
                continue
            parent = nodes[-1]
            node = parent.children.get(part) if parent is not None else None
            if node is not None and node.target is not None:
                follows += 1
                if follows > MAX_FOLLOWS:
                    raise LinkLoopError(f"{link!r} -> {target!r} follows more than "
                                        f"{MAX_FOLLOWS} links")
                if node.target.startswith("/"):
                    return None
                pending.extend(_components(node.target))
                continue
            names.append(part)
            nodes.append(node)
        return "/".join(names)


def _components(path: str) -> list[str]:
    """The components of ``path`` still to process, last first (a stack)."""
    return [part for part in reversed(path.split("/")) if part not in ("", ".")]
