"""Benchmark the build farm: one vs two service replicas on PostgreSQL, one vs two engines.

Starts a private PostgreSQL cluster (initdb + pg_ctl, as the tests do), service replicas as
their own processes with ``IMAGEBUILD_NB_DATABASE_URL``, and ``imagebuild-agent`` processes; the
second engine is a second dockerd of its own (tests/support/second_engine.py). Measures:

- submission latency (context uploaded; 10 at once, spread over the replicas), median and p95;
- event delivery latency with 1/10/50 SSE clients spread over the replicas (receive time minus
  the event's own timestamp, set by the agent when the builder produced it; same clock);
- builds per minute for 20 small distinct images (busybox + one RUN, pushed to the local
  registry) with one engine vs two engines.

    .venv/bin/python bench/bench_farm.py [--clients 1 10 50] [--submissions 40] [--images 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_service import quantiles, quantiles_ms  # noqa: E402

from imagebuild_nb.builders import BuildRequest, InMemoryContext  # noqa: E402
from tests.service.conftest import ServiceProcess  # noqa: E402
from tests.support.farm import AgentProcess  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402
from tests.support.services import BUSYBOX_IMAGE, PLAIN_REGISTRY  # noqa: E402

RESULTS: dict[str, object] = {}


def request(uri: str, run: str | None = None, *, push: bool = False) -> BuildRequest:
    dockerfile = (f"FROM {BUSYBOX_IMAGE}\nLABEL bench={uuid.uuid4().hex}\n"
                  + (f"RUN {run}\n" if run else ""))
    return BuildRequest(dockerfile=dockerfile, context=InMemoryContext({"Dockerfile": dockerfile}),
                        tags=(uri,), push=push)


def bench_submissions(replicas: list[ServiceProcess], count: int) -> None:
    with replicas[0].client() as client:
        digest = client.upload_context(request("bench/farm-x:1"))
    clients = [replica.client() for replica in replicas]

    def timed(index: int) -> tuple[float, str]:
        client = clients[index % len(clients)]
        started = time.perf_counter()
        run = client.submit(f"bench/farm-submit-{uuid.uuid4().hex[:8]}:{index}", digest,
                            push=False)
        return time.perf_counter() - started, run.id

    with ThreadPoolExecutor(10) as pool:
        timings = list(pool.map(timed, range(count)))
    latencies = [latency for latency, _ in timings]
    for _, build_id in timings:  # the builds run before the next measurement starts
        clients[0].wait(build_id)
    for client in clients:
        client.close()
    label = f"{len(replicas)} replica(s)"
    print(f"submission latency, {label}, {count} submissions 10 at once: {quantiles(latencies)}")
    RESULTS.setdefault("submit", []).append(  # type: ignore[union-attr]
        {"replicas": len(replicas), "count": count, **quantiles_ms(latencies)})


def bench_delivery(replicas: list[ServiceProcess], clients: int) -> None:
    run_line = "i=0; while [ $i -lt 200 ]; do echo tick-$i; i=$((i+1)); sleep 0.01; done"
    with replicas[0].client() as client:
        run = client.submit_request(request(f"bench/farm-events-{uuid.uuid4().hex[:8]}:1",
                                            run_line))
    latencies: list[float] = []
    counts: list[int] = []
    lock = threading.Lock()

    def follow(index: int) -> None:
        mine: list[float] = []
        seen = 0
        with replicas[index % len(replicas)].client() as own:
            for event in own.events(run.id):
                seen += 1
                if event.kind == "log":
                    mine.append(time.time() - event.time)
        with lock:
            latencies.extend(mine)
            counts.append(seen)

    threads = [threading.Thread(target=follow, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    live = [value for value in latencies if value < 5]  # late joiners replay the backlog
    label = f"{len(replicas)} replica(s)"
    if not live:
        print(f"event delivery, {label}, {clients} clients: no live log events measured")
        return
    print(f"event delivery, {label}, {clients:3d} SSE clients ({len(live)} log events): "
          f"{quantiles(live)}   every client got {min(counts)}..{max(counts)} events")
    RESULTS.setdefault("delivery", []).append(  # type: ignore[union-attr]
        {"replicas": len(replicas), "clients": clients, "events": len(live),
         "min_events": min(counts), **quantiles_ms(live)})


def bench_throughput(replica: ServiceProcess, engines: int, images: int) -> None:
    tag = uuid.uuid4().hex[:8]
    requests = [request(f"{PLAIN_REGISTRY}/bench/farm-{tag}-{index}:1",
                        f"echo {tag}-{index} > /x && sleep 1", push=True)
                for index in range(images)]
    with replica.client() as client:
        started = time.perf_counter()
        ids = [client.submit_request(item).id for item in requests]
        records = [client.wait(build_id) for build_id in ids]
        elapsed = time.perf_counter() - started
    per_minute = images / elapsed * 60
    spread = {}
    for record in records:
        spread[record.get("engine")] = spread.get(record.get("engine"), 0) + 1
    print(f"throughput, {engines} engine(s): {images} images in {elapsed:.1f} s = "
          f"{per_minute:.1f} builds/min   per engine {spread}")
    RESULTS.setdefault("throughput", []).append(  # type: ignore[union-attr]
        {"engines": engines, "images": images, "seconds": elapsed,
         "builds_per_minute": per_minute, "per_engine": spread})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    try:
        run(args)
    finally:
        if args.json:
            args.json.write_text(json.dumps(RESULTS, indent=2))


def run(args: argparse.Namespace) -> None:
    from tests.support.second_engine import second_engine

    with tempfile.TemporaryDirectory() as directory, PostgresCluster.start_new() as postgres:
        root = Path(directory)
        url = postgres.create_database()
        env = {"IMAGEBUILD_NB_DATABASE_URL": url}
        replicas = []
        agents = [AgentProcess(url, "engine-a", root, slots=2, context_grace=600).start()]
        try:
            for index in range(2):
                (root / f"replica-{index}").mkdir()
                replicas.append(ServiceProcess(root / f"replica-{index}", env=env).start())
            for count in (1, 2):
                bench_submissions(replicas[:count], args.submissions)
                for clients in args.clients:
                    bench_delivery(replicas[:count], clients)
            if not args.images:
                return
            bench_throughput(replicas[0], 1, args.images)
            with second_engine(root / "engine-b", images=(BUSYBOX_IMAGE,)) as engine:
                agents.append(AgentProcess(url, "engine-b", root, slots=2, context_grace=600,
                                           docker_host=engine.host).start())
                try:
                    bench_throughput(replicas[0], 2, args.images)
                finally:
                    agents.pop().stop()
        finally:
            for replica in replicas:
                replica.stop()
            for agent in agents:
                agent.stop()


if __name__ == "__main__":
    main()
