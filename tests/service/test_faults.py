"""Faults: a dropped event stream, a killed service, an unreachable service."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from imagebuild_nb.builders.remote import RemoteBuildClient
from imagebuild_nb.errors import BuilderUnavailableError, ServiceError
from imagebuild_nb.events import BuildEvent, BuildFailed, BuildFinished
from tests.service.conftest import (
    SLOW_RUN,
    ServiceProcess,
    busybox_request,
    default_service_options,
)
from tests.service.proxy import cuttable_proxy
from tests.service.test_remote_build import wait_for
from tests.support.services import Registry, containers_with, free_port

pytestmark = [pytest.mark.engine, pytest.mark.registry]


def test_dropped_stream_resumes_from_last_id_with_every_event_once(
    service: ServiceProcess, plain_registry: Registry, busybox_base: str, unique_name: str,
) -> None:
    uri = f"{plain_registry.host}/{unique_name}:resume"
    run_line = "i=0; while [ $i -lt 60 ]; do echo tick-$i; i=$((i+1)); sleep 0.05; done"
    with cuttable_proxy(service.port) as proxy, service.client() as direct:
        run = direct.submit_request(busybox_request(busybox_base, uri, run_line))
        received: list[BuildEvent] = []
        cuts = 0
        with RemoteBuildClient(proxy.url, service.token) as client:
            for event in client.events(run.id):
                received.append(event)
                if getattr(event, "text", "") in ("tick-10", "tick-30") :
                    cuts += proxy.cut()
        everything = list(direct.events(run.id))
        builds = direct._json("GET", "/imagebuild/api/builds")["builds"]
    assert cuts == 2 and proxy.accepted >= 3  # two drops, each followed by a re-attach
    assert [e.seq for e in received] == list(range(1, len(everything) + 1))
    assert [e.to_dict() for e in received] == [e.to_dict() for e in everything]
    assert isinstance(received[-1], BuildFinished)
    texts = [getattr(e, "text", None) for e in received]
    assert all(texts.count(f"tick-{i}") == 1 for i in range(60))
    assert [b["id"] for b in builds if b["uri"] == uri] == [run.id]  # re-attaching never rebuilt


def test_killed_service_marks_running_build_interrupted_and_client_says_so(
    service: ServiceProcess, plain_registry: Registry, busybox_base: str, unique_name: str,
) -> None:
    uri = f"{plain_registry.host}/{unique_name}:killed"
    client = service.client(reconnect_for=60)
    run = client.submit_request(busybox_request(busybox_base, uri, SLOW_RUN))
    followed: list[BuildEvent] = []
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            followed.extend(client.events(run.id))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    follower = threading.Thread(target=follow)
    follower.start()
    wait_for(lambda: any("line-5" in getattr(e, "text", "") for e in followed))
    service.stop(kill=True)
    service.start()
    follower.join(timeout=60)
    assert not errors
    terminal = followed[-1]
    assert isinstance(terminal, BuildFailed) and "interrupted" in terminal.message
    assert [e.seq for e in followed] == list(range(1, len(followed) + 1))

    record = client.get(run.id)
    assert record["status"] == "interrupted"
    with pytest.raises(ServiceError, match="lost build .*interrupted"):
        client.wait(run.id)
    with service.http() as http:
        page = http.get(f"/imagebuild/builds/{run.id}")
    assert "interrupted" in page.text and "line-5" in page.text  # the log survived the restart
    client.close()


@pytest.mark.parametrize(("stop", "on_a_terminal"), [
    (signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, False),
], ids=["SIGINT", "SIGINT-hub-on-a-terminal", "SIGTERM"])
def test_a_stop_signal_stops_the_service_and_its_running_build_at_once(
    start_service: Callable[..., ServiceProcess], tmp_path: Path, plain_registry: Registry,
    busybox_base: str, unique_name: str, docker_client: docker.DockerClient,
    stop: signal.Signals, on_a_terminal: bool,
) -> None:
    """JupyterHub stops a managed service with SIGINT (then SIGTERM after 10 s, SIGKILL after 5
    more), also when the Hub runs on a terminal its services share; systemd and ``docker stop``
    send SIGTERM. Each stops it cleanly, with a build running: the build ends with it (no RUN
    left behind) and is "interrupted" after a restart."""
    service = start_service(**default_service_options(tmp_path), on_a_terminal=on_a_terminal)
    uri = f"{plain_registry.host}/{unique_name}:stopped"
    marker = f"held-{unique_name}"
    with service.client() as client:
        run = client.submit_request(busybox_request(busybox_base, uri, f"echo {marker}; sleep 300"))
        for event in client.events(run.id):
            if getattr(event, "text", "") == marker:
                break
    assert service.process is not None
    stopped_at = time.monotonic()
    service.process.send_signal(stop)
    code = service.process.wait(timeout=60)
    assert time.monotonic() - stopped_at < 10, service.log_path.read_text()[-2000:]
    assert code == 0, service.log_path.read_text()[-2000:]
    wait_for(lambda: not containers_with(docker_client, marker), timeout=30)

    service.start()
    with service.client() as client:
        assert client.get(run.id)["status"] == "interrupted"


def test_unreachable_service_is_a_clear_error() -> None:
    client = RemoteBuildClient(f"http://127.0.0.1:{free_port()}", "token")
    with pytest.raises(BuilderUnavailableError, match="unreachable") as caught:
        client.health()
    assert "jupyter imagebuild" in str(caught.value)


def test_service_gone_while_following_is_unknown_not_failed(
    service: ServiceProcess, plain_registry: Registry, busybox_base: str, unique_name: str,
) -> None:
    uri = f"{plain_registry.host}/{unique_name}:gone"
    client = service.client(reconnect_for=1.0)
    run = client.submit_request(busybox_request(busybox_base, uri, SLOW_RUN))
    events = client.events(run.id)
    next(events)
    service.stop(kill=True)
    with pytest.raises(ServiceError, match="outcome is unknown, not failed"):
        for _ in events:
            pass
    client.close()
