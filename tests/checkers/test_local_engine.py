"""References without a registry are answered by the local Docker engine (the embedded default)."""

from __future__ import annotations

import docker
import pytest

from imagebuild_nb.checkers import ExistenceChecker
from imagebuild_nb.settings import Settings
from tests.support.services import BUSYBOX_IMAGE, free_port

SETTINGS = Settings(registry_timeout=5.0)


@pytest.mark.engine
def test_present_and_absent_images_in_the_engine(docker_client: docker.DockerClient,
                                                 busybox_base: str):
    image = docker_client.images.get(BUSYBOX_IMAGE)
    with ExistenceChecker(SETTINGS) as checker:
        present = checker.check(BUSYBOX_IMAGE)
        absent = checker.check("imagebuild-nb/never-built:0123abcd")
        wrong_platform = checker.check(BUSYBOX_IMAGE, platform="linux/s390x")
    assert present.exists and present.digest == image.id and present.checker == "local engine"
    assert present.platforms == (f"linux/{image.attrs['Architecture']}",)
    assert absent.missing and absent.checker == "local engine"
    assert wrong_platform.missing and "s390x" in (wrong_platform.reason or "")


def test_daemon_down_is_unknown_with_the_reason():
    # A DOCKER_HOST nobody listens on (tcp: docker-py leaks the socket of a failed unix connect).
    port = free_port()

    def factory() -> docker.DockerClient:
        return docker.DockerClient(base_url=f"tcp://127.0.0.1:{port}", timeout=2)

    with ExistenceChecker(SETTINGS, docker_client_factory=factory) as checker:
        result = checker.check("analysis:1f2e3d4c")
    assert result.unknown and result.reason is not None and result.reason.startswith("daemon down:")


def test_factory_failure_is_unknown_too():
    def factory() -> docker.DockerClient:
        raise docker.errors.DockerException("Error while fetching server API version")

    with ExistenceChecker(SETTINGS, docker_client_factory=factory) as checker:
        result = checker.check("analysis:1f2e3d4c")
    assert result.unknown and (result.reason or "").startswith("daemon down:")
