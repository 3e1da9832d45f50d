"""Open a file below a folder without following any link on the way.

``O_NOFOLLOW`` guards the last component of a path only: a folder on the way that was swapped
for a link after it was checked would still be followed. Here every component is opened from
its parent's descriptor with ``O_NOFOLLOW``, so a link anywhere below ``root`` fails the open
(``ELOOP`` or ``ENOTDIR``) instead of leading elsewhere. ``root`` itself is opened as named:
it is the folder the user chose. Used by the client's context tar (``render.tar``) and the
service's reads of an extracted context (``service.archive``).

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "d").mkdir(); _ = (root / "d" / "f").write_text("x")
>>> (root / "l").symlink_to("d")
>>> os.close(open_beneath(root, "d/f"))
>>> open_beneath(root, "l/f")
Traceback (most recent call last):
...
NotADirectoryError: [Errno 20] Not a directory: 'l'
"""

from __future__ import annotations

import errno
import os

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO swapped in would otherwise wait for a writer.
LEAF_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# What an open fails with when a link (or a file) is where a folder or the file was.
LINK_ERRNOS = frozenset({errno.ELOOP, errno.ENOTDIR})


def relative_parts(name: str) -> list[str]:
    """``name``'s components; ValueError unless it is a relative path that stays below."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts or ".." in parts or name.startswith("/") or "\x00" in name:
        raise ValueError(f"{name!r} is not a relative path inside the folder")
    return parts


def open_beneath(root: str | os.PathLike[str], name: str) -> int:
    """A read-only descriptor of ``root/name``, no link followed below ``root`` (OSError if
    one is there). The caller checks what it opened (``fstat``) and closes it."""
    parts = relative_parts(name)
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            inner = os.open(part, DIR_FLAGS, dir_fd=folder)
            os.close(folder)
            folder = inner
        return os.open(parts[-1], LEAF_FLAGS, dir_fd=folder)
    finally:
        os.close(folder)
