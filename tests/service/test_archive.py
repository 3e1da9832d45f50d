"""Build-context archives from untrusted clients: links judged as the kernel follows them,
extraction that never goes through a link, bounded memory on hostile headers.

The first part calls ``service.archive`` directly; the second sends the same archives to the
real service over HTTP.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import time
import tracemalloc
import uuid
from pathlib import Path

import httpx
import pytest

from imagebuild_nb.events import BuildFailed, BuildFinished
from imagebuild_nb.service.archive import (
    ArchiveLimits,
    ArchiveTooLargeError,
    UnsafeArchiveError,
    extract_archive,
    inspect_archive,
)
from tests.service.conftest import ServiceProcess

MiB = 1024**2


# -- archives ---------------------------------------------------------------------------------

def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b"",
          mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode = kind, link, len(data), mode
    return info, data


def archive(*entries: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def link(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    return entry(name, tarfile.SYMTYPE, target)


def chain_to(path: str, depth: int = 24) -> str:
    """``s/s/.../../..`` + path: reads as ``path`` inside, climbs ``depth`` folders with s -> ."""
    return "/".join(["s"] * depth + [".."] * depth) + "/" + path.lstrip("/")


def check(data: bytes, limits: ArchiveLimits = ArchiveLimits()) -> None:
    inspect_archive(io.BytesIO(data), limits)


def header_block(name: str, kind: bytes, size: int) -> bytes:
    """One raw ustar header declaring ``size`` bytes of content (content not included)."""
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    return info.tobuf(tarfile.USTAR_FORMAT)


def gzip_bomb(kind: bytes, size: int) -> bytes:
    """A gzip stream of one ``kind`` header (PAX 'x', GNU 'L') holding ``size`` bytes, then a
    file: megabytes compressed, ``size`` bytes unpacked. Built from one compressed MiB repeated
    (gzip members concatenate), so making it takes milliseconds."""
    prefix = f"{size} comment=".encode() if kind == tarfile.XHDTYPE else b""
    body_len = size - len(prefix) - 1
    full, rest = divmod(body_len, MiB)
    filler = gzip.compress(b"a" * MiB, compresslevel=9)
    parts: list[bytes] = [gzip.compress(header_block("././@bomb", kind, size) + prefix)]
    parts += [filler] * full
    tail = b"a" * rest + b"\n" + b"\0" * (-size % 512)
    tail += archive(entry("Dockerfile", data=b"FROM scratch\n"))
    parts.append(gzip.compress(tail))
    return b"".join(parts)


# -- the archive module ---------------------------------------------------------------------

SECRET_PATH = "/etc/imagebuild-test-secret"


@pytest.mark.parametrize("order", ["a first", "s first"])
def test_a_link_chain_through_the_archive_own_links_is_refused(order: str) -> None:
    members = [link("a", chain_to(SECRET_PATH)), link("s", ".")]
    if order == "s first":
        members.reverse()
    with pytest.raises(UnsafeArchiveError, match="'a'.*outside"):
        check(archive(entry("Dockerfile", data=b"FROM scratch\n"), *members))


@pytest.mark.parametrize(
    "members",
    [
        [entry("f", data=b"x"), entry("f/g", data=b"y")],
        [entry("l/x", data=b"x"), link("l", "d")],
        [link("l", "d"), entry("l/x", data=b"x")],
        [entry("f", data=b"x"), entry("f", data=b"y")],
        [entry("d", tarfile.DIRTYPE), link("d", "/etc")],
        [link("a", "b"), link("b", "a")],
    ],
    ids=["below a file", "below a later link", "below a link", "twice", "dir then link",
         "loop"],
)
def test_members_that_would_go_through_a_link_or_clash_are_refused(
    members: list[tuple[tarfile.TarInfo, bytes]],
) -> None:
    with pytest.raises(UnsafeArchiveError):
        check(archive(*members))


def test_extraction_keeps_links_as_links_and_never_writes_through_them(tmp_path: Path) -> None:
    data = archive(
        entry("Dockerfile", data=b"FROM scratch\n"),
        entry("d", tarfile.DIRTYPE, mode=0o700),
        entry("d/f", data=b"content"),
        entry("d/run.sh", data=b"#!/bin/sh\n", mode=0o700),
        entry("empty", tarfile.DIRTYPE),
        link("dl", "d"),
        link("fl", "d/f"),
        link("s", "."),
        link("deep", "s/s/d/../d/f"),
        entry("implicit/parent/x", data=b"x"),
        entry("hard", tarfile.LNKTYPE, "d/f"),
        entry("back\\slash", data=b"b"),
    )
    path = tmp_path / "context.tar"
    path.write_bytes(data)
    summary = extract_archive(path, tmp_path / "out", ArchiveLimits())
    out = tmp_path / "out"
    assert summary.files == 12
    assert not (out / "hard").is_symlink() and (out / "hard").read_bytes() == b"content"
    assert (out / "back\\slash").read_bytes() == b"b"  # a Linux name, not a folder
    assert (out / "d" / "f").read_bytes() == b"content"
    assert stat.S_IMODE((out / "d").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "d" / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "d" / "f").stat().st_mode) == 0o644
    assert (out / "empty").is_dir() and not any((out / "empty").iterdir())
    for name, target in {"dl": "d", "fl": "d/f", "s": ".", "deep": "s/s/d/../d/f"}.items():
        assert (out / name).is_symlink() and os.readlink(out / name) == target
    assert (out / "deep").read_bytes() == b"content"
    assert (out / "implicit" / "parent" / "x").read_bytes() == b"x"


def hard_link_bomb(links: int = 100) -> bytes:
    """A few KB of .tar.gz: one 8 MiB file and ``links`` hard links to it. Each link extracts
    as another 8 MiB, so the file's size alone says nothing about the bytes written."""
    members = [entry("big", data=b"\0" * (8 * MiB))]
    members += [entry(f"h{i}", tarfile.LNKTYPE, "big") for i in range(links)]
    return gzip.compress(archive(*members), compresslevel=9)


