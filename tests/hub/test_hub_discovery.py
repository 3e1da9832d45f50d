"""Finding the build service from a real user server: alice's kernel, with only what the Hub
gives her server (no IMAGEBUILD_NB_* setting), asks the real Hub for its "imagebuild" service."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.hub.conftest import BuildService
from tests.support.kernel_ws import Kernel

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

FIND = """
import json, os
from imagebuild_nb.builders.hub_discovery import find_service
from imagebuild_nb.builders.remote import RemoteBuildClient
from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.notebook.remote_availability import remote_unavailable
from imagebuild_nb.settings import Settings

endpoint = find_service(Settings.from_env())
with RemoteBuildClient.from_settings() as client:
    health = client.health()
try:
    find_service(Settings(hub_service="no-such-build-service"))
    missing = None
except BuilderUnavailableError as error:
    missing = {"message": error.message, "hint": error.hint}
print(json.dumps({
    "url": endpoint.url, "origin": endpoint.origin, "pages": endpoint.pages_origin,
    "hub_token": endpoint.token == os.environ["JUPYTERHUB_API_TOKEN"],
    "api": os.environ["JUPYTERHUB_API_URL"],
    "public": os.environ.get("JUPYTERHUB_PUBLIC_HUB_URL", ""),
    "health": health, "missing": missing, "widget": remote_unavailable(Settings.from_env(), None),
}))
"""


def test_alices_kernel_finds_the_hubs_service_and_calls_it_with_her_server_token(
    alice_kernel: Kernel, build_service: BuildService
) -> None:
    found = json.loads(alice_kernel.run(FIND).check().stdout)
    assert found["url"] == build_service.base  # the model's url + prefix
    assert found["hub_token"] is True
    assert found["origin"] == f"JupyterHub service 'imagebuild' ({found['api']})"
    public = urlsplit(found["public"])
    assert found["pages"] == (f"{public.scheme}://{public.netloc}" if public.netloc else "")
    assert found["health"]["status"] == "ok"  # the service took alice's server token
    assert found["widget"] == ""  # the widget offers remote
    # The real Hub's answer for a service it does not have, as the user reads it.
    missing = found["missing"]
    assert "no service 'no-such-build-service' visible to this server's token" in missing["message"]
    assert "404" in missing["message"] and "configure_hub" in missing["hint"]
