"""Benchmark: existence of 50 present + 50 absent images, imagebuild-nb vs the CLIs.

Compares, in one run and against the same plain-HTTP registry:

- ``ExistenceChecker.check_many`` (one client, concurrent HEADs; a fresh checker, so client
  construction and the first-contact probe are included),
- ``docker manifest inspect --insecure REF`` per image (the Docker CLI),
- ``skopeo inspect --tls-verify=false docker://REF`` per image,

once on loopback and once through a TCP proxy that delays every chunk by 10 ms each way
(20 ms round trip, plus one round trip for each new connection), like a registry across a
network. Not a test: run it and read the table.

    .venv/bin/python bench/bench_exists.py [--registry localhost:5001] [--cli-sample 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imagebuild_nb.checkers import ExistenceChecker  # noqa: E402
from imagebuild_nb.registry import AnonymousKeychain  # noqa: E402
from imagebuild_nb.settings import Settings  # noqa: E402
from tests.support.oci_upload import Uploader  # noqa: E402

log = logging.getLogger("bench_exists")

PRESENT = 50
ABSENT = 50


# -- a delay proxy ------------------------------------------------------------------------------


class DelayProxy:
    """Forwards 127.0.0.1:<port> to ``upstream`` with ``delay`` seconds added per direction.

    It runs in its own process, so its CPU time is not charged to the clients measured.
    """

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.port = 0
        self._process: multiprocessing.Process | None = None

    def __enter__(self) -> DelayProxy:
        receiver, sender = multiprocessing.Pipe(duplex=False)
        self._process = multiprocessing.Process(
            target=_serve_proxy, args=(self.upstream, self.delay, sender), daemon=True)
        self._process.start()
        self.port = receiver.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(5)


def _serve_proxy(upstream: tuple[str, int], delay: float, report_port: Connection) -> None:
    async def connection(client_reader: asyncio.StreamReader,
                         client_writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(2 * delay)  # the TCP handshake's round trip
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*upstream)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, upstream_writer),
                             pipe(upstream_reader, client_writer))

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(chunk)
                await writer.drain()
            writer.close()

        sender = asyncio.ensure_future(deliver())
        try:
            while chunk := await reader.read(65536):
                queue.put_nowait((time.monotonic() + delay, chunk))
        except OSError:
            pass
        queue.put_nowait((0.0, b""))
        try:
            await sender
        except OSError:
            pass

    async def main() -> None:
        server = await asyncio.start_server(connection, "127.0.0.1", 0)
        report_port.send(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the contenders ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    tool: str
    network: str
    images: int
    seconds: float
    correct: bool

    @property
    def per_image_ms(self) -> float:
        return self.seconds / self.images * 1000


def seed(registry: str) -> tuple[list[str], list[str]]:
    """Upload the present images (idempotent) and name the absent ones."""
    present, absent = [], []
    with httpx.Client(timeout=30) as client:
        uploader = Uploader(client, f"http://{registry}")
        for i in range(PRESENT):
            repository = f"bench/exists-{i % 5}"
            uploader.image(repository, f"present-{i}", labels={"bench": str(i)},
                           docker_media_types=True)  # docker 20.10's `manifest inspect` wants these
            present.append(f"{repository}:present-{i}")
    absent = [f"bench/exists-{i % 5}:absent-{i}" for i in range(ABSENT // 2)]
    absent += [f"bench/never-pushed-{i}:absent" for i in range(ABSENT - ABSENT // 2)]
    return present, absent


def run_ours(host: str, present: list[str], absent: list[str], network: str) -> list[Timing]:
    refs = [f"{host}/{name}" for name in present + absent]
    expected = ["exists"] * len(present) + ["missing"] * len(absent)
    timings = []
    checker = ExistenceChecker(Settings(registry_timeout=30, check_concurrency=32),
                               keychain=AnonymousKeychain())
    try:
        for label in ("imagebuild-nb (cold)", "imagebuild-nb (warm)"):
            started = time.perf_counter()
            results = checker.check_many(refs, use_cache=False)
            elapsed = time.perf_counter() - started
            states = [r.state for r in results]
            timings.append(Timing(label, network, len(refs), elapsed, states == expected))
            if states != expected:
                log.warning("imagebuild-nb answered %s", [r for r in results if r.unknown][:3])
    finally:
        checker.close()
    return timings


def run_cli(label: str, command: Callable[[str], list[str]], host: str, present: list[str],
            absent: list[str], network: str, env: dict[str, str], sample: int) -> Timing:
    chosen = present[: sample // 2] + absent[: sample - sample // 2]
    correct = True
    started = time.perf_counter()
    for index, name in enumerate(chosen):
        completed = subprocess.run(command(f"{host}/{name}"), capture_output=True, env=env)
        should_exist = index < min(sample // 2, len(present))
        if (completed.returncode == 0) != should_exist:
            correct = False
            log.warning("%s on %s: rc=%s %s", label, name, completed.returncode,
                        completed.stderr.decode(errors="replace").strip()[:200])
    return Timing(label, network, len(chosen), time.perf_counter() - started, correct)


def docker_cli() -> str | None:
    for candidate in ("/usr/bin/docker", "/usr/local/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def measure(host: str, network: str, present: list[str], absent: list[str], sample: int,
            env: dict[str, str]) -> list[Timing]:
    timings = run_ours(host, present, absent, network)
    docker = docker_cli()
    if docker:
        timings.append(run_cli("docker manifest inspect", lambda ref: [
            docker, "manifest", "inspect", "--insecure", ref], host, present, absent, network,
            env, sample))
    if shutil.which("skopeo"):
        timings.append(run_cli("skopeo inspect", lambda ref: [
            "skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"], host, present, absent,
            network, env, sample))
    return timings


def report(timings: Sequence[Timing]) -> str:
    lines = [f"{'network':<16}{'tool':<26}{'images':>7}{'total s':>9}{'ms/image':>10}"
             f"{'vs ours (cold)':>16}  correct"]
    for network in dict.fromkeys(t.network for t in timings):
        rows = [t for t in timings if t.network == network]
        ours = next(t for t in rows if t.tool == "imagebuild-nb (cold)")
        for t in rows:
            ratio = t.per_image_ms / ours.per_image_ms
            lines.append(f"{network:<16}{t.tool:<26}{t.images:>7}{t.seconds:>9.2f}"
                         f"{t.per_image_ms:>10.2f}{ratio:>15.1f}x  {t.correct}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", default=os.environ.get("IMAGEBUILD_NB_PLAIN_REGISTRY",
                                                             "localhost:5001"))
    parser.add_argument("--cli-sample", type=int, default=PRESENT + ABSENT,
                        help="images per CLI tool (half present, half absent)")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="added per direction")
    parser.add_argument("--json", type=Path, help="also write the timings here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    for noisy in ("httpx", "httpcore", "imagebuild_nb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    present, absent = seed(args.registry)
    registry_host, _, registry_port = args.registry.rpartition(":")
    with tempfile.TemporaryDirectory() as config_dir:
        # An empty CLI config: no credential helper may slow the CLIs down.
        env = {**os.environ, "DOCKER_CONFIG": config_dir, "DOCKER_CLI_EXPERIMENTAL": "enabled"}
        timings = measure(args.registry, "loopback", present, absent, args.cli_sample, env)
        with DelayProxy((registry_host, int(registry_port)), args.delay_ms / 1000) as proxy:
            network = f"+{2 * args.delay_ms:g} ms RTT"
            timings += measure(f"localhost:{proxy.port}", network, present, absent,
                               args.cli_sample, env)
    log.info("%s", report(timings))
    if args.json:
        args.json.write_text(json.dumps([{**t.__dict__, "per_image_ms": t.per_image_ms}
                                         for t in timings], indent=2))
    return 0 if all(t.correct for t in timings) else 1


if __name__ == "__main__":
    raise SystemExit(main())
