"""Small build-context sources for builders: in-memory files and a directory plus a Dockerfile.

The Image spec renders its own context (``imagebuild_nb.render``); these serve hand-written
Dockerfiles, tests, plug-ins and the build service (an uploaded context, extracted). Both use
the render package's deterministic tar writer (sorted entries, fixed owner and mtime), so the
same files always make the same stream.

A directory context sends what the folder holds as Docker does: folders (empty ones too),
files, and symlinks as symlinks; it never follows a link, so a link cannot make it read a file
outside the folder, and a remote build gets the same files as a local one.

>>> import io, tarfile
>>> ctx = InMemoryContext({"Dockerfile": "FROM busybox\\n", "app/x.txt": b"x"})
>>> buf = io.BytesIO(); ctx.write_tar(buf); _ = buf.seek(0)
>>> tarfile.open(fileobj=buf).getnames()
['Dockerfile', 'app/x.txt']
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from imagebuild_nb.render.tar import ContextEntry, write_tar
from imagebuild_nb.spec.files import unreadable


@dataclass(frozen=True)
class InMemoryContext:
    """A context made of ``{path in context: content}``."""

    files: Mapping[str, bytes | str] = field(default_factory=dict)

    def write_tar(self, stream: IO[bytes]) -> None:
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

    def _walk(self) -> list[ContextEntry]:
        """Folders, files and links below ``root``, sorted; links read, never followed."""
        entries: list[ContextEntry] = []
        stack = [(str(self.root), "")]
        while stack:
            folder, prefix = stack.pop()
            try:
                with os.scandir(folder) as scan:
                    items = list(scan)
                for item in items:
                    name = prefix + item.name
                    st = item.stat(follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        entries.append(ContextEntry.directory(name))
                        stack.append((item.path, name + "/"))
                    elif stat.S_ISLNK(st.st_mode):
                        entries.append(ContextEntry(name, "symlink",
                                                    linkname=os.readlink(item.path)))
                    elif stat.S_ISREG(st.st_mode):
                        entries.append(ContextEntry(name, "file", item.path, st.st_size,
                                                    executable=bool(st.st_mode & 0o111),
                                                    root=str(self.root)))
                    # sockets, fifos and devices cannot go into a context: left out
            except OSError as error:
                raise unreadable(error.filename or folder, error, "context") from error
        return sorted(entries, key=lambda entry: entry.path)

    def write_tar(self, stream: IO[bytes]) -> None:
        entries = [ContextEntry.generated(self.dockerfile_path, self.dockerfile.encode())]
        entries += [e for e in self._walk() if e.path != self.dockerfile_path]
        write_tar(sorted(entries, key=lambda entry: entry.path), stream)

    def file_list(self) -> list[str]:
        names = {e.path for e in self._walk() if e.kind != "dir"} | {self.dockerfile_path}
        return sorted(names)


def _bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data
