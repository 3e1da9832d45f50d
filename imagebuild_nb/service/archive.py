"""Build-context archives from untrusted clients: limits, safety checks and confined extraction.

An archive is refused (``UnsafeArchiveError``, a 400) when a member has an absolute path, a
``..`` component, a device/FIFO/sparse entry, a name that appears twice, a path below a symlink
or a file, a hard link to anything but an earlier file, or a symlink that leads out of the
context. Links are judged as the kernel will follow them, through every link of the archive
(``imagebuild_nb.spec.links``; the client judges them the same way), so member order changes
nothing. It is refused with ``ArchiveTooLargeError`` (a 413) past the entry count, the unpacked
size (a hard link counts as the copy it extracts to), or the size of its names and extended
headers, which are checked before they are read.

Extraction goes into a folder it creates, one member at a time through directory descriptors
opened with ``O_NOFOLLOW``: no write ever goes through a link, even one this check missed.
Links are created last, as links; nothing here reads through them.

>>> import io, tarfile
>>> buffer = io.BytesIO()
>>> with tarfile.open(fileobj=buffer, mode="w") as tar:
...     info = tarfile.TarInfo("../escape"); tar.addfile(info, io.BytesIO(b""))
>>> _ = buffer.seek(0)
>>> inspect_archive(buffer, ArchiveLimits())
Traceback (most recent call last):
...
imagebuild_nb.service.archive.UnsafeArchiveError: archive member '../escape' has a '..' component
"""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from imagebuild_nb.beneath import open_beneath
from imagebuild_nb.service.bounded_tar import HeaderTooLargeError, RefusedHeaderError, open_bounded
from imagebuild_nb.spec.links import LinkLoopError, LinkTree

_COPY_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeArchiveError(ValueError):
    """The archive tries to write outside its context or holds entries a context never needs."""


