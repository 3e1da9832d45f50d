"""What a local build holds until it ends, and removing what killed processes left behind.

Each local build works in a scratch directory named after its process,
``imagebuild-build-<pid>-<start>-*`` in the temp folder (``<start>`` tells a reused pid apart).
The Engine-API driver notes there the containers the engine starts for RUN steps (the legacy
builder puts no labels on them, so they are known by id) and the engine they run on. A build
that ends removes its directory. One that cannot -- its process was killed (SIGKILL, the OOM
killer), or the engine went away mid-build -- leaves it, marked ``ended`` in the second case.
:func:`sweep`, run when a local builder first starts in any process, removes the directories of
dead processes and ended builds, after removing the containers they list from the engine they
name (a record for another engine, or one whose engine is down, waits for a later sweep).

>>> with Scratch.create() as scratch:
...     scratch.path.name.startswith(f"imagebuild-build-{os.getpid()}-")
True
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

PREFIX = "imagebuild-build-"
_OURS = re.compile(rf"^{PREFIX}(\d+)-(\d+)-")
# Scratch directories of versions before this one: ``imagebuild-<8 random>`` holding an iidfile.
_OLD = re.compile(r"^imagebuild-[a-z0-9_]{8}$")
_OLD_AGE = 24 * 3600
_CONTAINERS, _ENGINE, _ENDED = "containers", "engine", "ended"


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot; 0 off Linux), None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:  # no /proc (not Linux): alive or not is all we can tell
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0
    return int(stat.rsplit(")", 1)[1].split()[19])


@dataclass
class Scratch:
    """One build's scratch directory; a context manager that removes it unless kept."""

    path: Path

    @classmethod
    def create(cls, folder: str | Path | None = None) -> Scratch:
        pid = os.getpid()
        started = _start_time(pid) or 0
        return cls(Path(tempfile.mkdtemp(prefix=f"{PREFIX}{pid}-{started}-", dir=folder)))

    def note_container(self, engine: str, container_id: str) -> None:
        """Remember a build container until the build has removed it (or a sweep has)."""
        (self.path / _ENGINE).write_text(engine)
        with (self.path / _CONTAINERS).open("a") as notes:
            notes.write(container_id + "\n")

    def keep_for_sweep(self) -> None:
        """The build ended without cleaning up (engine gone): the next sweep finishes it."""
        (self.path / _ENDED).touch()

    def remove(self) -> None:
        if not (self.path / _ENDED).exists():
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.remove()


@dataclass(frozen=True)
class Swept:
    directories: int = 0
    containers: int = 0


def sweep(engine: str, remove_container: Callable[[str], bool],
          folder: str | None = None) -> Swept:
    """Remove what dead processes and ended builds left on ``engine`` (and their folders).

    ``remove_container(id)`` removes one container, True when it is gone (or was never
    there), False when the engine could not be asked: the record then waits for a later sweep.
    """
    root = Path(folder or tempfile.gettempdir())
    directories = containers = 0
    try:
        entries = list(root.iterdir())
    except OSError:
        return Swept()
    for entry in entries:
        if not _abandoned(entry):
            continue
        try:
            listed = _listed(entry)
            if listed and _read(entry / _ENGINE) != engine:
                continue  # another engine's containers: left to a sweep connected there
        except OSError:
            log.warning("not cleaning up %s: its records are not private to this user", entry)
            continue
        removed = [container for container in listed if remove_container(container)]
        containers += len(removed)
        if len(removed) < len(listed):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        directories += 1
        log.info("removed %s left by an earlier build%s", entry,
                 f" and its {len(removed)} build container(s)" if removed else "")
    return Swept(directories, containers)


def _private(path: Path) -> bool:
    """Made by us (this user) and writable by no one else: only then is it read or removed.
    Anyone can create a folder in /tmp; a forged one must not name containers to remove."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022 and not stat.S_ISLNK(
        info.st_mode)


def _abandoned(entry: Path) -> bool:
    ours = _OURS.match(entry.name)
    if ours:
        if not entry.is_dir() or not _private(entry):
            return False
        pid, started = int(ours.group(1)), int(ours.group(2))
        now = _start_time(pid)
        return (entry / _ENDED).exists() or now is None or (started != 0 and now != started)
    if _OLD.match(entry.name):  # an earlier version's: only an iidfile, and long unused
        try:
            stale = time.time() - entry.lstat().st_mtime > _OLD_AGE
            return (stale and entry.is_dir() and not entry.is_symlink()
                    and {child.name for child in entry.iterdir()} <= {"iid"})
        except OSError:
            return False
    return False


def _listed(entry: Path) -> list[str]:
    return [line for line in _read(entry / _CONTAINERS).splitlines() if line.strip()]


def _read(path: Path) -> str:
    if not path.exists() and not path.is_symlink():
        return ""
    if not _private(path):  # a link, or someone else's: ignore the whole record
        raise PermissionError(f"{path} is not private to this user")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd) as file:
        return file.read(1 << 20).strip()

