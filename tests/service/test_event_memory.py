"""A build's events live on disk, not in the service's memory: a build of 200k log lines
through the real service keeps the service's peak memory bounded while it runs and while /log,
the SSE stream and the build's page replay it, and every event still arrives exactly once, in
order."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from imagebuild_nb.events import LogLine
from tests.service.conftest import ServiceProcess, busybox_request
from tests.support.services import Registry

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.slow]

LINES = 200_000
MiB = 1024**2
# ~90 bytes a line: 200k events are ~40 MB of JSON text (the service grew 237 MiB for them
# when it kept every event in memory; 3 MiB with a bounded window and inbox).
PADDING = "padding-" * 6
RUN = f"awk 'BEGIN {{ for (i = 1; i <= {LINES}; i++) printf(\"line-%06d-{PADDING}\\n\", i) }}'"
NUMBERED = re.compile(r"line-(\d{6})-")


def status_kib(pid: int, field: str) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith(field + ":"):
            return int(row.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_a_200k_event_build_keeps_the_service_memory_bounded(
    service: ServiceProcess, plain_registry: Registry, busybox_base: str, unique_name: str,
    remove_images: list[str],
) -> None:
    assert service.process is not None
    pid = service.process.pid
    warm = f"{plain_registry.host}/{unique_name}-warm:v1"
    uri = f"{plain_registry.host}/{unique_name}:v1"
    remove_images.extend([warm, uri])
    with service.client() as client:  # load every module a build needs before measuring
        client.wait(client.submit_request(busybox_request(busybox_base, warm, "echo warm")).id)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
    baseline = status_kib(pid, "VmRSS")

    live: list[int] = []
    with service.client() as client:
        run = client.submit_request(busybox_request(busybox_base, uri, RUN))
        seqs_live: list[int] = []
        for event in client.events(run.id):  # follows while it runs; falls behind, catches up
            seqs_live.append(event.seq)
            if isinstance(event, LogLine) and (m := NUMBERED.search(event.text)):
                live.append(int(m.group(1)))
        record = client.get(run.id)
    assert record["status"] == "succeeded", record
    total = record["events"]
    assert seqs_live == list(range(1, total + 1))
    assert live == list(range(1, LINES + 1))

    with service.http() as http:
        logged: list[int] = []
        with http.stream("GET", f"/imagebuild/api/builds/{run.id}/log") as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if m := NUMBERED.search(line):
                    logged.append(int(m.group(1)))
        assert logged == list(range(1, LINES + 1))

    def replay(after: int) -> list[int]:
        with service.client() as client:
            return [event.seq for event in client.events(run.id, after=after)]

    replays: dict[int, list[int]] = {}
    threads = [threading.Thread(target=lambda a=a: replays.__setitem__(a, replay(a)))
               for a in (0, total // 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert replays[0] == list(range(1, total + 1))
    assert replays[total // 2] == list(range(total // 2 + 1, total + 1))

    with service.http() as http:  # the page feeds its step view from the same log
        page = http.get(f"/imagebuild/builds/{run.id}")
        assert page.status_code == 200 and 'data-status="succeeded"' in page.text

    growth = (status_kib(pid, "VmHWM") - baseline) / 1024
    assert growth < 32, f"the service's peak memory grew by {growth:.0f} MiB for {total} events"