class ArchiveTooLargeError(ValueError):
    """The archive exceeds the configured size, file-count or header limits."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int = 50_000
    max_unpacked_bytes: int = 2 * 1024**3
    # One PAX or GNU long-name header, and all names, link targets and headers together.
    max_header_bytes: int = 64 * 1024
    max_metadata_bytes: int = 16 * 1024**2
    max_path_bytes: int = 4096  # PATH_MAX


@dataclass(frozen=True)
class ArchiveSummary:
    files: int
    unpacked_bytes: int


@dataclass(frozen=True)
class _Member:
    name: str  # normalized: no '.', no empty components
    kind: str  # "file" | "dir" | "symlink" | "hardlink"
    info: tarfile.TarInfo
    # Bytes extraction writes: a hard link is written as a copy of its target, so it costs
    # the target's size (its own header says 0).
    size: int = 0


def inspect_archive(fileobj: IO[bytes], limits: ArchiveLimits) -> ArchiveSummary:
    """Check every member of a tar stream; raise on the first unsafe or over-limit one."""
    with _reading(fileobj, limits) as tar:
        members = _inspect(tar, limits)
    return _summary(members)


def extract_archive(path: Path, destination: Path, limits: ArchiveLimits) -> ArchiveSummary:
    """Check, then extract ``path`` into ``destination`` (created here: must not exist yet)."""
    with path.open("rb") as handle, _reading(handle, limits) as tar:
        members = _inspect(tar, limits)
        destination.mkdir(parents=True)
        _extract(tar, members, destination)
    return _summary(members)


@contextmanager
def _reading(fileobj: IO[bytes], limits: ArchiveLimits) -> Iterator[tarfile.TarFile]:
    """Open with bounded headers; every way a hostile stream can fail becomes our error."""
    try:
        with open_bounded(fileobj, max_header_bytes=limits.max_header_bytes,
                          max_metadata_bytes=limits.max_metadata_bytes) as tar:
            yield tar
    except HeaderTooLargeError as error:
        raise ArchiveTooLargeError(str(error)) from None
    except (RefusedHeaderError, LinkLoopError) as error:
        raise UnsafeArchiveError(str(error)) from None
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise UnsafeArchiveError(f"not a valid tar archive: {error}") from None


def _summary(members: list[_Member]) -> ArchiveSummary:
    unpacked = sum(m.size for m in members)
    return ArchiveSummary(files=len(members), unpacked_bytes=unpacked)


def _inspect(tar: tarfile.TarFile, limits: ArchiveLimits) -> list[_Member]:
    members: list[_Member] = []
    kinds: dict[str, str] = {}
    sizes: dict[str, int] = {}  # regular files, for the hard links that copy them
    unpacked = 0
    metadata = 0
    for info in tar:
        if len(members) >= limits.max_files:
            raise ArchiveTooLargeError(f"archive has more than {limits.max_files} entries")
        member = _member(info, limits)
        metadata += len(member.name) + len(info.linkname)
        if metadata > limits.max_metadata_bytes:
            raise ArchiveTooLargeError(
                f"the archive's names and headers exceed {limits.max_metadata_bytes} bytes"
            )
        if member.name in kinds:
            raise UnsafeArchiveError(f"archive member {info.name!r} appears twice")
        if member.kind == "hardlink":
            target = _checked_name(info.linkname, limits)
            if kinds.get(target) != "file":
                raise UnsafeArchiveError(
                    f"archive member {info.name!r} is a hard link to {info.linkname!r}, "
                    "which is not an earlier file of the archive"
                )
            member = _Member(member.name, member.kind, info, sizes[target])
        elif member.kind == "file":
            sizes[member.name] = info.size
        unpacked += member.size
        if unpacked > limits.max_unpacked_bytes:
            raise ArchiveTooLargeError(
                f"archive unpacks to more than {limits.max_unpacked_bytes} bytes "
                "(hard links count as the copies they extract to)"
            )
        kinds[member.name] = member.kind
        members.append(member)
    _check_tree(members, kinds, limits)
    return members


def _member(info: tarfile.TarInfo, limits: ArchiveLimits) -> _Member:
    name = _checked_name(info.name, limits)
    if name == ".":
        kind = "dir" if info.isdir() else ""
        if not kind:
            raise UnsafeArchiveError(f"archive member {info.name!r} replaces the context root")
    elif info.sparse is not None:
        raise UnsafeArchiveError(f"archive member {info.name!r} is a GNU sparse file")
    elif info.isreg():
        return _Member(name, "file", info, info.size)
    elif info.isdir():
        kind = "dir"
    elif info.issym():
        kind = "symlink"
        if len(info.linkname.encode("utf-8", "surrogateescape")) > limits.max_path_bytes:
            raise UnsafeArchiveError(f"archive member {info.name!r} has a link target longer "
                                     f"than {limits.max_path_bytes} bytes")
    elif info.islnk():
        kind = "hardlink"
    else:
        raise UnsafeArchiveError(
            f"archive member {info.name!r} is a device, FIFO or other special entry"
        )
    return _Member(name, kind, info)


def _check_tree(members: list[_Member], kinds: dict[str, str], limits: ArchiveLimits) -> None:
    """Checks that need the whole archive, so that member order changes nothing. Work is
    linear in the archive's path components (no per-member prefix strings)."""
    paths = sorted(name.split("/") for name in kinds if name != ".")
    folders = 0  # every distinct path, implied parent folders included
    previous: list[str] = []
    for parts in paths:
        common = 0
        for mine, theirs in zip(parts, previous, strict=False):
            if mine != theirs:
                break
            common += 1
        if common == len(previous) and previous and kinds["/".join(previous)] != "dir":
            raise UnsafeArchiveError(
                f"archive member {'/'.join(parts)!r} is below the "
                f"{kinds['/'.join(previous)]} {'/'.join(previous)!r}"
            )
        folders += len(parts) - common
        previous = parts
    if folders > limits.max_files:
        raise ArchiveTooLargeError(f"archive has more than {limits.max_files} entries "
                                   "(counting the folders its paths imply)")
    links = {m.name: m.info.linkname for m in members if m.kind == "symlink"}
    tree = LinkTree(links)
    for name, target in links.items():
        if tree.resolve(name, target) is None:
            raise UnsafeArchiveError(
                f"archive member {name!r} is a symlink to {target!r}, which leads outside the "
                "context"
            )


