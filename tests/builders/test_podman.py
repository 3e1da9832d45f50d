"""Real tier: the ``local-podman`` builder against real podman and the real plain registry.

podman gets a private store per test session (--root/--runroot under tmp), so "no container
left" is asserted about this test's own store, never the machine's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from imagebuild_nb import Image, ImageBuildEngine
from imagebuild_nb.builders import BuildRequest, InMemoryContext
from imagebuild_nb.builders.podman import PodmanBuilder
from imagebuild_nb.builders.podman_output import PodmanOutputParser
from imagebuild_nb.builders.select import builder_names, get_builder
from imagebuild_nb.checkers.existence import ExistenceChecker
from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    CacheHit,
    LogLine,
    PushProgress,
    StepStarted,
)
from imagebuild_nb.settings import Settings
from tests.support.services import MANIFEST_TYPES, Registry

SETUP = "podman is missing: run scripts/multiarch.sh (scripts/test runs it)"


@pytest.fixture(scope="session")
def podman_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    if shutil.which("podman") is None:
        pytest.fail(SETUP)
    base = tmp_path_factory.mktemp("podman")
    root, runroot = str(base / "root"), str(base / "run")
    yield root, runroot
    subprocess.run(["podman", "--root", root, "--runroot", runroot, "system", "reset", "-f"],
                   capture_output=True, timeout=120)


@pytest.fixture
def podman(podman_store: tuple[str, str]) -> PodmanBuilder:
    root, runroot = podman_store
    builder = PodmanBuilder(root=root, runroot=runroot)
    builder.ensure_available()
    return builder


def _request(base: str, body: str, tag: str, **options: object) -> BuildRequest:
    dockerfile = f"FROM {base}\n{body}"
    return BuildRequest(dockerfile=dockerfile, context=InMemoryContext({"Dockerfile": dockerfile}),
                        tags=(tag,), network_mode="host", **options)  # type: ignore[arg-type]


def _run(builder: PodmanBuilder, request: BuildRequest,
         cancel: threading.Event | None = None) -> list[BuildEvent]:
    return list(builder.build(request, cancel or threading.Event()))


def _registry_digest(registry: Registry, reference: str) -> str | None:
    repository, tag = reference.split("/", 1)[1].rsplit(":", 1)
    response = httpx.head(f"{registry.url}/v2/{repository}/manifests/{tag}",
                          headers={"Accept": ", ".join(MANIFEST_TYPES)})
    return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None


def _containers(builder: PodmanBuilder) -> list[str]:
    listed = subprocess.run([*builder.base(), "ps", "-a", "--external", "-q"],
                            capture_output=True, text=True, timeout=60, check=True)
    return listed.stdout.split()


@pytest.mark.engine
@pytest.mark.registry
def test_build_is_pushed_and_found_with_the_registry_digest(
        podman: PodmanBuilder, busybox_base: str, plain_registry: Registry) -> None:
    marker = uuid.uuid4().hex
    tag = f"{plain_registry.host}/test/podman-ok:{marker[:12]}"
    request = _request(busybox_base, f"RUN echo {marker}\nCOPY Dockerfile /Dockerfile\n", tag,
                       labels={"io.test": marker}, push=True)
    events = _run(podman, request)
    steps = [e.instruction for e in events if isinstance(e, StepStarted)]
    assert steps[:3] == [f"FROM {busybox_base}", f"RUN echo {marker}",
                         "COPY Dockerfile /Dockerfile"]  # podman adds --label as a last step
    assert marker in [e.text for e in events if isinstance(e, LogLine)]
    assert any(isinstance(e, PushProgress) for e in events)
    finished = events[-1]
    assert isinstance(finished, BuildFinished) and finished.pushed and finished.image_id
    assert finished.digest == _registry_digest(plain_registry, tag)
    # The project's registry check finds it, with the same digest.
    with ExistenceChecker(settings=Settings()) as checker:
        found = checker.check(tag)
    assert found.exists and found.digest == finished.digest
    # A second build reuses podman's layer cache.
    again = _run(podman, request)
    assert any(isinstance(e, CacheHit) for e in again) and isinstance(again[-1], BuildFinished)


@pytest.mark.engine
def test_failing_step_names_the_step_and_exit_code(
        podman: PodmanBuilder, busybox_base: str) -> None:
    marker = uuid.uuid4().hex
    events = _run(podman, _request(busybox_base, f"RUN echo one && echo two && exit 3 # {marker}\n",
                                   f"localhost/test/podman-fail:{marker[:12]}"))
    failed = events[-1]
    assert isinstance(failed, BuildFailed)
    assert failed.exit_code == 3
    assert failed.step == f"RUN echo one && echo two && exit 3 # {marker}"
    assert failed.lines[-2:] == ("one", "two")
    assert "exit status 3" in failed.message


@pytest.mark.engine
def test_cancel_stops_podman_and_leaves_no_container(
        podman: PodmanBuilder, busybox_base: str) -> None:
    marker = uuid.uuid4().hex
    cancel = threading.Event()
    events: list[BuildEvent] = []
    request = _request(busybox_base, f"RUN echo started-{marker} && sleep 300\n",
                       f"localhost/test/podman-cancel:{marker[:12]}")
    for event in podman.build(request, cancel):
        events.append(event)
        if isinstance(event, LogLine) and event.text == f"started-{marker}":
            cancel.set()
    assert isinstance(events[-1], BuildCancelled)
    assert _containers(podman) == []
    listed = subprocess.run(
        [*podman.base(), "images", "-q", f"localhost/test/podman-cancel:{marker[:12]}"],
        capture_output=True, text=True, timeout=60, check=True)
    assert listed.stdout.strip() == ""


@pytest.mark.engine
def test_engine_builds_with_local_podman_by_name(
        podman_store: tuple[str, str], busybox_base: str, plain_registry: Registry) -> None:
    root, runroot = podman_store
    assert "local-podman" in builder_names()
    engine = ImageBuildEngine(Settings(podman_root=root, podman_runroot=runroot,
                                       network_mode="host"))
    try:
        image = (Image.from_base(busybox_base, name=f"test/podman-engine-{uuid.uuid4().hex[:8]}",
                                 registry=plain_registry.host)
                 .with_commands([f"echo {uuid.uuid4().hex}"]))
        result = engine.build(image, builder="local-podman")
        assert result.digest == _registry_digest(plain_registry, image.uri)
        assert engine.image_exists(image) == image.uri
    finally:
        engine.close()


def test_missing_podman_is_unavailable_with_a_hint(tmp_path: Path) -> None:
    builder = get_builder("local-podman", Settings(podman_cli=str(tmp_path / "no-podman")))
    with pytest.raises(BuilderUnavailableError) as caught:
        builder.ensure_available()
    assert "podman not found" in str(caught.value) and "apt-get install podman" in str(
        caught.value.hint)


def test_describe_names_tls_and_push() -> None:
    request = _request("localhost:5001/library/busybox:latest", "RUN true\n",
                       "localhost:5001/x:1", push=True)
    text = PodmanBuilder("podman").describe(request)
    assert "--tls-verify=false" in text and "podman push --tls-verify=false" in text
    remote = _request("registry.example.com/busybox:1", "RUN true\n", "registry.example.com/x:1")
    assert "--tls-verify" not in PodmanBuilder("podman").describe(remote)
    staged = _request("localhost:5001/library/busybox:latest AS base", "FROM base\n",
                      "registry.example.com/x:1")
    assert "--tls-verify=false" in PodmanBuilder("podman").describe(staged)


def test_parser_reads_platform_prefixed_steps() -> None:
    parser = PodmanOutputParser()
    step = next(iter(parser.feed("[linux/arm64] STEP 2/3: RUN uname -m")))
    assert isinstance(step, StepStarted) and step.stage == "linux/arm64" and step.number == 2


def test_every_face_offers_local_podman() -> None:
    from imagebuild_nb.cli import build_parser
    from imagebuild_nb.notebook.arguments import line_parser, parse
    from imagebuild_nb.notebook.widget import ImageBuildWidget

    assert parse(line_parser(), "build img --builder local-podman").builder == "local-podman"
    assert build_parser().parse_args(["build", "x.py", "--builder", "local-podman"]
                                     ).builder == "local-podman"
    widget = ImageBuildWidget(Image.from_base("localhost:5001/library/busybox:latest", name="x"),
                              settings=Settings())
    try:
        assert "local-podman" in widget.builder.options
    finally:
        widget.close()


@pytest.mark.engine
def test_without_a_registry_podmans_own_store_is_checked(
        podman_store: tuple[str, str], busybox_base: str) -> None:
    root, runroot = podman_store
    engine = ImageBuildEngine(Settings(podman_root=root, podman_runroot=runroot,
                                       network_mode="host"))
    try:
        image = (Image.from_base(busybox_base, name=f"test/podman-local-{uuid.uuid4().hex[:8]}")
                 .with_commands([f"echo {uuid.uuid4().hex}"]))
        assert engine.build(image, builder="local-podman").status == "built"
        again = engine.build(image, builder="local-podman")
        assert again.status == "exists" and again.existence.checker == "podman store"
        missing = image.with_commands(["echo other"])
        assert engine.build(missing, builder="local-podman", dry_run=True).dry_run is not None
        checked = PodmanBuilder(root=root, runroot=runroot).check_store(missing.uri)
        assert checked.state == "missing"
    finally:
        engine.close()


CLIENT = """
import sys, threading
from imagebuild_nb.builders import BuildRequest, InMemoryContext
from imagebuild_nb.builders.podman import PodmanBuilder
root, runroot, tag, base = sys.argv[1:5]
dockerfile = f"FROM {base}\\nRUN echo started-$((6*7)) {tag} && sleep 12 && echo finished\\n"
request = BuildRequest(dockerfile=dockerfile, context=InMemoryContext({"Dockerfile": dockerfile}),
                       tags=(tag,), network_mode="host", no_cache=True)
