"""Killing the process never leaves a build running or scratch files behind.

A client process builds with a RUN that sleeps; it is SIGKILLed mid-RUN. Then: no docker CLI of
that build is left, the image never gets tagged, and the next builder to start (here, in the
test process) removes the scratch directory the dead client left. Each client gets a temp folder
of its own (TMPDIR), so the assertions see only its files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker
import pytest

from imagebuild_nb.builders import docker_engine, leftovers
from imagebuild_nb.builders.buildkit_cli import BuildKitCliBuilder, find_cli
from imagebuild_nb.builders.docker_api import DockerApiBuilder
from imagebuild_nb.builders.leftovers import Scratch
from tests.support.services import MIRRORED_BUSYBOX, containers_with

CLIENT = """
import sys, threading
from imagebuild_nb.builders import BuildRequest, InMemoryContext
from imagebuild_nb.builders.select import local_builder
from imagebuild_nb.settings import Settings
driver, tag, base = sys.argv[1:4]
dockerfile = f"FROM {base}\\nRUN echo started-$((6*7)) {tag} && sleep %d && echo finished\\n"
builder = local_builder(Settings(local_driver=driver))
request = BuildRequest(dockerfile=dockerfile, context=InMemoryContext({"Dockerfile": dockerfile}),
                       tags=(tag,), network_mode="host", no_cache=True)
for event in builder.build(request, threading.Event()):
    print(event.kind, getattr(event, "text", ""), flush=True)
"""
SLEEP = 12


def _processes(marker: str) -> list[str]:
    found = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if "pgrep" not in line]


def _kill_mid_run(driver: str, tag: str, scratch_root: Path) -> int:
    """Start the client, wait for its RUN to print, SIGKILL it; returns its pid."""
    env = {**os.environ, "TMPDIR": str(scratch_root)}
    client = subprocess.Popen([sys.executable, "-c", CLIENT % SLEEP, driver, tag, MIRRORED_BUSYBOX],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env)
    assert client.stdout is not None
    seen = []
    for line in client.stdout:
        seen.append(line)
        if line.startswith("log started-42"):
            break
    else:
        pytest.fail(f"the client ended before its RUN started: {''.join(seen)}")
    assert any(scratch_root.iterdir()), "the client has a scratch directory while it builds"
    client.send_signal(signal.SIGKILL)
    client.wait(10)
    client.stdout.close()
    return client.pid


@pytest.mark.engine
@pytest.mark.slow
@pytest.mark.parametrize("driver", ["buildkit", "docker-api"])
def test_sigkill_of_the_client_mid_build_leaves_nothing_running_nothing_tagged_no_files(
        driver: str, busybox_base: str, docker_client: docker.DockerClient, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    tag = f"imagebuild-test/killed-{driver}:{uuid.uuid4().hex[:8]}"
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    killed_at = time.monotonic()
    _kill_mid_run(driver, tag, scratch_root)

    deadline = time.monotonic() + 15
    while (_processes(tag) or containers_with(docker_client, tag, running_only=True)) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes(tag), "the docker CLI (or its RUN) outlived the killed client"
    assert not containers_with(docker_client, tag, running_only=True)

    # The next start of a builder, in any process, removes what the dead client left.
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    fresh = DockerApiBuilder() if driver == "docker-api" else BuildKitCliBuilder(find_cli())
    fresh.ensure_available()
    assert not list(scratch_root.iterdir())

    # Past the end of the RUN's sleep: the engine abandoned the build, never tagged it.
    time.sleep(max(0.0, killed_at + SLEEP + 5 - time.monotonic()))
    assert not docker_client.images.list(name=tag)
    assert not containers_with(docker_client, tag)


@pytest.mark.engine
def test_the_sweep_removes_containers_of_ended_builds_on_their_engine_only(
        busybox_base: str, docker_client: docker.DockerClient, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    container = docker_client.containers.create(busybox_base, ["echo", marker])
    here = docker_engine.engine_address()
    ended = Scratch(Path(tempfile.mkdtemp(prefix=f"{leftovers.PREFIX}{os.getpid()}-0-",
                                          dir=tmp_path)))
    ended.note_container(here, container.id)
    ended.keep_for_sweep()  # as a build that lost its engine leaves it
    elsewhere = Scratch(Path(tempfile.mkdtemp(prefix=f"{leftovers.PREFIX}{os.getpid()}-0-",
                                              dir=tmp_path)))
    elsewhere.note_container("tcp://other-engine:2375", container.id)
    elsewhere.keep_for_sweep()
    alive = Scratch.create(tmp_path)  # a running build of this process: not touched
    try:
        removed: list[str] = []

        def remove(container_id: str) -> bool:
            docker_client.api.remove_container(container_id, force=True)
            removed.append(container_id)
            return True

        swept = leftovers.sweep(here, remove, folder=str(tmp_path))
        assert (swept.directories, swept.containers) == (1, 1) and removed == [container.id]
        assert not ended.path.exists() and elsewhere.path.exists() and alive.path.exists()
        assert not containers_with(docker_client, marker)
    finally:
        alive.remove()


def test_a_dead_process_directory_is_swept_and_a_reused_pid_is_told_apart(
        tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = tmp_path / f"{leftovers.PREFIX}{gone.pid}-1-abc"
    reused = tmp_path / f"{leftovers.PREFIX}{os.getpid()}-1-abc"  # our pid, another start
    mine = Scratch.create(tmp_path).path
    other = tmp_path / "imagebuild-cell-abcdefgh"  # someone else's name: never touched
    for folder in (dead, reused, other):
        folder.mkdir()
    (dead / "iid").write_text("sha256:0")
    swept = leftovers.sweep("unix:///nowhere", lambda container_id: False,
                            folder=str(tmp_path))
    assert swept.directories == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name])


@pytest.mark.parametrize("forgery", ["world-writable", "other-owner", "linked-record"])
def test_a_forged_record_never_gets_a_container_removed(forgery: str, tmp_path: Path) -> None:
    """Anyone can make a folder in /tmp: a record counts only when it is this user's own and
    writable by no one else, its files included (no links)."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    folder = tmp_path / f"{leftovers.PREFIX}{gone.pid}-1-forged"
    folder.mkdir(mode=0o700)
    (folder / "engine").write_text("unix:///var/run/docker.sock")
    (folder / "containers").write_text("victim-container\n")
    if forgery == "world-writable":
        folder.chmod(0o777)
    elif forgery == "other-owner":
        os.chown(folder, 12345, 12345)
    else:
        (folder / "containers").unlink()
        (tmp_path / "elsewhere").write_text("victim-container\n")
        (folder / "containers").symlink_to(tmp_path / "elsewhere")
    asked: list[str] = []
    leftovers.sweep("unix:///var/run/docker.sock", lambda cid: asked.append(cid) or True,
                    folder=str(tmp_path))
    assert asked == [] and folder.exists()