def _checked_name(raw: str, limits: ArchiveLimits) -> str:
    if raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
        raise UnsafeArchiveError(f"archive member {raw!r} has an absolute path")
    if ".." in raw.replace("\\", "/").split("/"):  # a Windows-made '..\\' is refused too
        raise UnsafeArchiveError(f"archive member {raw!r} has a '..' component")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if "\x00" in raw:
        raise UnsafeArchiveError(f"archive member {raw!r} has a NUL byte")
    if len(raw.encode("utf-8", "surrogateescape")) > limits.max_path_bytes:
        raise UnsafeArchiveError(
            f"archive member {raw[:80]!r}... is longer than {limits.max_path_bytes} bytes"
        )
    return "/".join(parts) or "."


def read_inside(root: Path, name: str, max_bytes: int) -> bytes:
    """The regular file ``name`` below ``root`` (an extracted context), opened component by
    component with ``O_NOFOLLOW``: a name that goes through a link is refused, not followed."""
    try:
        descriptor = open_beneath(root, name)
    except ValueError:
        raise UnsafeArchiveError(f"{name!r} is not a relative path inside the context") from None
    except OSError as error:
        raise UnsafeArchiveError(f"the context has no file {name!r} that can be read without "
                                 f"following a link ({error.strerror})") from None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise UnsafeArchiveError(f"{name!r} in the context is not a regular file")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ArchiveTooLargeError(f"{name!r} is larger than {max_bytes} bytes")
    return data


def _extract(tar: tarfile.TarFile, members: list[_Member], destination: Path) -> None:
    folders = _Folders(os.open(destination, _DIR_FLAGS))
    try:
        for member in members:
            if member.kind == "dir":
                folders.open(member.name.split("/") if member.name != "." else [])
            elif member.kind in ("file", "hardlink"):
                _write_file(tar, member, folders)
        for member in members:  # last: nothing is ever written below or through a link
            if member.kind == "symlink":
                *parents, leaf = member.name.split("/")
                os.symlink(member.info.linkname, leaf, dir_fd=folders.open(parents))
    finally:
        folders.close()


def _write_file(tar: tarfile.TarFile, member: _Member, folders: _Folders) -> None:
    *parents, leaf = member.name.split("/")
    source = tar.extractfile(member.info)  # a hard link reads its (checked) target's data
    assert source is not None
    mode = 0o755 if member.info.mode & 0o111 else 0o644
    descriptor = os.open(leaf, _FILE_FLAGS, mode, dir_fd=folders.open(parents))
    with source, os.fdopen(descriptor, "wb") as target:
        os.fchmod(target.fileno(), mode)
        while chunk := source.read(_COPY_CHUNK):
            target.write(chunk)


class _Folders:
    """The open chain of folders from the extraction root to the current one, each opened with
    O_NOFOLLOW from its parent: a path never resolves through a link. Members come mostly
    sorted, so moving to the next member's folder reopens only what differs."""

    def __init__(self, root: int) -> None:
        self._names: list[str] = []
        self._descriptors = [root]

    def open(self, parts: list[str]) -> int:
        common = 0
        for mine, wanted in zip(self._names, parts, strict=False):
            if mine != wanted:
                break
            common += 1
        while len(self._names) > common:
            self._names.pop()
            os.close(self._descriptors.pop())
        for part in parts[common:]:
            parent = self._descriptors[-1]
            try:
                os.mkdir(part, 0o755, dir_fd=parent)
            except FileExistsError:
                pass
            descriptor = os.open(part, _DIR_FLAGS, dir_fd=parent)
            os.fchmod(descriptor, 0o755)
            self._names.append(part)
            self._descriptors.append(descriptor)
        return self._descriptors[-1]

    def close(self) -> None:
        for descriptor in self._descriptors:
            os.close(descriptor)
        self._descriptors.clear()
        self._names.clear()
