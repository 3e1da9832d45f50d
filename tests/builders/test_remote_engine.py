"""builder="remote" through ImageBuildEngine: the entry point, the service's driver, the push."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from imagebuild_nb.builders.remote import RemoteBuilder
from imagebuild_nb.builders.select import builder_names, get_builder
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.errors import BuilderUnavailableError, BuildFailedError
from imagebuild_nb.settings import Settings
from imagebuild_nb.spec.image import Image
from tests.service.conftest import ServiceProcess, start_service  # noqa: F401 -- fixture
from tests.support.services import Registry, free_port, write_docker_config


def test_remote_is_a_registered_builder() -> None:
    assert "remote" in builder_names()
    settings = Settings(remote_url="http://127.0.0.1:1", remote_token="t")
    assert isinstance(get_builder("remote", settings), RemoteBuilder)


def test_engine_with_unreachable_service_says_so_before_anything_else(busybox_base: str) -> None:
    settings = Settings(remote_url=f"http://127.0.0.1:{free_port()}", remote_token="t")
    image = Image.from_base(busybox_base, name="test/remote-down", registry="localhost:5001")
    with pytest.raises(BuilderUnavailableError, match="unreachable"):
        ImageBuildEngine(settings).build(image.with_commands(["true"]), builder="remote")


@pytest.mark.engine
@pytest.mark.registry
def test_engine_builds_remotely_and_reports_the_pushed_digest(
    start_service: Callable[..., ServiceProcess], plain_registry: Registry, busybox_base: str,  # noqa: F811 -- fixture
    unique_name: str, remove_images: list[str],
) -> None:
    service = start_service()  # the default runner: the service host's local builder
    settings = Settings(remote_url=service.url, remote_token=service.token)
    image = Image.from_base(busybox_base, name=unique_name, registry=plain_registry.host
                            ).with_commands([f"echo built-remotely-{unique_name[-8:]}"])
    remove_images.append(image.uri)
    build = ImageBuildEngine(settings).build(image, builder="remote")
    assert build.status == "built" and build.builder == "remote"
    assert f"built-remotely-{unique_name[-8:]}" in build.logs
    repository, tag = image.uri.split("/", 1)[1].rsplit(":", 1)
    assert build.digest == plain_registry.manifest_digest(repository, tag)


@pytest.mark.engine
@pytest.mark.registry
def test_no_wait_returns_the_run_at_once_with_its_page_and_cancel_stops_it(
    start_service: Callable[..., ServiceProcess], plain_registry: Registry, busybox_base: str,  # noqa: F811 -- fixture
    unique_name: str,
) -> None:
    service = start_service()
    settings = Settings(remote_url=service.url, remote_token=service.token)
    image = Image.from_base(busybox_base, name=unique_name, registry=plain_registry.host
                            ).with_commands(
                                [f"echo started-$((6*7))-{unique_name[-8:]} && sleep 120"])
    began = time.monotonic()
    build = ImageBuildEngine(settings).build(image, builder="remote", wait=False)
    assert time.monotonic() - began < 10
    assert build.remote_run is not None
    assert build.remote_run.url == f"{service.url}/imagebuild/builds/{build.remote_run.id}"
    page = httpx.get(build.remote_run.url, headers=service.headers)
    assert page.status_code == 200 and build.remote_run.id in page.text
    deadline = time.monotonic() + 60
    while f"started-42-{unique_name[-8:]}" not in build.logs:  # the output, not the step
        assert time.monotonic() < deadline, build.logs
        time.sleep(0.2)
    build.cancel()
    build.wait(timeout=60, raise_on_error=False)
    assert build.status == "cancelled", (build.status, build.logs[-2000:])
    client = service.client()
    try:
        assert client.get(build.remote_run.id)["status"] == "cancelled"
    finally:
        client.close()


@pytest.mark.engine
@pytest.mark.registry
def test_existence_through_the_service_uses_the_service_credentials(
    start_service: Callable[..., ServiceProcess], auth_registry: Registry, busybox_base: str,  # noqa: F811 -- fixture
    unique_name: str, remove_images: list[str], docker_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    docker_config({})  # this kernel has no credentials for the Basic-auth registry
    service_config = write_docker_config(
        tmp_path / "service-config",
        {auth_registry.host: (auth_registry.username, auth_registry.password)})
    service = start_service(env={"DOCKER_CONFIG": str(service_config)})
    settings = Settings(remote_url=service.url, remote_token=service.token,
                        default_builder="remote")
    image = Image.from_base(busybox_base, name=unique_name, registry=auth_registry.host
                            ).with_commands(["echo pushed with the credentials of the service"])
    remove_images.append(image.uri)
    engine = ImageBuildEngine(settings)
    assert engine.check(image).state == "missing"
    first = engine.build(image)  # builder None: the default, remote
    assert first.status == "built" and first.remote_run is not None
    assert engine.check(image).state == "exists"
    again = engine.build(image)
    assert again.status == "exists" and again.digest == first.digest
    local = ImageBuildEngine(Settings()).check(image)  # this kernel alone cannot see it
    assert local.state == "unknown" and local.reason.startswith("denied")


@pytest.mark.engine
@pytest.mark.registry
def test_a_failing_remote_build_raises_with_step_exit_code_and_tail_like_a_local_one(
    start_service: Callable[..., ServiceProcess], plain_registry: Registry, busybox_base: str,  # noqa: F811 -- fixture
    unique_name: str,
) -> None:
    service = start_service()  # the service host's default driver, as the local build below
    marker = unique_name[-8:]
    image = Image.from_base(busybox_base, name=unique_name, registry=plain_registry.host
                            ).with_commands([f"echo one-{marker} && echo two-{marker} && exit 3"])
    failures = {}
    remote_settings = Settings(remote_url=service.url, remote_token=service.token)
    for builder, settings in [("local", Settings()), ("remote", remote_settings)]:
        with pytest.raises(BuildFailedError) as caught:
            ImageBuildEngine(settings).build(image, builder=builder)
        failures[builder] = caught.value
    remote, local = failures["remote"], failures["local"]
    assert remote.exit_code == 3
    assert remote.step and remote.step.startswith("step ") and "exit 3" in remote.step
    assert remote.log_tail[-2:] == [f"one-{marker}", f"two-{marker}"]
    assert (remote.step, remote.exit_code, remote.log_tail) == (
        local.step, local.exit_code, local.log_tail)
    assert f"Failing step: {remote.step} (exit code 3)" in str(remote)
