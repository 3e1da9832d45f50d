"""Remote builds end to end: the service as its own process, the real engine and registry."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

import docker
import pytest

from imagebuild_nb.errors import BuildFailedError
from imagebuild_nb.events import BuildCancelled, BuildFinished, LogLine, StepStarted
from tests.service.conftest import SLOW_RUN, ServiceProcess, busybox_request
from tests.support.services import Registry, containers_with


@pytest.fixture
def service(shared_service: ServiceProcess) -> ServiceProcess:
    return shared_service


pytestmark = [pytest.mark.engine, pytest.mark.registry]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def test_remote_build_streams_events_and_push_digest_matches_registry(
    service: ServiceProcess, plain_registry: Registry, busybox_base: str, unique_name: str,
    remove_images: list[str],
) -> None:
    uri = f"{plain_registry.host}/{unique_name}:v1"
    remove_images.append(uri)
    request = busybox_request(busybox_base, uri, "echo hello-from-the-service")
    with service.client() as client:
        run = client.submit_request(request)
        events = list(client.events(run.id))
        record = client.get(run.id)

    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert events[0].kind == "started"
    assert any(isinstance(e, StepStarted) and e.instruction.startswith("RUN") for e in events)
    assert any(isinstance(e, LogLine) and "hello-from-the-service" in e.text for e in events)
    finished = events[-1]
    assert isinstance(finished, BuildFinished) and finished.pushed
    registry_digest = plain_registry.manifest_digest(unique_name, "v1")
    assert finished.digest == registry_digest == record["digest"]
    assert record["status"] == "succeeded"
    assert run.page_url == f"{service.url}/imagebuild/builds/{run.id}"


def test_no_wait_page_shows_live_log_and_cancel_stops_the_build(
    service: ServiceProcess, plain_registry: Registry, busybox_base: str, unique_name: str,
    docker_client: docker.DockerClient,
) -> None:
    uri = f"{plain_registry.host}/{unique_name}:slow"
    with service.client() as client, service.http() as http:
        run = client.submit_request(busybox_request(busybox_base, uri, SLOW_RUN))
        # Submitting returns at once: the build (10 s of RUN) has not ended.
        assert client.get(run.id)["status"] in ("queued", "running")

        def page_with_log() -> str | None:
            page = http.get(run.page_url)
            assert page.status_code == 200
            return page.text if "line-3" in page.text else None

        page = wait_for(page_with_log)
        assert "text/html" in http.get(run.page_url).headers["content-type"]
        assert uri in page and "EventSource" in page  # live-follows while running

        client.cancel(run.id)
        events = list(client.events(run.id))
        assert isinstance(events[-1], BuildCancelled)
        record = client.get(run.id)
        assert record["status"] == "cancelled"
        assert not any("line-199" in getattr(e, "text", "") for e in events)

    def no_build_container_left() -> bool:
        return not containers_with(docker_client, SLOW_RUN)

    wait_for(no_build_container_left, timeout=15)


def test_attach_from_a_new_process_by_build_id(
    service: ServiceProcess, plain_registry: Registry, busybox_base: str, unique_name: str,
) -> None:
    uri = f"{plain_registry.host}/{unique_name}:attach"
    with service.client() as client:
        run = client.submit_request(busybox_request(busybox_base, uri, "echo attached"))
    code = (
        "import sys; from imagebuild_nb.builders.remote import RemoteBuildClient\n"
        "client = RemoteBuildClient(sys.argv[1], sys.argv[2])\n"
        "record = client.wait(sys.argv[3])\n"
        "print(record['status'], record['digest'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, service.url, service.token, run.id],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    status, digest = result.stdout.split()
    assert status == "succeeded"
    assert digest == plain_registry.manifest_digest(unique_name, "attach")


def test_a_failed_build_keeps_step_exit_code_and_tail_in_its_record_and_wait_raises_them(
    service: ServiceProcess, plain_registry: Registry, busybox_base: str, unique_name: str,
) -> None:
    uri = f"{plain_registry.host}/{unique_name}:fails"
    run_line = f"echo first-{unique_name} && echo last-{unique_name} && exit 3"
    with service.client() as client:
        run = client.submit_request(busybox_request(busybox_base, uri, run_line))
        with pytest.raises(BuildFailedError) as caught:
            client.wait(run.id)
        record = client.get(run.id)
    error = caught.value
    assert record["status"] == "failed"
    assert record["exit_code"] == error.exit_code == 3
    assert record["step"] == error.step
    assert re.match(r"step 2: RUN : [0-9a-f]{32}; echo first-", error.step), error.step
    assert record["log_tail"] == error.log_tail and error.log_tail[-2:] == [
        f"first-{unique_name}", f"last-{unique_name}"]
    assert run.id in str(error) and "(exit code 3)" in str(error)


def test_twenty_identical_submissions_make_one_engine_build(
    service: ServiceProcess, plain_registry: Registry, busybox_base: str, unique_name: str,
    docker_client: docker.DockerClient,
) -> None:
    uri = f"{plain_registry.host}/{unique_name}:dedup"
    request = busybox_request(busybox_base, uri, "sleep 2; echo built-once")
    since = int(time.time()) - 1
    with service.client() as client:
        digest = client.upload_context(request)
        runs = []
        lock = threading.Lock()

        def submit() -> None:
            run = client.submit(uri, digest)
            with lock:
                runs.append(run)

        threads = [threading.Thread(target=submit) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({run.id for run in runs}) == 1
        assert sum(run.deduplicated for run in runs) == 19
        record = client.wait(runs[0].id)
    assert record["submissions"] == 20
    until = int(time.time()) + 1
    tags = [
        event
        for event in docker_client.events(
            since=since, until=until, decode=True, filters={"type": "image", "event": "tag"}
        )
        if event["Actor"]["Attributes"].get("name") == uri
    ]
    assert len(tags) == 1, tags
