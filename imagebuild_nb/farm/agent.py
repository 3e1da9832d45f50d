"""``imagebuild-agent``: one per engine, pulls builds from the farm's database and runs them.

The agent builds with the project's own local builder (the Engine API driver: Docker or podman's
Docker API, on the local socket or ``DOCKER_HOST``), exactly as the embedded service does:

- at start it registers its engine and removes the build containers that killed agents left on
  it (the local builder's leftover sweep);
- it claims queued builds (``leases.claim``: ``FOR UPDATE SKIP LOCKED``, never more than
  ``slots`` at once, its image families first), extracts each context with the service's safe
  extraction, and streams the builder's events into the database in small batches, each write
  fenced by the claimed attempt;
- every ``lease / 3`` seconds it renews its leases and heartbeat, hands on builds whose agents
  died (``leases.reap``), and passes cancel requests (woken by NOTIFY, or seen at the renewal)
  to the running builds; a build it lost is cancelled on its engine and writes nothing more.

    imagebuild-agent --database-url postgresql://... --engine engine-a --slots 2 \\
        [--docker-host unix:///run/docker-b.sock]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.events import BuildCancelled, BuildEvent, BuildFailed, is_terminal
from imagebuild_nb.farm import leases
from imagebuild_nb.farm.store import (
    CANCEL_CHANNEL,
    DEFAULT_CONTEXT_GRACE,
    QUEUE_CHANNEL,
    Claim,
    FarmStore,
    FencedError,
)
from imagebuild_nb.service.archive import ArchiveLimits, extract_archive
from imagebuild_nb.service.redact import Redactor, docker_config_secrets
from imagebuild_nb.service.runner import BuildJob, BuildRunner

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.1  # seconds an event may wait in a batch before it is written


@dataclass
class AgentConfig:
    database_url: str
    engine: str
    slots: int = 2
    lease: float = leases.DEFAULT_LEASE
    steal_after: float = leases.DEFAULT_STEAL_AFTER
    work_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "imagebuild-agent")
    network_mode: str | None = None
    poll: float = 1.0
    context_grace: float = DEFAULT_CONTEXT_GRACE


class _Writer:
    """A build's events on their way to the database: batched, fenced by the attempt."""

    def __init__(self, store: FarmStore, claim: Claim, cancel: threading.Event) -> None:
        self.store, self.claim, self.cancel = store, claim, cancel
        self.pending: list[BuildEvent] = []
        self.lock = threading.Lock()
        self.last_flush = time.monotonic()
        self.fenced = False
        self.ended = False

    def add(self, event: BuildEvent) -> None:
        with self.lock:
            self.pending.append(event)
            due = is_terminal(event) or time.monotonic() - self.last_flush >= FLUSH_INTERVAL
        if due:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            events, self.pending = self.pending, []
            self.last_flush = time.monotonic()
            if not events or self.fenced or self.ended:
                return
            try:
                self.store.append(self.claim.id, self.claim.attempt, events)
            except FencedError:
                # The lease was lost (the build moved on) or the build ended: stop the engine's
                # work, write nothing more.
                log.warning("build %s attempt %d is fenced: stopping it", self.claim.id,
                            self.claim.attempt)
                self.fenced = True
                self.cancel.set()
                return
            if any(is_terminal(event) for event in events):
                self.ended = True


