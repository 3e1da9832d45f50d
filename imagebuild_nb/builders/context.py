"""Small build-context sources for builders: in-memory files and a directory plus a Dockerfile.

The Image spec renders its own context (``imagebuild_nb.render``); these serve hand-written
Dockerfiles, tests and plug-ins. Both write deterministic tars (sorted entries, fixed owner and
mtime) so the same files always make the same stream.

>>> import io, tarfile
>>> ctx = InMemoryContext({"Dockerfile": "FROM busybox\\n", "app/x.txt": b"x"})
>>> buf = io.BytesIO(); ctx.write_tar(buf); _ = buf.seek(0)
>>> tarfile.open(fileobj=buf).getnames()
['Dockerfile', 'app/x.txt']
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

_MTIME = 0


def _info(name: str, size: int, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = _MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


@dataclass(frozen=True)
class InMemoryContext:
    """A context made of ``{path in context: content}``."""

    files: Mapping[str, bytes | str] = field(default_factory=dict)

    def write_tar(self, stream: BinaryIO) -> None:
        with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self.files):
                data = self.files[name]
                raw = data.encode() if isinstance(data, str) else data
                tar.addfile(_info(name, len(raw)), io.BytesIO(raw))

    def file_list(self) -> list[str]:
        return sorted(self.files)


@dataclass(frozen=True)
class DirectoryContext:
    """The files under ``root`` plus a Dockerfile given as text (written at ``dockerfile_path``)."""

    root: Path
    dockerfile: str
    dockerfile_path: str = "Dockerfile"

    def _walk(self) -> list[tuple[str, Path]]:
        entries: list[tuple[str, Path]] = []
        for directory, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for filename in filenames:
                path = Path(directory, filename)
                entries.append((path.relative_to(self.root).as_posix(), path))
        return sorted(entries)

    def write_tar(self, stream: BinaryIO) -> None:
        with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            raw = self.dockerfile.encode()
            tar.addfile(_info(self.dockerfile_path, len(raw)), io.BytesIO(raw))
            for name, path in self._walk():
                if name == self.dockerfile_path:
                    continue
                st = path.stat()
                with path.open("rb") as handle:
                    tar.addfile(_info(name, st.st_size, st.st_mode & 0o777), handle)

    def file_list(self) -> list[str]:
        names = {name for name, _ in self._walk()} | {self.dockerfile_path}
        return sorted(names)
