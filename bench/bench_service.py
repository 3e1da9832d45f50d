"""Benchmark the build service: submission latency, event delivery latency, dedup under load.

Starts the service as its own process on loopback (real engine; busybox base in the local
registry), then measures:

- submission latency: ``POST /imagebuild/api/builds`` round trip (context already uploaded),
  median and p95 over distinct submissions;
- event delivery latency with N concurrent SSE clients: receive time minus the event's own
  timestamp (set when the builder produced it; same clock), median and p95. Every client's
  stream is open before the build starts (the build waits in the queue behind builds that
  hold every slot until then), and its RUN step prints 200 lines over about 2 s, so each
  figure is a live delivery, never a replay of a backlog; nothing measured is an error;
- dedup: 20 identical concurrent submissions -> how many builds.

    .venv/bin/python bench/bench_service.py [--clients 1 10 50] [--submissions 40]
    .venv/bin/python bench/bench_service.py --quick    # --clients 1 10 --submissions 10
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from imagebuild_nb.builders import BuildRequest, InMemoryContext
from imagebuild_nb.builders.remote import RemoteBuildClient
from imagebuild_nb.errors import ImageBuildError
from imagebuild_nb.events import is_terminal
from imagebuild_nb.wire import BuildStatus, parse_sse, paths

BASE = os.environ.get("IMAGEBUILD_NB_BENCH_BASE", "localhost:5001/library/busybox:latest")
RESULTS: dict[str, object] = {}  # the figures printed below, for --json (bench/run_all.py)
SLOTS = 2  # the service's max_concurrent_builds: bench_delivery holds this many slots
TICKS = 200  # log lines the measured build prints, one per 10 ms


def start_service(root: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = secrets.token_hex(16)
    script = Path(sys.executable).parent / "jupyter-imagebuild"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / "cfg"),
           "JUPYTER_DATA_DIR": str(root / "data"), "JUPYTER_RUNTIME_DIR": str(root / "run")}
    log = (root / "service.log").open("wb")
    process = subprocess.Popen(
        [str(script), "--allow-root", f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", f"--ImageBuildServiceApp.state_dir={root / 'state'}",
         f"--ImageBuildServiceApp.max_concurrent_builds={SLOTS}",
         "--ImageBuildServiceApp.runner_class=imagebuild_nb.service.engine_runner.DockerApiRunner"],
        stdout=log, stderr=log, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/imagebuild/api/health",
                         headers={"Authorization": f"token {token}"}).status_code == 200:
                return process, url, token
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the service did not start; see {root / 'service.log'}")


def request(uri: str, run: str | None = None) -> BuildRequest:
    dockerfile = f"FROM {BASE}\nLABEL bench={uuid.uuid4().hex}\n" + (f"RUN {run}\n" if run else "")
    return BuildRequest(dockerfile=dockerfile, context=InMemoryContext({"Dockerfile": dockerfile}),
                        tags=(uri,), push=False)


def quantiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"median {statistics.median(ordered) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms"


def quantiles_ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"median_ms": statistics.median(ordered) * 1000, "p95_ms": p95 * 1000}


def check_base(client: RemoteBuildClient) -> None:
    """Every build here starts FROM ``BASE``: without it they all fail at once and nothing is
    measured (on a fresh machine before ``scripts/setup.sh`` pushed it, this read as an
    ``IndexError``: no live log events)."""
    state = client.exists(BASE).get("state")
    if state != "exists":
        raise SystemExit(f"the benchmark's base image {BASE} is {state} in its registry: "
                         "push it with bash scripts/setup.sh (scripts/base-images.sh), or name "
                         "another with IMAGEBUILD_NB_BENCH_BASE")


def wait_all(client: RemoteBuildClient, build_ids: list[str]) -> None:
    """Until every build ended; a failed one stops the benchmark with the service's error."""
    for build_id in build_ids:
        try:
            client.wait(build_id)
        except ImageBuildError as error:
            raise SystemExit(f"a benchmark build failed, so nothing it would measure is real: "
                             f"{error}") from None


def bench_submissions(client: RemoteBuildClient, count: int) -> None:
    digest = client.upload_context(request("bench/x:1"))
    latencies = []
    ids = []
    for index in range(count):
        started = time.perf_counter()
        run = client.submit(f"bench/submit-{uuid.uuid4().hex[:8]}:{index}", digest, push=False)
        latencies.append(time.perf_counter() - started)
        ids.append(run.id)
    print(f"submission latency ({count} sequential submissions): {quantiles(latencies)}")
    RESULTS["submit_sequential"] = {"count": count, **quantiles_ms(latencies)}
    with ThreadPoolExecutor(10) as pool:
        def timed(index: int) -> float:
            started = time.perf_counter()
            run = client.submit(f"bench/submit-par-{uuid.uuid4().hex[:8]}:{index}", digest,
                                push=False)
            ids.append(run.id)
            return time.perf_counter() - started
        parallel = list(pool.map(timed, range(count)))
    print(f"submission latency ({count} submissions, 10 at once):   {quantiles(parallel)}")
    RESULTS["submit_parallel"] = {"count": count, "concurrency": 10, **quantiles_ms(parallel)}
    # The 2 x count builds run before the next measurement: queued behind them, the measured
    # build would start late and share the engine with them. A failing base fails here, clearly.
    wait_all(client, ids)


class NothingMeasured(SystemExit):
    """The delivery benchmark saw no live log event: a figure would be made up."""


