"""The build service as an external JupyterHub service (the operator guide's Kubernetes form):
declared with ``configure_hub(..., command=(), api_token=...)`` and started by the operator
with the environment the guide lists. Hub users reach it with their tokens, directly and
through the Hub's proxy, and its builds are theirs."""

from __future__ import annotations

import httpx
import pytest

from imagebuild_nb.builders import BuildRequest, InMemoryContext
from tests.hub.conftest import BuildService, unique_uri
from tests.support.jupyterhub import Hub
from tests.support.services import MIRRORED_BUSYBOX

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.slow]


def test_an_external_service_takes_hub_users_with_the_documented_environment(
        external_service: BuildService, hub: Hub) -> None:
    with httpx.Client(timeout=60) as anonymous:
        refused = anonymous.get(f"{external_service.base}/imagebuild/api/builds")
        assert refused.status_code == 401, refused.text
    dockerfile = f"FROM {MIRRORED_BUSYBOX}\nRUN echo external\n"
    request = BuildRequest(dockerfile=dockerfile, context=InMemoryContext(
        {"Dockerfile": dockerfile}), tags=(unique_uri("external"),), push=True)
    with external_service.client(hub.token("alice")) as alice:
        run = alice.submit_request(request)
        record = alice.wait(run.id)
    assert (record["status"], record["owner"]) == ("succeeded", "alice")
    with external_service.http(hub.token("bob")) as bob:
        assert bob.get(f"/imagebuild/api/builds/{run.id}").status_code == 404
    # Through the Hub's proxy too, as browsers and user pods outside the cluster reach it.
    public = f"{external_service.public_base}/imagebuild/api/builds/{run.id}"
    answer = httpx.get(public, headers={"Authorization": f"token {hub.token('alice')}"},
                       timeout=60)
    assert answer.status_code == 200 and answer.json()["owner"] == "alice"
