"""Two service replicas (separate processes) over one PostgreSQL, agents building: dedup across
replicas, streams that move between replicas, a SIGKILLed replica, cancel via the other one."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import docker
import pytest

from imagebuild_nb.events import BuildEvent, is_terminal
from tests.service.conftest import ServiceProcess, busybox_request, running_services
from tests.support.farm import AgentProcess
from tests.support.postgres import PostgresCluster
from tests.support.services import BUSYBOX_IMAGE, Registry, containers_with

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.slow]


@dataclass
class Farm:
    """Two replicas, one that never LISTENs, one agent: shared by this module's tests (each
    starts in seconds on a loaded machine); tests that kill a part start their own."""

    database_url: str
    one: ServiceProcess
    two: ServiceProcess
    deaf: ServiceProcess
    start: Callable[..., ServiceProcess]


@pytest.fixture(scope="module")
def farm(postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    database_url = postgres.create_database()
    root = tmp_path_factory.mktemp("farm")
    agent = AgentProcess(database_url, "engine-a", root, context_grace=600).start()
    try:
        with running_services(root) as start:
            def replica(*options: str) -> ServiceProcess:
                return start(env={"IMAGEBUILD_NB_DATABASE_URL": database_url}, options=options)

            yield Farm(database_url, replica(), replica(),
                       replica("--ImageBuildServiceApp.farm_listen=False"), replica)
    finally:
        agent.stop()


def unique() -> str:
    return uuid.uuid4().hex[:12]


def test_identical_submissions_to_both_replicas_join_one_build(farm: Farm,
                                                               plain_registry: Registry):
    one, two = farm.one, farm.two
    name = f"ibnb-farm/dedup-{unique()}"
    request = busybox_request(BUSYBOX_IMAGE, f"{plain_registry.host}/{name}:1", "sleep 2")
    ids: list[str] = []
    lock = threading.Lock()

    def submit(service: ServiceProcess) -> None:
        with service.client() as client:
            run = client.submit_request(request)
        with lock:
            ids.append(run.id)

    threads = [threading.Thread(target=submit, args=(service,))
               for service in [one, two] * 10]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 20 and len(set(ids)) == 1
    with two.client() as client:
        events = list(client.events(ids[0]))
        record = client.wait(ids[0])
    assert record["submissions"] == 20
    assert [event.kind for event in events].count("started") == 1  # one engine run
    assert record["digest"] == plain_registry.manifest_digest(name, "1")


def test_a_stream_moves_between_replicas_exactly_once_even_without_notifications(
        farm: Farm, plain_registry: Registry):
    one, two, deaf = farm.one, farm.two, farm.deaf
    name = f"ibnb-farm/follow-{unique()}"
    request = busybox_request(
        BUSYBOX_IMAGE, f"{plain_registry.host}/{name}:1",
        "i=0; while [ $i -lt 40 ]; do echo line-$i; i=$((i+1)); sleep 0.05; done")
    with one.client() as client:
        build_id = client.submit_request(request).id
    seen: list[BuildEvent] = []
    with two.client() as client:
        for event in client.events(build_id):
            seen.append(event)
            if len(seen) == 5:
                break
    with one.client() as client:  # resume with Last-Event-ID on the other replica
        seen.extend(client.events(build_id, after=seen[-1].seq))
    with deaf.client() as client:  # a replica that never hears a NOTIFY still completes
        everything = list(client.events(build_id))
        record = client.wait(build_id)
    seqs = [event.seq for event in seen]
    assert seqs == list(range(1, len(seqs) + 1))
    assert is_terminal(seen[-1]) and [event.seq for event in everything] == seqs
    assert record["status"] == "succeeded"
    assert record["digest"] == plain_registry.manifest_digest(name, "1")


def test_a_replica_killed_while_streaming_loses_nothing(farm: Farm, plain_registry: Registry):
    one, two = farm.start(), farm.two
    name = f"ibnb-farm/replica-kill-{unique()}"
    request = busybox_request(
        BUSYBOX_IMAGE, f"{plain_registry.host}/{name}:1",
        "i=0; while [ $i -lt 60 ]; do echo line-$i; i=$((i+1)); sleep 0.05; done")
    with one.client() as client:
        build_id = client.submit_request(request).id
    seen: list[BuildEvent] = []
    with one.client(reconnect_for=1.0) as client:
        for event in client.events(build_id):
            seen.append(event)
            if sum(1 for e in seen if e.kind == "log") >= 3:
                one.stop(kill=True)
                break
    with two.client() as client:
        seen.extend(client.events(build_id, after=seen[-1].seq))
        record = client.wait(build_id)
    assert [event.seq for event in seen] == list(range(1, len(seen) + 1))
    assert record["status"] == "succeeded"
    assert record["digest"] == plain_registry.manifest_digest(name, "1")


def test_a_cancel_on_the_other_replica_reaches_the_agent(
        farm: Farm, plain_registry: Registry, docker_client: docker.DockerClient):
    one, two = farm.one, farm.two
    marker = f"farm-cancel-{unique()}"
    request = busybox_request(BUSYBOX_IMAGE, f"{plain_registry.host}/ibnb-farm/c-{unique()}:1",
                              f"echo {marker} && sleep 120")
    with one.client() as client:
        build_id = client.submit_request(request).id
        for event in client.events(build_id):
            if event.kind == "log" and marker in getattr(event, "text", ""):
                break
    asked = time.monotonic()
    with two.http() as http:
        assert http.post(f"/imagebuild/api/builds/{build_id}/cancel").status_code == 202
    with one.client() as client:
        events = list(client.events(build_id))
        record = client.get(build_id)
    assert events[-1].kind == "cancelled" and record["status"] == "cancelled"
    assert time.monotonic() - asked < 30
    deadline = time.monotonic() + 30
    while containers_with(docker_client, marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert containers_with(docker_client, marker) == []


def test_a_replica_serves_the_page_log_and_health(farm: Farm, plain_registry: Registry):
    one = farm.deaf
    request = busybox_request(BUSYBOX_IMAGE, f"{plain_registry.host}/ibnb-farm/p-{unique()}:1",
                              "echo page-line")
    with one.client() as client:
        build_id = client.submit_request(request).id
        client.wait(build_id)
    with one.http() as http:
        health = http.get("/imagebuild/api/health").json()
        page = http.get(f"/imagebuild/builds/{build_id}")
        log = http.get(f"/imagebuild/api/builds/{build_id}/log")
        listed = [build for build in http.get("/imagebuild/api/builds").json()["builds"]
                  if build["id"] == build_id]
    assert health["backend"] == "farm" and health["engines"] == 1
    assert page.status_code == 200 and build_id in page.text
    assert "page-line" in log.text
    assert len(listed) == 1
    assert listed[0]["engine"] == "engine-a" and listed[0]["attempt"] == 1


def test_the_embedded_default_imports_no_farm_and_no_database_driver():
    code = ("import sys; from imagebuild_nb.service.app import ImageBuildServiceApp; "
            "import imagebuild_nb.service.handlers, imagebuild_nb.builders.remote; "
            "print(sorted(m for m in sys.modules if m.startswith(('psycopg', "
            "'imagebuild_nb.farm'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
