"""``imagebuild-agent`` as its own process on the real engine: builds, pushes, hand-on after a
SIGKILL (fenced, retried, cleaned up), slot limit, cancel."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import docker
import pytest

from imagebuild_nb.builders.docker_engine import engine_platform
from imagebuild_nb.farm.store import FarmStore
from imagebuild_nb.wire import BuildStatus
from tests.support.farm import AgentProcess, event_dicts, submit, wait_for
from tests.support.services import BUSYBOX_IMAGE, Registry, containers_with

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.slow]


def unique() -> str:
    return uuid.uuid4().hex[:12]


def test_an_agent_builds_and_pushes_what_the_registry_holds(
        farm_store: FarmStore, agents: Callable[..., AgentProcess], plain_registry: Registry):
    name = f"ibnb-farm/agent-{unique()}"
    info = submit(farm_store, f"{plain_registry.host}/{name}:1",
                  f"FROM {BUSYBOX_IMAGE}\nRUN echo {unique()} > /marker\n")
    agent = agents("engine-a")
    done = wait_for(farm_store, info.id, lambda i: i.terminal)
    assert done.status is BuildStatus.SUCCEEDED, agent.log()
    assert done.engine == "engine-a" and done.attempt == 1
    assert done.digest == plain_registry.manifest_digest(name, "1")
    kinds = [event["kind"] for event in event_dicts(farm_store, info.id)]
    assert kinds[0] == "started" and kinds[-1] == "finished" and kinds.count("finished") == 1
    # The context went with its last build.
    assert farm_store.read_context(info.context) is None


def test_an_agent_fails_a_build_for_another_platform_than_its_engines_without_handing_it_on(
        farm_store: FarmStore, agents: Callable[..., AgentProcess], plain_registry: Registry):
    # Agents drive the Engine API, whose legacy builder would build the engine's own platform
    # under the tag (an amd64 image for linux/arm64, before): the build fails saying so, once.
    own = engine_platform(docker.APIClient())
    foreign = "linux/amd64" if own == "linux/arm64" else "linux/arm64"
    name = f"ibnb-farm/foreign-{unique()}"
    info = submit(farm_store, f"{plain_registry.host}/{name}:1",
                  f"FROM {BUSYBOX_IMAGE}\nRUN echo {unique()} && uname -m > /built-on\n",
                  platform=foreign)
    assert info.platform == foreign
    agent = agents("engine-a")
    done = wait_for(farm_store, info.id, lambda i: i.terminal)
    assert done.status is BuildStatus.FAILED, agent.log()
    assert done.attempt == 1  # not taken for a lost engine
    assert f"builds for the engine's own platform ({own}) only, so it cannot build " \
           f"{foreign}" in str(done.error)
    assert plain_registry.manifest_digest(name, "1") is None  # nothing pushed


def test_a_killed_agent_hands_its_build_on_and_its_leftovers_go_at_restart(
        farm_store: FarmStore, agents: Callable[..., AgentProcess], plain_registry: Registry,
        docker_client: docker.DockerClient):
    marker = f"farm-kill-{unique()}"
    name = f"ibnb-farm/kill-{unique()}"
    info = submit(farm_store, f"{plain_registry.host}/{name}:1",
                  f"FROM {BUSYBOX_IMAGE}\nRUN echo {marker} && sleep 5\n")
    first = agents("engine-a")
    wait_for(farm_store, info.id, lambda i: any(
        event["kind"] == "log" and marker in str(event.get("text"))
        for event in event_dicts(farm_store, i.id)), timeout=90)
    first.kill()  # the engine stays up; its RUN container is orphaned
    agents("engine-b")
    done = wait_for(farm_store, info.id, lambda i: i.terminal, timeout=120)
    assert done.status is BuildStatus.SUCCEEDED, first.log()
    assert (done.engine, done.attempt) == ("engine-b", 2)
    assert done.digest == plain_registry.manifest_digest(name, "1")
    events = event_dicts(farm_store, info.id)
    seqs = [int(event["seq"]) for event in events]  # type: ignore[call-overload]
    assert seqs == sorted(set(seqs)) == list(range(1, len(seqs) + 1))
    assert any("retrying on another engine, attempt 2/3" in str(event.get("text"))
               for event in events)
    assert [event["kind"] for event in events].count("finished") == 1
    # The killed agent's engine is swept when an agent starts there again.
    agents("engine-a")
    deadline = time.monotonic() + 60
    while containers_with(docker_client, marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert containers_with(docker_client, marker) == []


def test_the_slot_limit_holds_and_a_cancel_reaches_the_agent(
        farm_store: FarmStore, agents: Callable[..., AgentProcess], plain_registry: Registry,
        docker_client: docker.DockerClient):
    marker = f"farm-slots-{unique()}"
    builds = [submit(farm_store, f"{plain_registry.host}/ibnb-farm/slots-{unique()}:{index}",
                     f"FROM {BUSYBOX_IMAGE}\nRUN echo {marker}-{index} && sleep 1\n")
              for index in range(3)]
    slow = submit(farm_store, f"{plain_registry.host}/ibnb-farm/cancel-{unique()}:1",
                  f"FROM {BUSYBOX_IMAGE}\nRUN echo {marker}-slow && sleep 120\n")
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rows = farm_store.rows("SELECT count(*) AS n FROM imagebuild_builds"
                                   " WHERE engine = 'engine-a' AND status = 'running'")
            samples.append(int(rows[0]["n"]))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        agent = agents("engine-a", slots=1)
        for build in builds:
            assert wait_for(farm_store, build.id, lambda i: i.terminal).status is \
                BuildStatus.SUCCEEDED, agent.log()
        wait_for(farm_store, slow.id, lambda i: any(
            marker + "-slow" in str(event.get("text")) for event in event_dicts(farm_store, i.id)))
        asked = time.monotonic()
        farm_store.request_cancel(slow.id)
        ended = wait_for(farm_store, slow.id, lambda i: i.terminal, timeout=60)
        assert ended.status is BuildStatus.CANCELLED
        assert time.monotonic() - asked < 30
    finally:
        stop.set()
        sampler.join()
    assert max(samples) == 1 and len(samples) > 10
    deadline = time.monotonic() + 30
    while containers_with(docker_client, marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert containers_with(docker_client, marker) == []