class Agent:
    def __init__(self, config: AgentConfig, runner: BuildRunner, *,
                 store: FarmStore | None = None, redactor: Redactor | None = None) -> None:
        self.config = config
        self.runner = runner
        self.store = store or FarmStore(config.database_url, pool_size=config.slots + 2,
                                        context_grace=config.context_grace)
        self.redactor = redactor or Redactor(docker_config_secrets())
        self.limits = ArchiveLimits()
        self._held: dict[str, tuple[Claim, threading.Event, _Writer]] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.draining = False
        # False from a lost engine until it answers again: no claims meanwhile.
        self.engine_ok = True

    # -- the loop ----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        config = self.config
        self.store.migrate()
        self._clean_start()
        leases.register(self.store, config.engine, config.slots)
        log.info("agent for engine %s: %d slot(s)", config.engine, config.slots)
        listener = psycopg.connect(config.database_url, autocommit=True)
        try:
            listener.execute(f"LISTEN {QUEUE_CHANNEL}")
            listener.execute(f"LISTEN {CANCEL_CHANNEL}")
            next_renewal = 0.0
            while not stop.is_set():
                if time.monotonic() >= next_renewal:
                    self._renew()
                    if not self.engine_ok:
                        self.engine_ok = self._engine_back()
                    next_renewal = time.monotonic() + config.lease / 3
                if not self.draining and self.engine_ok:
                    self._claim_all()
                self._flush_all()
                # A notification only wakes us early; rows are the truth, so a lost one costs
                # a poll interval.
                for _ in listener.notifies(timeout=config.poll, stop_after=1):
                    pass
        finally:
            listener.close()
            self._stop_builds()

    def _clean_start(self) -> None:
        """Remove what this engine's earlier agents left: work folders and build containers."""
        shutil.rmtree(self.config.work_dir / self.config.engine, ignore_errors=True)
        (self.config.work_dir / self.config.engine).mkdir(parents=True, exist_ok=True)
        ensure = getattr(getattr(self.runner, "builder", None), "ensure_available", None)
        if callable(ensure):
            ensure()  # the local builder's sweep removes leftover build containers

    def _engine_back(self) -> bool:
        """Whether the lost engine answers again; then its leftovers go (the containers the
        lost builds left) before any new claim."""
        builder = getattr(self.runner, "builder", None)
        try:
            close = getattr(builder, "close", None)
            if callable(close):
                close()  # a fresh connection to the restarted engine
            ensure = getattr(builder, "ensure_available", None)
            if callable(ensure):
                ensure()
            client = getattr(builder, "client", None)
            if client is not None:
                from imagebuild_nb.builders import docker_engine

                docker_engine.sweep_leftovers(client)
        except Exception:  # noqa: BLE001 -- still down: try again at the next renewal
            return False
        log.info("engine %s answers again: claiming", self.config.engine)
        return True

    def _claim_all(self) -> None:
        while True:
            with self._lock:
                if len(self._held) >= self.config.slots:
                    return
            claim = leases.claim(self.store, self.config.engine, self.config.slots,
                                 lease=self.config.lease, steal_after=self.config.steal_after)
            if claim is None:
                return
            cancel = threading.Event()
            writer = _Writer(self.store, claim, cancel)
            with self._lock:
                self._held[claim.id] = (claim, cancel, writer)
            thread = threading.Thread(target=self._build, args=(claim, cancel, writer),
                                      name=f"build-{claim.id}", daemon=True)
            self._threads.append(thread)
            thread.start()
            log.info("claimed build %s (attempt %d/%d) for %s", claim.id, claim.attempt,
                     claim.max_attempts, claim.uri)

    def _renew(self) -> None:
        self.draining = leases.beat(self.store, self.config.engine)
        with self._lock:
            held = {build_id: claim.attempt for build_id, (claim, _, _) in self._held.items()}
        renewal = leases.renew(self.store, self.config.engine, held, lease=self.config.lease)
        with self._lock:
            for build_id in renewal.lost | renewal.cancel:
                entry = self._held.get(build_id)
                if entry is not None:
                    if build_id in renewal.lost:
                        entry[2].fenced = True
                    entry[1].set()
        for build_id in leases.reap(self.store):
            log.warning("build %s lost its agent: handed on", build_id)

    def _flush_all(self) -> None:
        with self._lock:
            writers = [writer for _, _, writer in self._held.values()]
        for writer in writers:
            writer.flush()

    def _stop_builds(self) -> None:
        with self._lock:
            entries = list(self._held.values())
        for _, cancel, writer in entries:
            writer.fenced = True  # a stopping agent hands its builds on; it reports nothing
            cancel.set()
        for thread in self._threads:
            thread.join(timeout=60)
        leases.release(self.store, self.config.engine, [claim.id for claim, _, _ in entries])
        self.store.close()

    # -- one build (a thread) ----------------------------------------------------------------
    def _build(self, claim: Claim, cancel: threading.Event, writer: _Writer) -> None:
        folder = self.config.work_dir / self.config.engine / f"{claim.id}-{claim.attempt}"
        try:
            self._run(claim, cancel, writer, folder)
        except BuilderUnavailableError as error:
            # The engine is gone, not the build's fault: keep the log so far, end the lease
            # now, and the build is retried on another engine (leases.reap).
            log.warning("engine %s lost during build %s: %s", self.config.engine, claim.id, error)
            self.engine_ok = False
            writer.flush()
            writer.fenced = True
            leases.release(self.store, self.config.engine, [claim.id])
        except Exception as error:  # noqa: BLE001 -- an agent bug must still end the build
            log.exception("build %s crashed in the agent", claim.id)
            writer.add(BuildFailed(message=f"the build agent failed: {error}"))
        finally:
            writer.flush()
            shutil.rmtree(folder, ignore_errors=True)
            with self._lock:
                self._held.pop(claim.id, None)

    def _run(self, claim: Claim, cancel: threading.Event, writer: _Writer, folder: Path) -> None:
        data = self.store.read_context(claim.context)
        if data is None:
            writer.add(BuildFailed(message=f"the build context {claim.context} is no longer "
                                           "stored; submit the build again"))
            return
        folder.mkdir(parents=True, exist_ok=True)
        archive = folder / "context.tar"
        archive.write_bytes(data)
        del data
        context_dir = folder / "context"
        extract_archive(archive, context_dir, self.limits)  # the service's safe extraction
        archive.unlink()
        job = BuildJob(build_id=claim.id, uri=claim.uri, context_dir=context_dir,
                       dockerfile=claim.dockerfile, force=claim.force, push=claim.push,
                       spec=claim.spec, platform=claim.platform)
        terminal = False
        for event in self.runner.run(job, cancel):
            writer.add(self.redactor.event(event))
            if is_terminal(event):
                terminal = True
                break
        if not terminal:
            writer.add(BuildCancelled() if cancel.is_set() else
                       BuildFailed(message="the builder stopped without reporting a result"))


