"""Small build-context sources for builders: in-memory files and a directory plus a Dockerfile.

The Image spec renders its own context (``imagebuild_nb.render``); these serve hand-written
Dockerfiles, tests and plug-ins. Both use the render package's deterministic tar writer
(sorted entries, fixed owner and mtime), so the same files always make the same stream.

>>> import io, tarfile
>>> ctx = InMemoryContext({"Dockerfile": "FROM busybox\\n", "app/x.txt": b"x"})
>>> buf = io.BytesIO(); ctx.write_tar(buf); _ = buf.seek(0)
>>> tarfile.open(fileobj=buf).getnames()
['Dockerfile', 'app/x.txt']
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from imagebuild_nb.render.tar import ContextEntry, write_tar


@dataclass(frozen=True)
class InMemoryContext:
    """A context made of ``{path in context: content}``."""

    files: Mapping[str, bytes | str] = field(default_factory=dict)

    def write_tar(self, stream: BinaryIO) -> None:
        write_tar([ContextEntry.generated(name, _bytes(self.files[name]))
                   for name in sorted(self.files)], stream)

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
        entries = [ContextEntry.generated(self.dockerfile_path, self.dockerfile.encode())]
        for name, path in self._walk():
            if name != self.dockerfile_path:
                st = path.stat()
                entries.append(ContextEntry(name, "file", str(path), st.st_size,
                                            executable=bool(st.st_mode & 0o111)))
        write_tar(entries, stream)

    def file_list(self) -> list[str]:
        names = {name for name, _ in self._walk()} | {self.dockerfile_path}
        return sorted(names)


def _bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data