def test_hard_links_count_towards_the_unpacked_size(tmp_path: Path) -> None:
    bomb = hard_link_bomb()
    assert len(bomb) < 64 * 1024
    limits = ArchiveLimits(max_unpacked_bytes=16 * MiB)
    with pytest.raises(ArchiveTooLargeError, match="unpacks to more than"):
        check(bomb, limits)
    path = tmp_path / "bomb.tar.gz"
    path.write_bytes(bomb)
    with pytest.raises(ArchiveTooLargeError, match="unpacks to more than"):
        extract_archive(path, tmp_path / "out", limits)
    assert not (tmp_path / "out").exists()
    path.write_bytes(hard_link_bomb(links=1))  # the file and one link: 16 MiB, within
    summary = extract_archive(path, tmp_path / "ok", limits)
    assert summary.unpacked_bytes == 16 * MiB
    assert (tmp_path / "ok" / "h0").stat().st_size == 8 * MiB


def test_extraction_into_an_existing_folder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "context.tar"
    path.write_bytes(archive(entry("a", data=b"x")))
    (tmp_path / "out").symlink_to("/tmp")
    with pytest.raises(FileExistsError):
        extract_archive(path, tmp_path / "out", ArchiveLimits())


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                                  tarfile.GNUTYPE_LONGLINK])
def test_a_huge_extended_header_is_refused_with_bounded_memory(kind: bytes) -> None:
    bomb = gzip_bomb(kind, 256 * MiB)
    assert len(bomb) < 2 * MiB
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveTooLargeError, match="header"):
            check(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB, f"peak {peak / MiB:.0f} MiB while refusing a 256 MiB header"


def test_many_headers_within_the_per_header_bound_still_hit_the_archive_bound() -> None:
    limits = ArchiveLimits(max_header_bytes=4096, max_metadata_bytes=64 * 1024)
    members = [entry(f"{i:04d}-" + "n" * 3000, data=b"x") for i in range(40)]
    with pytest.raises(ArchiveTooLargeError, match="names and headers"):
        check(archive(*members), limits)
    check(archive(*members[:10]), limits)


def test_chained_extended_headers_are_refused() -> None:
    block = header_block("././@x", tarfile.XHDTYPE, 0)
    data = block * 200 + archive(entry("a", data=b"x"))
    with pytest.raises(UnsafeArchiveError, match="extended headers"):
        check(data)


def test_global_and_sparse_headers_are_refused() -> None:
    global_header = tarfile.TarInfo.create_pax_global_header({"comment": "x"})
    with pytest.raises(UnsafeArchiveError, match="global"):
        check(global_header + archive(entry("a", data=b"x")))
    sparse = header_block("sparse", tarfile.GNUTYPE_SPARSE, 0)
    with pytest.raises(UnsafeArchiveError, match="sparse"):
        check(sparse + b"\0" * 1024)
    sparse_pax = tarfile.TarInfo("s")
    sparse_pax.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                              "GNU.sparse.name": "s", "GNU.sparse.realsize": "10"}
    data = sparse_pax.tobuf(tarfile.PAX_FORMAT) + b"999999999999\n".ljust(512, b"\0")
    with pytest.raises(UnsafeArchiveError, match="sparse"):
        check(data + b"\0" * 1024)


def test_member_count_is_bounded_while_reading() -> None:
    members = [entry(f"f{i}", data=b"") for i in range(30)]
    with pytest.raises(ArchiveTooLargeError, match="more than 20 entries"):
        check(archive(*members), ArchiveLimits(max_files=20))


def test_folders_a_path_implies_count_as_entries() -> None:
    """One member 30 folders deep creates 31 entries on disk: 3,000 such members made the
    previous check run for 80 s; now they count against ``max_files``."""
    with pytest.raises(ArchiveTooLargeError, match="folders its paths imply"):
        check(archive(entry("a/" * 30 + "f", data=b"x")), ArchiveLimits(max_files=20))
    check(archive(entry("a/" * 18 + "f", data=b"x")), ArchiveLimits(max_files=20))