def bench_delivery(client: RemoteBuildClient, url: str, token: str, clients: int) -> None:
    # Builds that hold every slot keep the measured build queued until every client's stream
    # is open; cancelling them starts it. So no event is older than a client's connection.
    holders = [client.submit_request(request(f"bench/hold-{uuid.uuid4().hex[:8]}:1", "sleep 600"))
               for _ in range(SLOTS)]
    wait_running(client, [holder.id for holder in holders])
    run_line = (f"i=0; while [ $i -lt {TICKS} ]; do echo tick-$i; i=$((i+1)); "
                "sleep 0.01; done")
    run = client.submit_request(request(f"bench/events-{uuid.uuid4().hex[:8]}:1", run_line))
    latencies: list[float] = []
    counts: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    connected = threading.Semaphore(0)

    def follow() -> None:
        mine: list[float] = []
        seen = 0
        opened = False
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"token {token}"},
                              timeout=httpx.Timeout(30, read=120)) as http, http.stream(
                    "GET", paths.events(run.id), headers={"Accept": "text/event-stream"}
            ) as response:
                response.raise_for_status()
                opened_at = time.time()
                opened = True
                connected.release()
                for event in parse_sse(response.iter_lines()):
                    now = time.time()
                    seen += 1
                    if event.kind == "log" and event.time >= opened_at:
                        mine.append(now - event.time)
                    if is_terminal(event):
                        break
        except Exception as error:  # noqa: BLE001 -- reported below, with the others
            with lock:
                errors.append(f"{type(error).__name__}: {error}")
        finally:
            if not opened:
                connected.release()
        with lock:
            latencies.extend(mine)
            counts.append(seen)

    threads = [threading.Thread(target=follow) for _ in range(clients)]
    try:
        for thread in threads:
            thread.start()
        for _ in threads:
            connected.acquire(timeout=120)
    finally:
        for holder in holders:
            client.cancel(holder.id)
    for thread in threads:
        thread.join()
    record = client.get(run.id)
    if errors or not latencies:
        raise NothingMeasured(
            f"event delivery, {clients} clients: no live log event was measured (build "
            f"{run.id} {record.get('status')}: {record.get('error') or 'no error'}; "
            f"{len(errors)} client(s) failed: {'; '.join(sorted(set(errors))[:3]) or 'none'}). "
            f"The measured build must print {TICKS} log lines while the clients follow it; "
            f"check that {BASE} is in the registry (bash scripts/setup.sh) and the engine runs.")
    print(f"event delivery, {clients:3d} concurrent SSE clients ({len(latencies)} log events): "
          f"{quantiles(latencies)}   every client got {min(counts)}..{max(counts)} events")
    RESULTS.setdefault("delivery", []).append(  # type: ignore[union-attr]
        {"clients": clients, "events": len(latencies), "min_events": min(counts),
         "max_events": max(counts), **quantiles_ms(latencies)})


def wait_running(client: RemoteBuildClient, build_ids: list[str], timeout: float = 300) -> None:
    """Until every build has started (holds a slot); a holder that ended is an error."""
    deadline = time.monotonic() + timeout
    for build_id in build_ids:
        while (status := client.get(build_id)["status"]) != BuildStatus.RUNNING:
            if status != BuildStatus.QUEUED:
                raise SystemExit(f"the slot-holding build {build_id} ended ({status}): "
                                 f"{client.get(build_id).get('error')}")
            if time.monotonic() > deadline:
                raise SystemExit(f"the slot-holding build {build_id} did not start in "
                                 f"{timeout:.0f} s")
            time.sleep(0.05)


def bench_dedup(client: RemoteBuildClient) -> None:
    uri = f"bench/dedup-{uuid.uuid4().hex[:8]}:1"
    digest = client.upload_context(request(uri, "sleep 2"))
    with ThreadPoolExecutor(20) as pool:
        started = time.perf_counter()
        runs = list(pool.map(lambda _: client.submit(uri, digest, push=False), range(20)))
        elapsed = time.perf_counter() - started
    record = client.wait(runs[0].id)
    print(f"dedup: 20 identical concurrent submissions -> {len({r.id for r in runs})} build(s), "
          f"{record['submissions']} submissions joined, all 20 answered in {elapsed * 1000:.1f} ms")
    RESULTS["dedup"] = {"submissions": 20, "builds": len({r.id for r in runs}),
                        "joined": record["submissions"], "answered_ms": elapsed * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+")
    parser.add_argument("--submissions", type=int)
    parser.add_argument("--quick", action="store_true",
                        help="reduced sizes: --clients 1 10 --submissions 10")
    parser.add_argument("--json", type=Path, help="also write the results here (bench/run_all.py)")
    args = parser.parse_args()
    args.clients = args.clients or ([1, 10] if args.quick else [1, 10, 50])
    args.submissions = args.submissions or (10 if args.quick else 40)
    with tempfile.TemporaryDirectory() as directory:
        process, url, token = start_service(Path(directory))
        try:
            with RemoteBuildClient(url, token) as client:
                check_base(client)
                bench_submissions(client, args.submissions)
                for clients in args.clients:
                    bench_delivery(client, url, token, clients)
                bench_dedup(client)
        finally:
            process.terminate()
            process.wait(timeout=20)
    if args.json:
        args.json.write_text(json.dumps(RESULTS, indent=2))


if __name__ == "__main__":
    main()
