"""The build context: sorted entries, deterministic streaming tar, no symlink escapes."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from imagebuild_nb import Image, SpecError
from imagebuild_nb.render import ContextChangedError, TarStream, iter_tar


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "pkg" / "__pycache__").mkdir(parents=True)
    (src / "pkg" / "mod.py").write_text("x = 1\n")
    (src / "pkg" / "__pycache__" / "mod.pyc").write_bytes(b"junk")
    (src / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(src / "run.sh", 0o775)
    (src / "empty").mkdir()
    (src / "link").symlink_to("pkg/mod.py")
    (tmp_path / "requirements.txt").write_text("six\n")
    return tmp_path


def image(tree: Path) -> Image:
    return (Image.from_debian_base(name="x")
            .with_requirements(tree / "requirements.txt")
            .with_source_folder(tree / "src", dst="/app"))


def members(data: bytes) -> list[tarfile.TarInfo]:
    return tarfile.open(fileobj=io.BytesIO(data)).getmembers()


def test_entries_sorted_with_dockerfile_and_layer_files(tree: Path) -> None:
    ctx = image(tree).build_context()
    paths = [e.path for e in ctx.entries]
    assert paths == sorted(paths)
    assert paths == ["Dockerfile", "layers", "layers/0", "layers/0/requirements.txt", "layers/1",
                     "layers/1/empty", "layers/1/link", "layers/1/pkg", "layers/1/pkg/mod.py",
                     "layers/1/run.sh"]
    mod = next(e for e in ctx.entries if e.path.endswith("mod.py"))
    assert mod.source == str(tree / "src" / "pkg" / "mod.py")
    assert mod.digest == hashlib.sha256(b"x = 1\n").hexdigest() and mod.size == 6


def test_tar_is_deterministic_and_normalised(tree: Path, tmp_path: Path) -> None:
    data = b"".join(image(tree).build_context().iter_tar())
    copy = tmp_path / "copy"
    shutil.copytree(tree, copy, symlinks=True)
    os.chmod(copy / "src" / "run.sh", 0o700)  # another umask: only the exec bit matters
    assert b"".join(image(copy).build_context().iter_tar()) == data
    infos = {m.name: m for m in members(data)}
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "root"
               for m in infos.values())
    assert infos["layers/1/run.sh"].mode == 0o755
    assert infos["layers/1/pkg/mod.py"].mode == 0o644
    assert infos["layers/1/link"].issym() and infos["layers/1/link"].linkname == "pkg/mod.py"
    assert infos["layers/1/empty"].isdir()
    tar = tarfile.open(fileobj=io.BytesIO(data))
    assert tar.extractfile("Dockerfile").read().decode() == image(tree).dockerfile()  # type: ignore[union-attr]


def test_tar_stream_file_object_matches_iterator(tree: Path) -> None:
    ctx = image(tree).build_context()
    whole = b"".join(ctx.iter_tar())
    stream = TarStream(ctx.entries, chunk_size=700)
    parts = []
    while chunk := stream.read(333):
        parts.append(chunk)
    assert b"".join(parts) == whole
    assert b"".join(TarStream(ctx.entries)) == whole
    out = io.BytesIO()
    assert ctx.write_tar(out) == len(whole) and out.getvalue() == whole


def test_large_file_streams_in_chunks(tmp_path: Path) -> None:
    (tmp_path / "big").mkdir()
    payload = os.urandom(3 << 20)
    (tmp_path / "big" / "blob").write_bytes(payload)
    ctx = Image.from_debian_base(name="x").with_source_folder(tmp_path / "big").build_context()
    chunks = list(ctx.iter_tar())
    assert max(len(c) for c in chunks) < (1 << 20) + 8192
    tar = tarfile.open(fileobj=io.BytesIO(b"".join(chunks)))
    assert tar.extractfile("layers/0/blob").read() == payload  # type: ignore[union-attr]


def test_file_changed_after_resolving_fails_the_stream(tree: Path) -> None:
    ctx = image(tree).build_context()
    (tree / "src" / "pkg" / "mod.py").write_text("x = 2\n")
    with pytest.raises(ContextChangedError, match="changed"):
        b"".join(ctx.iter_tar())
    (tree / "src" / "pkg" / "mod.py").write_text("x = 22\n")
    with pytest.raises(ContextChangedError):
        b"".join(ctx.iter_tar())


def test_a_file_swapped_for_a_link_after_resolving_is_never_read_through(tree: Path) -> None:
    secret = tree / "secret.txt"
    secret.write_text("x = 9\n")  # same size as mod.py: only the content check could see it
    ctx = image(tree).build_context()
    mod = tree / "src" / "pkg" / "mod.py"
    mod.unlink()
    mod.symlink_to(secret)
    sent = bytearray()
    with pytest.raises(ContextChangedError, match="symlink"):
        for chunk in iter_tar(ctx.entries, chunk_size=1):  # every byte leaves as it is read
            sent += chunk
    assert b"x = 9" not in sent


def test_a_folder_swapped_for_a_link_after_resolving_is_never_read_through(
    tree: Path, tmp_path: Path,
) -> None:
    """O_NOFOLLOW guards the last component only: a parent folder swapped for a link must fail
    the upload before any byte of the file it now leads to leaves."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mod.py").write_text("x = 9\n")  # same size: only the digest could see it
    ctx = image(tree).build_context()
    (tree / "src" / "pkg").rename(tree / "src" / "pkg-moved")
    (tree / "src" / "pkg").symlink_to(elsewhere)
    sent = bytearray()
    with pytest.raises(ContextChangedError, match="link"):
        for chunk in iter_tar(ctx.entries, chunk_size=1):  # every byte leaves as it is read
            sent += chunk
    assert b"x = 9" not in sent


