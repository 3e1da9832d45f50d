"""Build-context archives from untrusted clients: limits, safety checks and confined extraction.

An archive is refused (``UnsafeArchiveError``, a 400) when a member has an absolute path, a
``..`` component, a symlink or hard link that leaves the context, a device/FIFO entry, or a path
that walks through a symlink; it is refused with ``ArchiveTooLargeError`` (a 413) past the file
count or unpacked size limit. Nothing is written before the whole archive has been checked, and
extraction goes only below the given directory.

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

import posixpath
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO


class UnsafeArchiveError(ValueError):
    """The archive tries to write outside its context or holds entries a context never needs."""


class ArchiveTooLargeError(ValueError):
    """The archive exceeds the configured size or file-count limits."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int = 50_000
    max_unpacked_bytes: int = 2 * 1024**3


@dataclass(frozen=True)
class ArchiveSummary:
    files: int
    unpacked_bytes: int


def inspect_archive(fileobj: IO[bytes], limits: ArchiveLimits) -> ArchiveSummary:
    """Check every member of a tar stream; raise on the first unsafe or over-limit one."""
    try:
        with tarfile.open(fileobj=fileobj, mode="r:*") as tar:
            return _inspect(tar, limits)
    except tarfile.TarError as error:
        raise UnsafeArchiveError(f"not a valid tar archive: {error}") from None


def extract_archive(path: Path, destination: Path, limits: ArchiveLimits) -> ArchiveSummary:
    """Check, then extract ``path`` below ``destination`` (created; must not exist yet)."""
    with path.open("rb") as handle:
        summary = inspect_archive(handle, limits)
    destination.mkdir(parents=True)
    with tarfile.open(path, mode="r:*") as tar:
        # The stdlib "data" filter re-checks what _inspect checked: defence in depth.
        tar.extractall(destination, filter="data")
    return summary


def _inspect(tar: tarfile.TarFile, limits: ArchiveLimits) -> ArchiveSummary:
    files = 0
    unpacked = 0
    symlinks: set[str] = set()
    seen: set[str] = set()
    for member in tar:
        name = _checked_name(member.name)
        files += 1
        if files > limits.max_files:
            raise ArchiveTooLargeError(f"archive has more than {limits.max_files} entries")
        if member.isdev() or member.isfifo() or not (
            member.isfile() or member.isdir() or member.issym() or member.islnk()
        ):
            raise UnsafeArchiveError(f"archive member {member.name!r} is a device or special file")
        for parent in _parents(name):
            if parent in symlinks:
                raise UnsafeArchiveError(
                    f"archive member {member.name!r} is below the symlink {parent!r}"
                )
        if member.issym():
            _check_link_target(member, posixpath.join(posixpath.dirname(name), member.linkname))
            symlinks.add(name)
        elif member.islnk():
            target = _check_link_target(member, member.linkname)
            if target not in seen:
                raise UnsafeArchiveError(
                    f"archive member {member.name!r} is a hard link to {member.linkname!r}, "
                    "which is not an earlier member of the archive"
                )
        elif member.isfile():
            unpacked += member.size
            if unpacked > limits.max_unpacked_bytes:
                raise ArchiveTooLargeError(
                    f"archive unpacks to more than {limits.max_unpacked_bytes} bytes"
                )
        seen.add(name)
    return ArchiveSummary(files=files, unpacked_bytes=unpacked)


def _checked_name(raw: str) -> str:
    if raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
        raise UnsafeArchiveError(f"archive member {raw!r} has an absolute path")
    parts = [part for part in raw.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"archive member {raw!r} has a '..' component")
    if "\x00" in raw:
        raise UnsafeArchiveError(f"archive member {raw!r} has a NUL byte")
    return "/".join(parts) or "."


def _check_link_target(member: tarfile.TarInfo, target: str) -> str:
    if member.linkname.startswith("/"):
        raise UnsafeArchiveError(
            f"archive member {member.name!r} links to the absolute path {member.linkname!r}"
        )
    normalized = posixpath.normpath(target)
    if normalized == ".." or normalized.startswith("../"):
        raise UnsafeArchiveError(
            f"archive member {member.name!r} links to {member.linkname!r}, outside the context"
        )
    return normalized


def _parents(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:index]) for index in range(1, len(parts))]
