"""Reading the user's files: unreadable files and folders give a clear SpecError, never a raw
OSError.

The tests run as root, and root reads a mode-000 file. Unreadable is what a user who is not the
file's owner meets, so the read runs in a forked child that has dropped to ``nobody``: the real
code path, the real kernel refusal.
"""

from __future__ import annotations

import os
import pickle
import shutil
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imagebuild_nb import Image, SpecError

NOBODY = 65534


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder ``nobody`` can enter (pytest's tmp_path sits below a mode-700 folder)."""
    path = Path(tempfile.mkdtemp(prefix="imagebuild-unreadable-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def as_nobody(call: Callable[[], object]) -> BaseException | object:
    """Run ``call`` in a forked child as uid/gid ``nobody``; its result or its exception."""
    if os.geteuid() != 0:
        return call()  # not root: the current user already cannot read the file
    read, write = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns on fork() with threads; the child only reads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: drop to nobody, run, send back what happened, never return
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                outcome: object = call()
            except BaseException as error:  # noqa: BLE001 -- reported to the parent
                outcome = error
            try:
                data = pickle.dumps(outcome)
            except Exception as error:  # noqa: BLE001
                data = pickle.dumps(RuntimeError(f"unpicklable {outcome!r}: {error}"))
            with os.fdopen(write, "wb") as pipe:
                pipe.write(data)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return pickle.loads(data)


def private_file(path: Path, text: str = "secret\n") -> Path:
    path.write_text(text)
    path.chmod(0o600)  # root's own, as a colleague's file is to a notebook user
    return path


def test_an_unreadable_file_in_a_source_folder_is_named_with_the_fix(shared_dir: Path) -> None:
    src = shared_dir / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "ok.py").write_text("x = 1\n")
    private_file(src / "pkg" / "key.pem")
    for path in (src, src / "pkg"):
        path.chmod(0o755)
    image = Image.from_base("busybox:1.36", name="x").with_source_folder(src, dst="/app")

    outcome = as_nobody(lambda: image.uri)
    assert isinstance(outcome, SpecError), outcome
    assert outcome.argument == "src"
    assert str(src / "pkg" / "key.pem") in outcome.message
    assert "Permission denied" in outcome.message
    assert "read" in (outcome.hint or "") and ".dockerignore" in (outcome.hint or "")

    (src / ".dockerignore").write_text("pkg/key.pem\n")  # the hint's fix works
    (src / ".dockerignore").chmod(0o644)
    assert isinstance(as_nobody(lambda: image.uri), str)


def test_an_unreadable_dockerfile_context_file_and_ignore_file(shared_dir: Path) -> None:
    (shared_dir / "Dockerfile").write_text("FROM busybox\n")
    (shared_dir / "Dockerfile").chmod(0o644)
    private_file(shared_dir / ".dockerignore", "*.log\n")
    image = Image.from_dockerfile(shared_dir / "Dockerfile", name="x")
    outcome = as_nobody(lambda: image.uri)
    assert isinstance(outcome, SpecError), outcome
    assert outcome.argument == "context" and ".dockerignore" in outcome.message


def test_an_unreadable_requirements_file(shared_dir: Path) -> None:
    requirements = private_file(shared_dir / "requirements.txt", "six\n")
    image = Image.from_base("busybox:1.36", name="x").with_requirements(requirements)
    outcome = as_nobody(lambda: image.uri)
    assert isinstance(outcome, SpecError), outcome
    assert outcome.argument == "path" and str(requirements) in outcome.message
    assert "moved or deleted" not in (outcome.hint or "")  # it is there; it is not readable


def test_an_unreadable_subfolder(shared_dir: Path) -> None:
    src = shared_dir / "src"
    (src / "private").mkdir(parents=True)
    src.chmod(0o755)
    (src / "private").chmod(0o700)
    image = Image.from_base("busybox:1.36", name="x").with_source_folder(src)
    outcome = as_nobody(lambda: image.uri)
    assert isinstance(outcome, SpecError), outcome
    assert str(src / "private") in outcome.message and outcome.hint


def test_special_files_are_skipped_not_read(tmp_path: Path) -> None:
    """A FIFO would block a read for ever (root included): the walk leaves it out."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    os.mkfifo(src / "pipe")
    assert stat.S_ISFIFO(os.lstat(src / "pipe").st_mode)
    ctx = Image.from_base("busybox:1.36", name="x").with_source_folder(src).build_context()
    assert [e.path for e in ctx.entries if e.path.startswith("layers/0/")] == ["layers/0/a.txt"]