for event in PodmanBuilder(root=root, runroot=runroot).build(request, threading.Event()):
    print(event.kind, getattr(event, "text", ""), flush=True)
"""


@pytest.mark.engine
@pytest.mark.slow
def test_sigkill_of_the_client_leaves_no_podman_no_container_no_files(
        podman_store: tuple[str, str], busybox_base: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root, runroot = podman_store
    tag = f"localhost/test/podman-killed:{uuid.uuid4().hex[:12]}"
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    client = subprocess.Popen([sys.executable, "-c", CLIENT, root, runroot, tag, busybox_base],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "TMPDIR": str(scratch_root)})
    assert client.stdout is not None
    seen = []
    for line in client.stdout:
        seen.append(line)
        if line.startswith("log started-42"):
            break
    else:
        pytest.fail(f"the client ended before its RUN started: {''.join(seen)}")
    assert any(scratch_root.iterdir())
    client.send_signal(signal.SIGKILL)
    client.wait(10)
    client.stdout.close()

    def running() -> list[str]:
        found = subprocess.run(["pgrep", "-af", tag], capture_output=True, text=True).stdout
        return [line for line in found.splitlines() if "pgrep" not in line]

    deadline = time.monotonic() + 15
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not running(), "podman (or its RUN) outlived the killed client"
    # The next start of a podman builder removes the working container and the scratch folder.
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    fresh = PodmanBuilder(root=root, runroot=runroot)
    fresh.ensure_available()
    assert not list(scratch_root.iterdir())
    assert _containers(fresh) == []
