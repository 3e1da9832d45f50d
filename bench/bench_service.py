"""Benchmark the build service: submission latency, event delivery latency, dedup under load.

Starts the service as its own process on loopback (real engine; busybox base in the local
registry), then measures:

- submission latency: ``POST /imagebuild/api/builds`` round trip (context already uploaded),
  median and p95 over distinct submissions;
- event delivery latency with N concurrent SSE clients: receive time minus the event's own
  timestamp (set when the service got it from the builder; same clock), median and p95;
- dedup: 20 identical concurrent submissions -> how many builds.

    .venv/bin/python bench/bench_service.py [--clients 1 10 50] [--submissions 40]
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

BASE = os.environ.get("IMAGEBUILD_NB_BENCH_BASE", "localhost:5001/library/busybox:latest")
RESULTS: dict[str, object] = {}  # the figures printed below, for --json (bench/run_all.py)


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
         "--ImageBuildServiceApp.max_concurrent_builds=2",
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


def bench_submissions(client: RemoteBuildClient, count: int) -> None:
    digest = client.upload_context(request("bench/x:1"))
    latencies = []
    for index in range(count):
        started = time.perf_counter()
        client.submit(f"bench/submit-{uuid.uuid4().hex[:8]}:{index}", digest, push=False)
        latencies.append(time.perf_counter() - started)
    print(f"submission latency ({count} sequential submissions): {quantiles(latencies)}")
    RESULTS["submit_sequential"] = {"count": count, **quantiles_ms(latencies)}
    with ThreadPoolExecutor(10) as pool:
        def timed(index: int) -> float:
            started = time.perf_counter()
            client.submit(f"bench/submit-par-{uuid.uuid4().hex[:8]}:{index}", digest, push=False)
            return time.perf_counter() - started
        parallel = list(pool.map(timed, range(count)))
    print(f"submission latency ({count} submissions, 10 at once):   {quantiles(parallel)}")
    RESULTS["submit_parallel"] = {"count": count, "concurrency": 10, **quantiles_ms(parallel)}


def bench_delivery(client: RemoteBuildClient, url: str, token: str, clients: int) -> None:
    run_line = "i=0; while [ $i -lt 200 ]; do echo tick-$i; i=$((i+1)); sleep 0.01; done"
    run = client.submit_request(request(f"bench/events-{uuid.uuid4().hex[:8]}:1", run_line))
    latencies: list[float] = []
    counts: list[int] = []
    lock = threading.Lock()

    def follow() -> None:
        mine: list[float] = []
        seen = 0
        with RemoteBuildClient(url, token) as own:
            for event in own.events(run.id):
                now = time.time()
                seen += 1
                if event.kind == "log":
                    mine.append(now - event.time)
        with lock:
            latencies.extend(mine)
            counts.append(seen)

    threads = [threading.Thread(target=follow) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Late joiners get the backlog replayed: only the live part is a delivery latency.
    live = [value for value in latencies if value < 5]
    print(f"event delivery, {clients:3d} concurrent SSE clients ({len(live)} log events): "
          f"{quantiles(live)}   every client got {min(counts)}..{max(counts)} events")
    RESULTS.setdefault("delivery", []).append(  # type: ignore[union-attr]
        {"clients": clients, "events": len(live), "min_events": min(counts),
         "max_events": max(counts), **quantiles_ms(live)})


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
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--json", type=Path, help="also write the results here (bench/run_all.py)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        process, url, token = start_service(Path(directory))
        try:
            with RemoteBuildClient(url, token) as client:
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