def engine_runner(network_mode: str | None) -> BuildRunner:
    from imagebuild_nb.service.engine_runner import DockerApiRunner

    return DockerApiRunner(network_mode=network_mode)


def main(argv: list[str] | None = None, *,
         runner_factory: Callable[[str | None], BuildRunner] = engine_runner) -> int:
    parser = argparse.ArgumentParser(
        prog="imagebuild-agent",
        description="Run image builds from the build farm's database on one engine.")
    env = os.environ.get
    parser.add_argument("--database-url", default=env("IMAGEBUILD_NB_DATABASE_URL"),
                        help="PostgreSQL URL (IMAGEBUILD_NB_DATABASE_URL)")
    parser.add_argument("--engine", default=env("IMAGEBUILD_NB_AGENT_ENGINE", socket.gethostname()),
                        help="this engine's name in the farm (default: the host name)")
    parser.add_argument("--docker-host", default=env("DOCKER_HOST"),
                        help="the engine's API (default: DOCKER_HOST or the local socket)")
    parser.add_argument("--slots", type=int, default=int(env("IMAGEBUILD_NB_AGENT_SLOTS", "2")),
                        help="builds at once on this engine")
    parser.add_argument("--lease", type=float, default=leases.DEFAULT_LEASE,
                        help="seconds a claim lives without a renewal")
    parser.add_argument("--steal-after", type=float, default=leases.DEFAULT_STEAL_AFTER,
                        help="seconds before taking another engine's family")
    parser.add_argument("--network-mode", default=env("IMAGEBUILD_NB_NETWORK_MODE"))
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--context-grace", type=float, default=DEFAULT_CONTEXT_GRACE,
                        help="seconds a context stays after its last build (a client that "
                             "just found it there may still submit against it)")
    parser.add_argument("--drain", action="store_true",
                        help="ask the running agent of --engine to take no new builds, and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not args.database_url:
        parser.error("no database: give --database-url or set IMAGEBUILD_NB_DATABASE_URL")
    if args.slots < 1:
        parser.error("--slots must be at least 1")
    if args.drain:
        store = FarmStore(args.database_url)
        leases.drain(store, args.engine)
        store.close()
        return 0
    if args.docker_host:
        os.environ["DOCKER_HOST"] = args.docker_host
    config = AgentConfig(database_url=args.database_url, engine=args.engine, slots=args.slots,
                         lease=args.lease, steal_after=args.steal_after,
                         network_mode=args.network_mode, context_grace=args.context_grace)
    if args.work_dir is not None:
        config.work_dir = args.work_dir
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    Agent(config, runner_factory(args.network_mode)).run(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