def test_what_the_client_writes_passes(tmp_path: Path) -> None:
    """The project's own writer (render.tar) with links, empty folders and long names."""
    from imagebuild_nb.render.tar import ContextEntry, write_tar

    long_name = "deep/" + "/".join(["x" * 200] * 3)  # past ustar's 100 + 155 bytes
    entries = [ContextEntry.generated("Dockerfile", b"FROM scratch\n"),
               ContextEntry.directory("deep"), ContextEntry.generated(long_name, b"y"),
               ContextEntry("link", "symlink", linkname=long_name),
               ContextEntry("self", "symlink", linkname=".")]
    path = tmp_path / "c.tar"
    with path.open("wb") as handle:
        write_tar(entries, handle)
    extract_archive(path, tmp_path / "out", ArchiveLimits())
    assert (tmp_path / "out" / "link").read_bytes() == b"y"


# -- the real service over HTTP ---------------------------------------------------------------

@pytest.fixture
def service(shared_service: ServiceProcess) -> ServiceProcess:
    return shared_service


def put_context(http: httpx.Client, body: bytes) -> tuple[str, httpx.Response]:
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    return digest, http.put(f"/imagebuild/api/contexts/{digest}", content=body, timeout=120)


@pytest.fixture
def host_secret(tmp_path: Path) -> tuple[Path, str]:
    """A mode-600 file on the service's host, outside any context."""
    secret = uuid.uuid4().hex
    path = tmp_path / "host-only" / "secret.txt"
    path.parent.mkdir()
    path.write_text(f"HOST-SECRET-{secret}\n")
    path.chmod(0o600)
    return path, secret


def hostile_context(base: str, secret: Path) -> bytes:
    dockerfile = f"FROM {base}\nCOPY . /ctx\nRUN cat /ctx/a; echo done\n".encode()
    return archive(entry("Dockerfile", data=dockerfile), link("a", chain_to(str(secret))),
                   link("s", "."))


def build_log(service: ServiceProcess, digest: str, uri: str) -> tuple[str, list[object]]:
    with service.client() as client, service.http() as http:
        response = http.post("/imagebuild/api/builds",
                             json={"uri": uri, "context": digest, "dockerfile": "Dockerfile"})
        assert response.status_code in (200, 201, 202), response.text
        build_id = response.json()["id"]
        events = list(client.events(build_id))
        log = http.get(f"/imagebuild/api/builds/{build_id}/log").text
    return log, events


@pytest.mark.engine
def test_the_service_refuses_a_link_chain_into_a_host_file(
    service: ServiceProcess, busybox_base: str, host_secret: tuple[Path, str], unique_name: str,
    remove_images: list[str],
) -> None:
    path, secret = host_secret
    with service.http() as http:
        digest, response = put_context(http, hostile_context(busybox_base, path))
        if response.status_code == 201:  # accepted: show what the build would have done
            uri = f"{unique_name}:leak"
            remove_images.append(uri)
            log, _ = build_log(service, digest, uri)
            assert secret not in log, "the service copied the host file into the build"
        assert response.status_code == 400, response.text
        assert "'a'" in response.json()["message"] and "outside" in response.json()["message"]
        assert http.head(f"/imagebuild/api/contexts/{digest}").status_code == 404
    assert secret not in service.log_path.read_text(errors="replace")


@pytest.mark.engine
def test_a_stored_hostile_context_fails_its_build_without_reading_through_links(
    service: ServiceProcess, busybox_base: str, host_secret: tuple[Path, str], unique_name: str,
    remove_images: list[str],
) -> None:
    """Defence in depth: a context in the store that never passed this version's upload check
    (written by an older service) is checked again when it is extracted for a build."""
    path, secret = host_secret
    body = hostile_context(busybox_base, path)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    stored = service.state_dir / "contexts" / (digest.replace(":", "-") + ".tar")
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(body)
    uri = f"{unique_name}:stored"
    remove_images.append(uri)
    log, events = build_log(service, digest, uri)
    assert secret not in log
    assert isinstance(events[-1], BuildFailed), events[-1]
    assert not isinstance(events[-1], BuildFinished)
    assert "outside" in events[-1].message


def vm_hwm(pid: int) -> int:
    """Peak resident memory of a process so far (bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_the_service_refuses_a_pax_header_bomb_with_bounded_memory(
    service: ServiceProcess,
) -> None:
    assert service.process is not None
    bomb = gzip_bomb(tarfile.XHDTYPE, 512 * MiB)
    before = vm_hwm(service.process.pid)
    started = time.monotonic()
    with service.http() as http:
        digest, response = put_context(http, bomb)
        elapsed = time.monotonic() - started
        grown = vm_hwm(service.process.pid) - before
        assert response.status_code == 413, (response.status_code, response.text, elapsed)
        assert "header" in response.json()["message"]
        assert http.head(f"/imagebuild/api/contexts/{digest}").status_code == 404
    assert grown < 64 * MiB, f"the service's peak memory grew by {grown / MiB:.0f} MiB"
