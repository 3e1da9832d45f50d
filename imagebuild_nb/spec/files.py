"""File digests with a stat-keyed cache, and the filtered walk of a source folder.

The cache key is (path, size, mtime_ns, ctime_ns, inode, device): any write changes mtime and
ctime, and ``os.utime`` cannot restore ctime. The one case a key cannot see is a same-size edit
inside one timestamp tick (a few ms on Linux); like git's "racy" index entries, a digest is only
cached when the file's mtime is older than ``RACY_WINDOW_NS`` at hashing time, so a file edited
that recently is re-read on every call until it has aged.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"; _ = p.write_text("hi")
>>> file_digest(p)[:12]
'8f434346648f'
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from imagebuild_nb.errors import SpecError
from imagebuild_nb.spec.ignore import DEFAULT_JUNK, IgnoreRules

RACY_WINDOW_NS = 2_000_000_000
_CHUNK = 1 << 20

_CacheKey = tuple[str, int, int, int, int, int]
_cache: dict[_CacheKey, str] = {}
_lock = threading.Lock()


def _key(path: str, st: os.stat_result) -> _CacheKey:
    return (path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _read_digest(path: str) -> str:
    with open(path, "rb") as handle:
        if hasattr(hashlib, "file_digest"):  # Python 3.11+
            return hashlib.file_digest(handle, "sha256").hexdigest()
        hasher = hashlib.sha256()
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            hasher.update(chunk)
        return hasher.hexdigest()


def file_digest(path: str | os.PathLike[str], st: os.stat_result | None = None) -> str:
    """sha256 hex of a file's content, from the cache when its stat key is unchanged."""
    text = os.fspath(path)
    if st is None:
        st = os.stat(text)
    key = _key(text, st)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    started = time.time_ns()
    digest = _read_digest(text)
    if st.st_mtime_ns < started - RACY_WINDOW_NS:
        with _lock:
            _cache[key] = digest
    return digest


def cache_size() -> int:
    return len(_cache)


def clear_cache() -> None:
    with _lock:
        _cache.clear()


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a walked folder; ``path`` is relative and '/'-separated."""

    path: str
    kind: str  # "file" | "dir" | "symlink"
    source: str
    size: int = 0
    executable: bool = False
    digest: str | None = None
    linkname: str | None = None

    @property
    def canonical(self) -> list[object]:
        if self.kind == "file":
            return [self.path, "file", self.executable, self.digest]
        if self.kind == "symlink":
            return [self.path, "symlink", self.linkname]
        return [self.path, "dir"]


def folder_rules(root: Path, extra: IgnoreRules = IgnoreRules()) -> IgnoreRules:
    """Junk defaults, then the folder's own .dockerignore, then rules from with_dockerignore."""
    rules = DEFAULT_JUNK
    own = root / ".dockerignore"
    if own.is_file():
        rules = rules + IgnoreRules.parse(own.read_text(encoding="utf-8", errors="replace"))
    return rules + extra


def walk_tree(root: Path, rules: IgnoreRules, *, argument: str = "src") -> list[TreeEntry]:
    """All non-ignored entries under ``root``, sorted by path, files with their digests."""
    entries = list(_walk(str(root), "", rules, argument))
    entries.sort(key=lambda entry: entry.path)
    return entries


def _walk(top: str, prefix: str, rules: IgnoreRules, argument: str) -> Iterator[TreeEntry]:
    prune = not rules.has_negations
    try:
        scanned = list(os.scandir(top))
    except OSError as error:
        raise SpecError(f"{argument}: cannot read folder {top}: {error.strerror}",
                        argument=argument) from error
    for item in scanned:
        rel = prefix + item.name
        excluded = rules.excluded_direct(rel) if prune else rules.excluded(rel)
        if item.is_dir(follow_symlinks=False):
            if not excluded:
                yield TreeEntry(rel, "dir", item.path)
            if not excluded or not prune:
                yield from _walk(item.path, rel + "/", rules, argument)
            continue
        if excluded:
            continue
        st = item.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            yield TreeEntry(rel, "symlink", item.path, linkname=_safe_link(item.path, rel, argument))
        elif stat.S_ISREG(st.st_mode):
            yield TreeEntry(rel, "file", item.path, size=st.st_size,
                            executable=bool(st.st_mode & 0o111), digest=file_digest(item.path, st))
        # sockets, fifos and devices cannot go into an image context: skipped.


def _safe_link(path: str, rel: str, argument: str) -> str:
    target = os.readlink(path)
    resolved = os.path.normpath(os.path.join(os.path.dirname(rel), target))
    if os.path.isabs(target) or resolved == ".." or resolved.startswith("../"):
        raise SpecError(f"{argument}: symlink {rel!r} -> {target!r} points outside the folder",
                        argument=argument,
                        hint="replace the link with the file, or make it relative and inside "
                        "the folder (or exclude it with a .dockerignore rule)")
    return target


def tree_digest(entries: list[TreeEntry]) -> str:
    """One digest for a walked tree: type-tagged entries, JSON per line (no concatenation games)."""
    hasher = hashlib.sha256(b"imagebuild-nb/tree/v1\n")
    for entry in entries:
        hasher.update(json.dumps(entry.canonical, separators=(",", ":")).encode() + b"\n")
    return hasher.hexdigest()
