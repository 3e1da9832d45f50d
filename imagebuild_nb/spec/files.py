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

import gc
import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import NamedTuple
from pathlib import Path

from imagebuild_nb.errors import SpecError
from imagebuild_nb.spec.ignore import DEFAULT_JUNK, IgnoreRules

RACY_WINDOW_NS = 2_000_000_000
_CHUNK = 1 << 20
_PARALLEL_MIN = 64
_PARALLEL_MIN_AVERAGE = 1 << 20  # bytes per file before threads help
_MAX_WORKERS = 4

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


class TreeEntry(NamedTuple):
    """One entry of a walked folder; ``path`` is relative and '/'-separated.

    A NamedTuple rather than a dataclass: a walk creates tens of thousands of them.
    """

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
    with _collector_paused():
        entries, pending = _walk(str(root), rules, argument)
        entries.extend(_digest_all(pending))
        entries.sort()
    return entries


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A walk allocates tens of thousands of tuples and no reference cycles; the cyclic
    collector would scan them again and again (20k files: 25% of a first hash, 30% of a
    cached one, measured here)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_Pending = tuple[str, str, os.stat_result]


def _walk(top: str, rules: IgnoreRules,
          argument: str) -> tuple[list[TreeEntry], list[_Pending]]:
    prune = not rules.has_negations
    excluded = rules.excluded_direct if prune else rules.excluded
    entries: list[TreeEntry] = []
    pending: list[_Pending] = []
    stack = [(top, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            scanned = list(os.scandir(folder))
        except OSError as error:
            raise SpecError(f"{argument}: cannot read folder {folder}: {error.strerror}",
                            argument=argument) from error
        for item in scanned:
            rel = prefix + item.name
            skip = excluded(rel)
            if item.is_dir(follow_symlinks=False):
                if not skip:
                    entries.append(TreeEntry(rel, "dir", item.path))
                if not skip or not prune:
                    stack.append((item.path, rel + "/"))
                continue
            if skip:
                continue
            st = item.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                pending.append((rel, item.path, st))
            elif stat.S_ISLNK(st.st_mode):
                entries.append(TreeEntry(rel, "symlink", item.path,
                                         linkname=_safe_link(item.path, rel, argument)))
            # sockets, fifos and devices cannot go into an image context: skipped.
    return entries, pending


def _digest_all(pending: list[_Pending]) -> list[TreeEntry]:
    """Digests for walked files: cache hits inline, misses hashed here or on a few threads.

    hashlib releases the GIL while it hashes, so threads pay off for large files only: for
    20,000 files of 15 KB on 2 cores, two threads took 1.3x as long as one (GIL hand-offs).
    """
    digests: list[str | None] = [_cache.get(_key(path, st)) for _, path, st in pending]
    misses = [i for i, digest in enumerate(digests) if digest is None]
    missed_bytes = sum(pending[i][2].st_size for i in misses)
    if len(misses) > _PARALLEL_MIN and missed_bytes >= _PARALLEL_MIN_AVERAGE * len(misses):
        workers = min(_MAX_WORKERS, os.cpu_count() or 1)
        slices = [misses[w::workers] for w in range(workers)]

        def work(indexes: list[int]) -> None:
            for i in indexes:
                digests[i] = file_digest(pending[i][1], pending[i][2])

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(work, slices):
                pass
    else:
        for i in misses:
            digests[i] = file_digest(pending[i][1], pending[i][2])
    return [TreeEntry(rel, "file", path, st.st_size, bool(st.st_mode & 0o111), digest)
            for (rel, path, st), digest in zip(pending, digests)]


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
    """One digest for a walked tree: a versioned JSON list of type-tagged entries."""
    encoded = json.dumps(["imagebuild-nb/tree/v1", [entry.canonical for entry in entries]],
                         separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()
