"""The remote client against a real service that serves under a base URL, as a Hub-managed
service does (``/services/imagebuild/``) or a user server (``/user/alice/``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from imagebuild_nb.builders.remote import RemoteBuildClient
from imagebuild_nb.settings import Settings
from tests.service.conftest import DOCKER_API_RUNNER, ServiceProcess, busybox_request
from tests.support.services import Registry

BASE = "/services/imagebuild-test"

pytestmark = [pytest.mark.engine, pytest.mark.registry]


@dataclass
class BasePathService(ServiceProcess):
    """The service with ``--ServerApp.base_url``: its URL holds the base path."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{BASE}"


@pytest.fixture
def based_service(tmp_path: Path) -> Iterator[BasePathService]:
    service = BasePathService(tmp_path, options=(f"--ServerApp.base_url={BASE}/",
                                                  DOCKER_API_RUNNER))
    try:
        yield service.start()  # type: ignore[misc]
    finally:
        service.stop()


def test_pages_and_api_links_keep_one_base_path(
    based_service: BasePathService, plain_registry: Registry, busybox_base: str,
    unique_name: str,
) -> None:
    uri = f"{plain_registry.host}/{unique_name}:based"
    settings = Settings(remote_url=based_service.url, remote_token=based_service.token)
    with RemoteBuildClient.from_settings(settings) as client, based_service.http() as http:
        run = client.submit_request(busybox_request(busybox_base, uri, "true"))
        record = client.wait(run.id)
        assert run.page_url == f"{based_service.url}/imagebuild/builds/{run.id}"
        assert run.api_url == f"{based_service.url}/imagebuild/api/builds/{run.id}"
        assert client.page_url(record) == run.page_url
        page = http.get(run.page_url)
        assert page.status_code == 200 and uri in page.text
        assert http.get(run.api_url).json()["status"] == "succeeded"
        assert client.run_for(run.id).page_url == run.page_url
