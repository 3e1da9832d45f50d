"""builder="remote" through ImageBuildEngine: the entry point, the service's driver, the push."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from imagebuild_nb.builders.remote import RemoteBuilder
from imagebuild_nb.builders.select import builder_names, get_builder
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.settings import Settings
from imagebuild_nb.spec.image import Image
from tests.service.conftest import ServiceProcess, start_service  # noqa: F401 -- fixture
from tests.support.services import Registry, free_port


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
    start_service: Callable[..., ServiceProcess], plain_registry: Registry, busybox_base: str,
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
