"""A deterministic, streaming tar of a build context.

Entries come sorted, with fixed mtime/uid/gid/owner names and normalised modes (0755 for
folders and executables, 0644 otherwise), so the same context gives the same bytes on any
machine. File contents are streamed from the source files (never copied to a temporary
place) and checked against the size and digest recorded when the context was resolved: a file
edited mid-upload fails the upload instead of building something the tag does not describe.
A file is opened without following a link and must still be a regular file: a file of a walked
folder is opened component by component below the folder (``imagebuild_nb.beneath``), so a file
or any folder on its way swapped for a link after the walk fails the upload before any of the
link's target is read.

>>> import io
>>> data = b"".join(iter_tar([ContextEntry.generated("Dockerfile", b"FROM scratch\\n")]))
>>> len(data) % 512, tarfile.open(fileobj=io.BytesIO(data)).getnames()
(0, ['Dockerfile'])
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO

from imagebuild_nb.beneath import LINK_ERRNOS, open_beneath
from imagebuild_nb.errors import ImageBuildError

FIXED_MTIME = 0
_BLOCK = 512
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ContextEntry:
    """One member of the build context: ``path`` in the tar, ``source`` on disk (or ``data``)."""

    path: str
    kind: str  # "file" | "dir" | "symlink"
    source: str | None = None
    size: int = 0
    digest: str | None = None
    executable: bool = False
    linkname: str | None = None
    data: bytes | None = None
    # The walked folder ``source`` is below: the rest of its path is opened following no link.
    root: str | None = None

    @classmethod
    def generated(cls, path: str, data: bytes) -> ContextEntry:
        return cls(path, "file", None, len(data), hashlib.sha256(data).hexdigest(), data=data)

    @classmethod
    def directory(cls, path: str) -> ContextEntry:
        return cls(path, "dir")


def _header(entry: ContextEntry) -> bytes:
    info = tarfile.TarInfo(entry.path)
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if entry.kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif entry.kind == "symlink":
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, entry.linkname or ""
    else:
        info.type, info.size = tarfile.REGTYPE, entry.size
        info.mode = 0o755 if entry.executable else 0o644
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


class ContextChangedError(ImageBuildError):
    """A context file changed between resolving the spec and sending the context."""


def _file_chunks(entry: ContextEntry, chunk_size: int) -> Iterator[bytes]:
    if entry.data is not None:
        yield entry.data
        return
    assert entry.source is not None
    hasher = hashlib.sha256()
    remaining = entry.size
    with _open_regular(entry.source, entry.root) as handle:
        while remaining > 0:
            chunk = handle.read(min(chunk_size, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            hasher.update(chunk)
            yield chunk
        grew = bool(handle.read(1))
    if remaining or grew or (entry.digest and hasher.hexdigest() != entry.digest):
        raise ContextChangedError(
            f"{entry.source} changed while the build context was being sent",
            hint="build again: the tag will be recomputed from the new contents",
        )


def _open_regular(path: str, root: str | None = None) -> BinaryIO:
    """Open a context file for reading: never through a link below ``root`` (without a root:
    never through a final link), never a FIFO or device."""
    try:
        if root is not None:
            descriptor = open_beneath(root, os.path.relpath(path, root))
        else:
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno in LINK_ERRNOS:
            raise ContextChangedError(
                f"{path} or a folder on its way became a symlink after the build context was "
                "resolved",
                hint="build again: links in a folder are sent as links, never followed",
            ) from None
        hint = ("let the user running Python read it, or leave it out with a .dockerignore rule"
                if error.errno in (errno.EACCES, errno.EPERM) else
                "build again: the tag will be recomputed from the files as they are now")
        raise ContextChangedError(f"cannot read {path} to send it: {error.strerror}",
                                  hint=hint) from None
    handle = os.fdopen(descriptor, "rb")
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        handle.close()
        raise ContextChangedError(f"{path} is no longer a regular file",
                                  hint="build again: the tag will be recomputed")
    return handle


def iter_tar(entries: Iterable[ContextEntry], chunk_size: int = _CHUNK) -> Iterator[bytes]:
    """Yield the tar archive of ``entries`` (in the given order) as byte chunks."""
    buffer = bytearray()
    for entry in entries:
        buffer += _header(entry)
        if entry.kind == "file":
            for chunk in _file_chunks(entry, chunk_size):
                buffer += chunk
                if len(buffer) >= chunk_size:
                    yield bytes(buffer)
                    buffer.clear()
            padding = -entry.size % _BLOCK
            buffer += b"\0" * padding
        if len(buffer) >= chunk_size:
            yield bytes(buffer)
            buffer.clear()
    buffer += b"\0" * (2 * _BLOCK)
    yield bytes(buffer)


def write_tar(entries: Iterable[ContextEntry], fileobj: IO[bytes]) -> int:
    """Write the archive to a binary file object; returns the number of bytes written."""
    written = 0
    for chunk in iter_tar(entries):
        fileobj.write(chunk)
        written += len(chunk)
    return written


class TarStream:
    """A read-only file object over :func:`iter_tar`, for APIs that want ``fileobj``.

    Iterating yields chunks (``requests`` then streams it chunked, as docker-py's
    ``api.build(fileobj=..., custom_context=True)`` does); ``read(n)`` serves subprocess pipes.
    """

    def __init__(self, entries: Iterable[ContextEntry], chunk_size: int = _CHUNK) -> None:
        self._chunks = iter_tar(entries, chunk_size)
        self._pending = b""

    def __iter__(self) -> Iterator[bytes]:
        if self._pending:
            pending, self._pending = self._pending, b""
            yield pending
        yield from self._chunks

    def read(self, size: int = -1) -> bytes:
        parts = [self._pending]
        have = len(self._pending)
        while size < 0 or have < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        if size < 0:
            self._pending = b""
            return data
        self._pending = data[size:]
        return data[:size]

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._chunks.close()  # type: ignore[attr-defined]
