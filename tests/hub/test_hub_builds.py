"""The build service behind a real JupyterHub: zero-config remote builds from a user's kernel,
ownership between Hub users, per-user limits and fairness between users."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.hub.conftest import (
    BUILD_ADMIN,
    MAX_BUILDS_PER_USER,
    BuildService,
    gated_request,
    submit,
    unique_uri,
    wait_ended,
)
from tests.support.http_gate import Gate
from tests.support.jupyterhub import Hub
from tests.support.kernel_ws import Kernel
from tests.support.services import MIRRORED_BUSYBOX, Registry

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.kernel, pytest.mark.slow]


def kernel_build_code(uri: str, run: str, *, magic: bool = False) -> str:
    """What a user types in a notebook: an image on busybox, built by the remote builder with
    no setting at all (the kernel's environment has no IMAGEBUILD_NB_* variable), from the
    Python API or with the magic."""
    registry, name = uri.split("/", 1)
    name, tag = name.rsplit(":", 1)
    build = ("build = %imagebuild build img --builder remote" if magic
             else "build = ImageBuildEngine.build(img, builder='remote')")
    return (
        "import json\n"
        "from imagebuild_nb import Image, ImageBuildEngine\n"
        f"img = Image.from_base({MIRRORED_BUSYBOX!r}, name={name!r}, registry={registry!r},\n"
        f"                      tag={tag!r}).with_commands([{run!r}])\n"
        f"{build}\n"
        "print(json.dumps({'status': build.status, 'uri': build.uri, 'digest': build.digest,\n"
        "                  'id': build.remote_run.id, 'page': build.remote_run.url}))\n"
    )


def test_alice_builds_remotely_from_her_kernel_with_no_setting(
    alice_kernel: Kernel, build_service: BuildService, hub: Hub, plain_registry: Registry
) -> None:
    uri = unique_uri("alice")
    printed = alice_kernel.run(kernel_build_code(uri, f"echo built-{uuid.uuid4().hex}")).check()
    build = json.loads(printed.stdout)
    assert build["status"] == "built", printed
    repository, tag = uri.split("/", 1)[1].rsplit(":", 1)
    assert plain_registry.manifest_digest(repository, tag) == build["digest"]
    with build_service.http(hub.token("alice")) as http:
        record = http.get(f"/imagebuild/api/builds/{build['id']}").json()
    assert record["owner"] == "alice"
    assert record["uri"] == uri


def test_bob_builds_with_the_magic_and_no_setting(
    bob_kernel: Kernel, build_service: BuildService, hub: Hub
) -> None:
    code = kernel_build_code(unique_uri("bob-magic"), f"echo magic-{uuid.uuid4().hex}",
                             magic=True)
    build = json.loads(bob_kernel.run(code).check().stdout)
    assert build["status"] == "built"
    with build_service.http(hub.token("bob")) as http:
        assert http.get(f"/imagebuild/api/builds/{build['id']}").json()["owner"] == "bob"


def reads_and_cancel(service: BuildService, token: str, build_id: str) -> dict[str, int]:
    """The status of every way to reach one build, as the token's user."""
    api = f"/imagebuild/api/builds/{build_id}"
    answers = {}
    with service.http(token) as http:
        for name, path in [("record", api), ("log", f"{api}/log"),
                           ("page", f"/imagebuild/builds/{build_id}")]:
            answers[name] = http.get(path).status_code
        # A readable stream would never end while the build runs: only its status is read.
        with http.stream("GET", f"{api}/events",
                         headers={"Accept": "text/event-stream"}) as response:
            answers["events"] = response.status_code
        answers["cancel"] = http.post(f"{api}/cancel").status_code
    return answers


def listed(service: BuildService, token: str) -> dict[str, str]:
    """The builds the token's user lists: id -> owner."""
    with service.http(token) as http:
        response = http.get("/imagebuild/api/builds")
    response.raise_for_status()
    return {build["id"]: build["owner"] for build in response.json()["builds"]}


def test_bob_can_neither_see_nor_cancel_alices_build_but_admins_can(
    hub: Hub, build_service: BuildService, gate: Gate
) -> None:
    alice, bob = hub.token("alice"), hub.token("bob")
    held = [submit(build_service, alice, gated_request(gate, f"own-{n}")) for n in (1, 2)]
    gate.wait_arrived("own-1", "own-2")  # both running

    for build_id in held:
        answers = reads_and_cancel(build_service, bob, build_id)
        assert set(answers.values()) <= {403, 404}, answers
        assert build_id not in listed(build_service, bob)
        assert listed(build_service, alice)[build_id] == "alice"
        with build_service.http(alice) as http:
            assert http.get(f"/imagebuild/api/builds/{build_id}").json()["status"] == "running"

    # A Hub admin, and carol holding the operator's build-admin scope, see and cancel them.
    for canceller, build_id in zip(("admin", BUILD_ADMIN), held, strict=True):
        token = hub.token(canceller)
        assert build_id in listed(build_service, token)
        with build_service.http(token) as http:
            response = http.post(f"/imagebuild/api/builds/{build_id}/cancel")
        assert response.status_code == 202, (canceller, response.text)
        assert wait_ended(build_service, alice, build_id) == "cancelled"


def test_bob_joining_alices_identical_build_shares_its_log_not_its_cancel(
    hub: Hub, build_service: BuildService, gate: Gate
) -> None:
    alice, bob = hub.token("alice"), hub.token("bob")
    request = gated_request(gate, "joined")
    build_id = submit(build_service, alice, request)
    gate.wait_arrived("joined")
    with build_service.client(bob) as client:
        joined = client.submit_request(request)
    assert (joined.id, joined.deduplicated) == (build_id, True)

    answers = reads_and_cancel(build_service, bob, build_id)
    assert answers == {"record": 200, "log": 200, "page": 200, "events": 200, "cancel": 403}
    assert build_id in listed(build_service, bob)
    with build_service.http(bob) as http:
        record = http.get(f"/imagebuild/api/builds/{build_id}").json()
    assert (record["owner"], record["joined_by"], record["status"]) == ("alice", ["bob"], "running")

    gate.open()
    assert wait_ended(build_service, bob, build_id) == "succeeded"


def test_alices_third_concurrent_build_is_refused_naming_the_limit_while_bob_builds(
    hub: Hub, build_service: BuildService, gate: Gate, alice_kernel: Kernel, bob_kernel: Kernel,
    plain_registry: Registry
) -> None:
    alice = hub.token("alice")
    held = [submit(build_service, alice, gated_request(gate, f"limit-{n}"))
            for n in range(MAX_BUILDS_PER_USER)]
    gate.wait_arrived(*(f"limit-{n}" for n in range(MAX_BUILDS_PER_USER)))

    # Over HTTP: 429 with the limit's name.
    third = gated_request(gate, "limit-third")
    with build_service.client(alice) as client:
        context = client.upload_context(third)
    with build_service.http(alice) as http:
        response = http.post("/imagebuild/api/builds", json={
            "uri": third.primary_tag, "context": context, "dockerfile": "Dockerfile"})
    assert response.status_code == 429, response.text
    assert f"max_builds_per_user={MAX_BUILDS_PER_USER}" in response.json()["message"]

    # In alice's notebook: the error she sees names it too, and nothing was built.
    uri = unique_uri("alice-third")
    refused = alice_kernel.run(kernel_build_code(uri, "echo third"))
    assert refused.error is not None, refused
    assert "max_builds_per_user" in str(refused.error["evalue"]), refused.error
    assert plain_registry.manifest_digest(*uri.split("/", 1)[1].rsplit(":", 1)) is None

    # bob is not limited by alice's builds: his build runs and succeeds meanwhile.
    bob_build = json.loads(bob_kernel.run(
        kernel_build_code(unique_uri("bob"), f"echo bob-{uuid.uuid4().hex}")).check().stdout)
    assert bob_build["status"] == "built"
    with build_service.http(alice) as http:
        assert [http.get(f"/imagebuild/api/builds/{build_id}").json()["status"]
                for build_id in held] == ["running"] * MAX_BUILDS_PER_USER

    gate.open()
    assert [wait_ended(build_service, alice, build_id) for build_id in held] == \
        ["succeeded"] * MAX_BUILDS_PER_USER


def test_bobs_one_build_starts_before_alices_third_of_ten(
    hub: Hub, fair_service: BuildService, gate: Gate
) -> None:
    """One build slot: alice queues ten builds, bob one after them; the slot freed by alice's
    first goes to bob (alice's 50 submissions never starve another user's one)."""
    alice, bob = hub.token("alice"), hub.token("bob")
    alices = [submit(fair_service, alice, gated_request(gate, f"alice-{n}")) for n in range(10)]
    gate.wait_arrived("alice-0")  # alice's first holds the only slot; nine wait behind it
    with fair_service.http(alice) as http:
        queued = http.get("/imagebuild/api/builds", params={"status": "queued"}).json()
    assert len(queued["builds"]) == 9
    bobs = submit(fair_service, bob, gated_request(gate, "bob-0"))

    # Let each build through as it starts, until bob's has started.
    while "bob-0" not in gate.arrivals:
        started = len(gate.arrivals)
        gate.open(gate.arrivals[-1])
        gate.wait_count(started + 1)
    started_order = list(gate.arrivals)
    assert started_order.index("bob-0") <= 2, started_order  # before alice's third ("alice-2")

    # The rest of alice's queue is hers to cancel; nothing of it needs to run.
    with fair_service.http(alice) as http:
        for build_id in alices:
            http.post(f"/imagebuild/api/builds/{build_id}/cancel")  # 409 for an ended one
    gate.open()
    assert wait_ended(fair_service, bob, bobs) == "succeeded"
    for build_id in alices:
        wait_ended(fair_service, alice, build_id)