def test_a_directory_context_never_reads_through_a_swapped_folder(tmp_path: Path) -> None:
    from imagebuild_nb.builders.context import DirectoryContext

    root = tmp_path / "context"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f").write_text("public\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "f").write_text("secret\n")
    context = DirectoryContext(root, "FROM scratch\n")
    entries = context._walk()
    (root / "sub").rename(root / "sub-moved")
    (root / "sub").symlink_to(tmp_path / "elsewhere")
    sent = bytearray()
    with pytest.raises(ContextChangedError, match="link"):
        for chunk in iter_tar(entries, chunk_size=1):
            sent += chunk
    assert b"secret" not in sent


@pytest.mark.parametrize("target", ["/etc/passwd", "../../outside", "pkg/../../x"])
def test_symlink_escapes_are_refused(tree: Path, target: str) -> None:
    (tree / "src" / "evil").symlink_to(target)
    with pytest.raises(SpecError, match="outside the folder") as info:
        _ = image(tree).uri
    assert info.value.argument == "src"


def test_a_link_chain_through_the_folder_own_links_is_refused(tree: Path) -> None:
    """``s -> .`` makes ``s/s/../..`` climb two folders although it reads as staying put."""
    secret = tree / "secret.txt"
    secret.write_text("host secret")
    (tree / "src" / "s").symlink_to(".")
    depth = len((tree / "src").parts) + 2
    chain = "/".join(["s"] * depth + [".."] * depth) + str(secret)
    (tree / "src" / "a").symlink_to(chain)
    assert (tree / "src" / "a").read_text() == "host secret"  # the kernel does climb out
    with pytest.raises(SpecError, match="'a'.*outside the folder") as info:
        _ = image(tree).uri
    assert info.value.argument == "src"


def test_links_inside_the_folder_are_sent_as_links(tree: Path) -> None:
    (tree / "src" / "s").symlink_to(".")
    (tree / "src" / "pkglink").symlink_to("s/pkg")
    (tree / "src" / "pkg" / "up").symlink_to("../s/run.sh")
    entries = {e.path: e for e in image(tree).build_context().entries}
    assert entries["layers/1/pkglink"].kind == "symlink"
    assert entries["layers/1/pkglink"].linkname == "s/pkg"
    assert entries["layers/1/pkg/up"].linkname == "../s/run.sh"
    assert not any(path.startswith("layers/1/pkglink/") for path in entries)
    infos = {m.name: m for m in members(b"".join(image(tree).build_context().iter_tar()))}
    assert infos["layers/1/s"].issym() and infos["layers/1/s"].linkname == "."
    assert infos["layers/1/pkg/up"].issym() and infos["layers/1/pkg/up"].size == 0


def test_dockerfile_context_is_the_root_and_dockerfile_cannot_collide(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY . /ctx\n")
    (tmp_path / ".imagebuild-nb").mkdir()
    (tmp_path / ".imagebuild-nb" / "Dockerfile").write_text("user file\n")
    (tmp_path / ".dockerignore").write_text("secret.txt\n")
    (tmp_path / "secret.txt").write_text("no\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref\n")
    ctx = Image.from_dockerfile(tmp_path / "Dockerfile", name="x").build_context()
    paths = [e.path for e in ctx.entries]
    assert ctx.dockerfile_path == ".imagebuild-nb-1/Dockerfile"
    assert ".imagebuild-nb/Dockerfile" in paths and "Dockerfile" in paths
    assert "secret.txt" not in paths and not any(p.startswith(".git/") for p in paths)


def test_dockerfile_outside_the_context(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "app.Dockerfile").write_text("FROM busybox\n")
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "f").write_text("f\n")
    img = Image.from_dockerfile(tmp_path / "docker" / "app.Dockerfile", name="x",
                                context=tmp_path / "ctx")
    ctx = img.build_context()
    assert [e.path for e in ctx.entries] == [".imagebuild-nb", ".imagebuild-nb/Dockerfile", "f"]


def test_summary_lists_files_without_contents(tree: Path) -> None:
    summary = image(tree).build_context().summary()
    assert summary["files"] == 4 and summary["uri"] == image(tree).uri
    assert ["layers/0/requirements.txt", "file", 4,
            hashlib.sha256(b"six\n").hexdigest()] in summary["entries"]
