"""Directory contexts send what the folder holds, links as links; remote builds of a folder with
links give the same image files as local ones."""

from __future__ import annotations

import hashlib
import io
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from imagebuild_nb.builders import DirectoryContext
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.settings import Settings
from imagebuild_nb.spec.image import Image
from tests.service.conftest import ServiceProcess, start_service  # noqa: F401 -- fixture


def linked_folder(root: Path) -> Path:
    """A folder with a file, a file link, a folder link, a link chain, an empty folder and a
    dangling link."""
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "f.txt").write_text("in d\n")
    (root / "d" / "sub" / "g.txt").write_text("in sub\n")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "empty").mkdir()
    (root / "fl").symlink_to("d/f.txt")
    (root / "dl").symlink_to("d")
    (root / "s").symlink_to(".")
    (root / "d" / "up").symlink_to("../s/d/sub/g.txt")
    (root / "dangling").symlink_to("nowhere")
    return root


def tar_members(context: DirectoryContext) -> dict[str, tuple[str, str]]:
    buffer = io.BytesIO()
    context.write_tar(buffer)
    buffer.seek(0)
    out = {}
    with tarfile.open(fileobj=buffer) as tar:
        for info in tar:
            if info.issym():
                out[info.name] = ("link", info.linkname)
            elif info.isdir():
                out[info.name] = ("dir", "")
            else:
                data = tar.extractfile(info).read()  # type: ignore[union-attr]
                out[info.name] = ("file", data.decode())
    return out


def test_a_directory_context_sends_links_as_links_and_keeps_empty_folders(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("HOST SECRET\n")
    folder = linked_folder(tmp_path / "ctx")
    (folder / "out").symlink_to(secret)
    context = DirectoryContext(folder, "FROM scratch\n")
    members = tar_members(context)
    assert members["fl"] == ("link", "d/f.txt")
    assert members["dl"] == ("link", "d")
    assert members["s"] == ("link", ".")
    assert members["d/up"] == ("link", "../s/d/sub/g.txt")
    assert members["out"] == ("link", str(secret))
    assert members["empty"] == ("dir", "")
    assert members["d/f.txt"] == ("file", "in d\n")
    assert members["Dockerfile"] == ("file", "FROM scratch\n")
    assert not any(name.startswith(("dl/", "s/")) for name in members)
    assert "HOST SECRET" not in repr(members)
    assert "fl" in context.file_list() and "empty" not in context.file_list()


def test_a_directory_context_never_opens_a_file_swapped_for_a_link(tmp_path: Path) -> None:
    """Walk, then swap a file for a link to a secret before the send: refused, not followed."""
    from imagebuild_nb.render import ContextChangedError, iter_tar
    from imagebuild_nb.render.tar import ContextEntry

    secret = tmp_path / "secret.txt"
    secret.write_text("HOST SECRET\n")
    folder = tmp_path / "ctx"
    folder.mkdir()
    (folder / "a.txt").write_text("plain\n")
    entries = DirectoryContext(folder, "FROM scratch\n")._walk()
    assert [e.kind for e in entries] == ["file"]
    (folder / "a.txt").unlink()
    (folder / "a.txt").symlink_to(secret)
    sent = bytearray()
    with pytest.raises(ContextChangedError):
        for chunk in iter_tar([ContextEntry(e.path, e.kind, e.source, len("HOST SECRET\n"))
                               for e in entries], chunk_size=1):
            sent += chunk
    assert b"HOST SECRET" not in sent


def image_files(client: docker.DockerClient, uri: str, under: str) -> dict[str, tuple[str, ...]]:
    """Every entry below ``under`` in the image's filesystem (docker export): kind, mode, link
    target or content digest."""
    container = client.containers.create(uri, command=["true"],
                                         labels={"imagebuild-nb-test": uuid.uuid4().hex})
    try:
        stream = io.BytesIO(b"".join(container.export()))
    finally:
        container.remove(force=True)
    out: dict[str, tuple[str, ...]] = {}
    with tarfile.open(fileobj=stream) as tar:
        for info in tar:
            if not info.name.startswith(under):
                continue
            mode = oct(info.mode & 0o777)
            if info.issym():
                out[info.name] = ("link", info.linkname)
            elif info.isdir():
                out[info.name] = ("dir", mode)
            else:
                data = tar.extractfile(info).read()  # type: ignore[union-attr]
                out[info.name] = ("file", mode, hashlib.sha256(data).hexdigest()[:16])
    return out


@pytest.mark.engine
@pytest.mark.slow
def test_local_and_remote_builds_of_one_tag_have_the_same_files(
    start_service: Callable[..., ServiceProcess], busybox_base: str, tmp_path: Path,  # noqa: F811 -- fixture
    docker_client: docker.DockerClient, remove_images: list[str], unique_name: str,
) -> None:
    folder = linked_folder(tmp_path / "src")
    service = start_service()  # the service host's default driver, as builder="local" picks
    local = Image.from_base(busybox_base, name=unique_name + "-local").with_source_folder(
        folder, dst="/app")
    remote = Image.from_base(busybox_base, name=unique_name + "-remote").with_source_folder(
        folder, dst="/app")
    assert local.uri.rsplit(":", 1)[1] == remote.uri.rsplit(":", 1)[1]  # one content tag
    remove_images.extend([local.uri, remote.uri])

    engine = ImageBuildEngine(Settings.from_env(remote_url=service.url,
                                                remote_token=service.token))
    assert engine.build(local, builder="local").status == "built"
    assert engine.build(remote, builder="remote").status == "built"

    local_files = image_files(docker_client, local.uri, "app/")
    remote_files = image_files(docker_client, remote.uri, "app/")
    assert local_files["app/fl"] == ("link", "d/f.txt")
    assert local_files["app/dl"] == ("link", "d")
    assert local_files["app/d/up"] == ("link", "../s/d/sub/g.txt")
    assert local_files["app/empty"][0] == "dir"
    assert remote_files == local_files
