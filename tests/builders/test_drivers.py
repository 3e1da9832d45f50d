"""Real tier: both local drivers against the real engine and registries (busybox: fast)."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable

import docker
import pytest

from imagebuild_nb.builders import BuildRequest, InMemoryContext
from imagebuild_nb.builders.base import Builder
from imagebuild_nb.builders.buildkit_cli import BuildKitCliBuilder, find_cli
from imagebuild_nb.builders.docker_api import DockerApiBuilder
from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    LogLine,
    OutputClipped,
    PushProgress,
    StepStarted,
)
from tests.support.services import containers_with

pytestmark = [pytest.mark.engine]
DRIVERS: dict[str, Callable[[], Builder]] = {
    "docker-api": DockerApiBuilder,
    "buildkit": lambda: BuildKitCliBuilder(find_cli("docker")),
}


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest, docker_client: docker.DockerClient) -> Builder:
    builder = DRIVERS[request.param]()
    builder.ensure_available()
    return builder


def _request(busybox: str, body: str, tag: str, **options: object) -> BuildRequest:
    dockerfile = f"FROM {busybox}\n{body}"
    return BuildRequest(dockerfile=dockerfile, context=InMemoryContext({"Dockerfile": dockerfile}),
                        tags=(tag,), network_mode="host", **options)  # type: ignore[arg-type]


def _run(builder: Builder, request: BuildRequest,
         cancel: threading.Event | None = None) -> list[BuildEvent]:
    return list(builder.build(request, cancel or threading.Event()))


def test_build_streams_steps_and_logs_and_finishes_with_an_image(
        driver: Builder, busybox_base: str, remove_images: list[str],
        docker_client: docker.DockerClient) -> None:
    tag = f"imagebuild-test/ok:{uuid.uuid4().hex[:8]}"
    remove_images.append(tag)
    marker = uuid.uuid4().hex
    events = _run(driver, _request(busybox_base, f"RUN echo {marker}\n", tag,
                                   labels={"io.test": marker}))
    assert f"RUN echo {marker}" in [e.instruction for e in events if isinstance(e, StepStarted)]
    assert marker in [e.text for e in events if isinstance(e, LogLine)]
    finished = events[-1]
    assert isinstance(finished, BuildFinished) and finished.image_id
    image = docker_client.images.get(tag)
    assert image.id == finished.image_id and image.labels["io.test"] == marker


def test_failing_run_names_step_exit_code_and_tail(
        driver: Builder, busybox_base: str, docker_client: docker.DockerClient) -> None:
    marker = uuid.uuid4().hex
    events = _run(driver, _request(busybox_base, f"RUN echo one && echo two && exit 3 # {marker}\n",
                                   f"imagebuild-test/fail:{marker[:8]}"))
    failed = events[-1]
    assert isinstance(failed, BuildFailed)
    assert failed.exit_code == 3
    assert failed.step and "RUN echo one && echo two && exit 3" in failed.step
    assert failed.lines[-2:] == ("one", "two")
    assert not containers_with(docker_client, marker)  # forcerm


def test_failure_tail_shows_the_users_output_without_codes_or_engine_chatter(
        driver: Builder, busybox_base: str) -> None:
    marker = uuid.uuid4().hex
    script = (r"echo out1 && echo err1 >&2 && printf '\033[31mred\033[0m\n' && echo err2 >&2"
              f" && exit 4 # {marker}")
    failed = _run(driver, _request(busybox_base, f"RUN {script}\n",
                                   f"imagebuild-test/tail:{marker[:8]}"))[-1]
    assert isinstance(failed, BuildFailed) and failed.exit_code == 4
    # stdout and stderr may interleave either way; nothing else may be there
    assert sorted(failed.lines) == ["err1", "err2", "out1", "red"], failed.lines


def test_cancel_mid_run_stops_promptly_and_leaves_no_container(
        driver: Builder, busybox_base: str, docker_client: docker.DockerClient) -> None:
    tag = f"imagebuild-test/cancel:{uuid.uuid4().hex[:8]}"
    request = _request(busybox_base, f"RUN echo started {tag} && sleep 60\n", tag, no_cache=True)
    cancel = threading.Event()
    events: list[BuildEvent] = []
    for event in driver.build(request, cancel):
        events.append(event)
        if isinstance(event, LogLine) and event.text.startswith("started"):
            started = time.monotonic()
            cancel.set()
    assert isinstance(events[-1], BuildCancelled)
    assert time.monotonic() - started < 10
    assert not containers_with(docker_client, tag)
    assert not docker_client.images.list(name=tag)
    deadline = time.monotonic() + 5
    while _processes(tag) and time.monotonic() < deadline:  # the engine reaps the RUN process
        time.sleep(0.2)
    assert not _processes(tag)


def _processes(marker: str) -> str:
    found = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True).stdout
    return "\n".join(line for line in found.splitlines() if "pgrep" not in line)


@pytest.mark.registry
def test_push_with_credentials_reports_the_registry_digest(
        driver: Builder, busybox_base: str, auth_registry, docker_config,  # type: ignore[no-untyped-def]
        remove_images: list[str]) -> None:
    docker_config({auth_registry.host: auth_registry.auth})
    repository = f"test/push-{driver.driver}-{uuid.uuid4().hex[:8]}"
    tag = f"{auth_registry.host}/{repository}:1"
    remove_images.append(tag)
    events = _run(driver, _request(busybox_base, f"RUN echo {uuid.uuid4().hex} > /id\n", tag,
                                   push=True))
    finished = events[-1]
    assert isinstance(finished, BuildFinished), events[-3:]
    assert finished.pushed and finished.digest == auth_registry.manifest_digest(repository, "1")
    assert any(isinstance(e, PushProgress) for e in events)


@pytest.mark.registry
def test_push_without_credentials_fails_with_the_reason(
        driver: Builder, busybox_base: str, auth_registry, docker_config,  # type: ignore[no-untyped-def]
        remove_images: list[str]) -> None:
    tag = f"{auth_registry.host}/test/denied-{uuid.uuid4().hex[:8]}:1"
    remove_images.append(tag)
    failed = _run(driver, _request(busybox_base, "RUN true\n", tag, push=True))[-1]
    assert isinstance(failed, BuildFailed) and failed.step == "push"
    assert "auth" in failed.message.lower()


def test_chatty_step_output(driver: Builder, busybox_base: str,
                            docker_client: docker.DockerClient) -> None:
    """The Engine API delivers every line; BuildKit may clip, and then says so."""
    tag = f"imagebuild-test/chatty:{uuid.uuid4().hex[:8]}"
    events = _run(driver, _request(busybox_base, "RUN seq 1 100000\n", tag, no_cache=True))
    numbers = [e for e in events if isinstance(e, LogLine) and e.text.isdigit()]
    clipped = [e for e in events if isinstance(e, OutputClipped)]
    assert isinstance(events[-1], BuildFinished)
    docker_client.images.remove(tag, force=True)
    if driver.driver == "docker-api":
        assert len(numbers) == 100000 and not clipped
    else:
        assert len(numbers) == 100000 or clipped, "lost output must be marked as clipped"


def _quiet(driver: Builder, seconds: float) -> Builder:
    driver.silence_timeout = seconds  # type: ignore[attr-defined]
    return driver


@pytest.mark.timeout(240)
def test_a_build_silent_for_longer_than_the_timeout_is_stopped_with_a_clear_error(
        driver: Builder, busybox_base: str, docker_client: docker.DockerClient) -> None:
    tag = f"imagebuild-test/silent:{uuid.uuid4().hex[:8]}"
    request = _request(busybox_base, f"RUN echo quiet {tag} && sleep 120\n", tag, no_cache=True)
    started = time.monotonic()
    events = _run(_quiet(driver, 4), request)
    failed = events[-1]
    assert isinstance(failed, BuildFailed), events[-3:]
    assert time.monotonic() - started < 60  # 4 s of silence, not the 120 s sleep
    assert "printed nothing for 4 s" in failed.message
    assert "build_silence_timeout" in failed.message
    assert failed.step and f"echo quiet {tag}" in failed.step
    deadline = time.monotonic() + 10
    while (containers_with(docker_client, tag) or _processes(tag)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not containers_with(docker_client, tag) and not _processes(tag)
    assert not docker_client.images.list(name=tag)


@pytest.mark.timeout(240)
def test_a_10_mb_line_shows_its_head_at_once_and_never_goes_silent_past_the_timeout(
        driver: Builder, busybox_base: str, docker_client: docker.DockerClient,
        remove_images: list[str]) -> None:
    """The Engine API delivers the line (cut, marked). The 20.10 docker CLI stalls on it (in its
    own printer) after the engine has built and tagged the image: the silence timeout stops
    the CLI, and the new image under the tag is the build's result."""
    tag = f"imagebuild-test/longline:{uuid.uuid4().hex[:8]}"
    remove_images.append(tag)
    body = "RUN head -c 10000000 /dev/zero | tr '\\0' x; echo; echo after-the-line\n"
    silence = 15.0
    events: list[BuildEvent] = []
    stamps: list[float] = []
    for event in _quiet(driver, silence).build(_request(busybox_base, body, tag, no_cache=True),
                                               threading.Event()):
        events.append(event)
        stamps.append(time.monotonic())
    heads = [i for i, e in enumerate(events)
             if isinstance(e, LogLine) and e.text.startswith("xxxx")]
    clipped = [i for i, e in enumerate(events) if isinstance(e, OutputClipped)]
    assert heads and len(events[heads[0]].text) < 20_000  # cut, not 10 MB
    assert clipped and clipped[0] == heads[0] + 1  # marked right where it was cut
    gaps = [b - a for a, b in zip(stamps[heads[0]:], stamps[heads[0] + 1:], strict=False)]
    assert max(gaps) < silence + 30
    end = events[-1]
    assert isinstance(end, BuildFinished), end
    assert end.image_id == docker_client.images.get(tag).id
    if driver.driver == "docker-api":
        assert "after-the-line" in [e.text for e in events if isinstance(e, LogLine)]
