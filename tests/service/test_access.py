"""Who sees and cancels which build, on every route of the real service.

The users come from ``tests.support.hub_identity`` (the Hub's user model read from the token),
so each rule is checked on each route in seconds; tests/hub checks them with a real JupyterHub.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from imagebuild_nb.builders.remote import RemoteBuildClient
from imagebuild_nb.errors import ServiceError
from tests.service.conftest import SLOW_RUN, ServiceProcess, busybox_request
from tests.support.hub_identity import token_for
from tests.support.services import BUSYBOX_IMAGE, PLAIN_REGISTRY

pytestmark = [pytest.mark.engine]

ROOT = Path(__file__).resolve().parents[2]
ADMIN_SCOPE = "custom:imagebuild:admin"


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _as(service: ServiceProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=service.url, headers={"Authorization": f"token {token}"},
                        timeout=30)


@pytest.fixture
def hub_service(start_service: Callable[..., ServiceProcess]) -> ServiceProcess:
    return start_service(
        token=token_for("operator", admin=True),
        env={"PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
        options=("--ServerApp.identity_provider_class=tests.support.hub_identity.TokenHubUsers",
                 "--ImageBuildServiceApp.max_builds_per_user=1"))


def test_users_see_and_cancel_only_their_own_builds_admins_and_the_scope_all(
        hub_service: ServiceProcess):
    with RemoteBuildClient(hub_service.url, token_for("alice")) as alice, \
            RemoteBuildClient(hub_service.url, token_for("bob")) as bob_client:
        _check_access(hub_service, alice, bob_client)


def _check_access(hub_service: ServiceProcess, alice: RemoteBuildClient,
                  bob_client: RemoteBuildClient) -> None:
    request = busybox_request(BUSYBOX_IMAGE, f"{PLAIN_REGISTRY}/{unique_name('access')}:1",
                              SLOW_RUN)
    run = alice.submit_request(request)
    # The same build from bob joins it: he reads it now, but it is not his to cancel.
    joined = bob_client.submit_request(request)
    assert (joined.id, joined.deduplicated) == (run.id, True)
    build = f"/imagebuild/api/builds/{run.id}"
    with _as(hub_service, token_for("carol")) as carol:
        for path in (build, f"{build}/events", f"{build}/log", f"/imagebuild/builds/{run.id}"):
            assert carol.get(path).status_code == 404, path
        assert carol.post(f"{build}/cancel").status_code == 404
        assert carol.get("/imagebuild/api/builds").json()["builds"] == []
    with _as(hub_service, token_for("bob")) as bob:
        record = bob.get(build).json()
        assert (record["owner"], record["joined_by"]) == ("alice", ["bob"])
        refused = bob.post(f"{build}/cancel")
        assert refused.status_code == 403
        assert "started by alice" in refused.json()["message"]
        with pytest.raises(ServiceError) as client_refused:  # bob's client quotes the reason
            bob_client.cancel(run.id)
        assert client_refused.value.status_code == 403
        assert "started by alice" in str(client_refused.value)
        assert [b["id"] for b in bob.get("/imagebuild/api/builds").json()["builds"]] == [run.id]
    with _as(hub_service, token_for("alice")) as owner:
        page = owner.get(f"/imagebuild/builds/{run.id}").text
        assert "Owner" in page and "alice" in page and "joined by bob" in page
        # One unfinished build is alice's limit here: her next is refused, naming the limit.
        other = busybox_request(BUSYBOX_IMAGE, f"{PLAIN_REGISTRY}/{unique_name('access')}:2",
                                "true")
        with pytest.raises(ServiceError) as refused_build:
            alice.submit_request(other)
        assert "max_builds_per_user=1" in str(refused_build.value)
    with _as(hub_service, token_for("dave", scopes=(ADMIN_SCOPE,))) as granted:
        assert granted.get(build).status_code == 200
        assert run.id in {b["id"] for b in granted.get("/imagebuild/api/builds").json()["builds"]}
    with _as(hub_service, token_for("root", admin=True)) as admin:
        assert admin.post(f"{build}/cancel").status_code == 202
    deadline = time.monotonic() + 60
    while alice.get(run.id)["status"] != "cancelled":
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_the_standalone_token_owns_nothing_and_sees_everything(
        start_service: Callable[..., ServiceProcess]):
    service = start_service()
    with service.client() as client:
        run = client.submit_request(busybox_request(
            BUSYBOX_IMAGE, f"{PLAIN_REGISTRY}/{unique_name('shared')}:1", "true"))
        record = client.wait(run.id)
    assert (record["status"], record["owner"], record["joined_by"]) == ("succeeded", None, [])
    with service.http() as http:
        assert run.id in {b["id"] for b in http.get("/imagebuild/api/builds").json()["builds"]}
