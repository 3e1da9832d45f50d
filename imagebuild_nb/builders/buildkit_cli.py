"""The BuildKit driver: ``docker build`` with BuildKit as a subprocess, ``--progress=plain``.

BuildKit brings cache mounts (pip/apt downloads survive rebuilds), build secrets (e.g. a CA
bundle that never lands in a layer) and a context the engine only re-reads when it changed.
The CLI is found by capability, not by name: ``docker buildx`` when the plug-in is there,
else a CLI whose classic ``build`` speaks BuildKit (``DOCKER_BUILDKIT=1``, docker 18.09-22.x).
Newer CLIs without buildx refuse BuildKit and are skipped. Pushing goes through the Engine API.

>>> BuildKitCliBuilder(Cli("/usr/bin/docker", "classic")).command(
...     BuildRequest(dockerfile="", context=InMemoryContext({}), tags=("demo:1",)))
['/usr/bin/docker', 'build', '--progress=plain', '-f', 'Dockerfile', '--iidfile', '<iidfile>', '-t', 'demo:1', '-']
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from imagebuild_nb.builders import docker_engine
from imagebuild_nb.builders.base import BuildRequest
from imagebuild_nb.builders.context import InMemoryContext
from imagebuild_nb.builders.plain_progress import PlainProgressParser
from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.events import BuildCancelled, BuildEvent, BuildFailed

log = logging.getLogger(__name__)

CLI_HINT = (
    "install a docker CLI with BuildKit (the buildx plug-in, or a 20.10-22.x CLI) and point "
    "the docker_cli setting at it, or use local_driver='docker-api'"
)
_INT_GRACE = 1.0
_KILL_GRACE = 5.0
_probe_lock = threading.Lock()
_probed: dict[str, Cli | None] = {}


@dataclass(frozen=True)
class Cli:
    """A docker CLI that can build with BuildKit; ``mode`` is ``buildx`` or ``classic``."""

    path: str
    mode: str


def _probe(path: str) -> Cli | None:
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}

    def ok(*args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            done = subprocess.run([path, *args], capture_output=True, text=True, timeout=15,
                                  env=env)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done if done.returncode == 0 else None

    if ok("buildx", "version"):
        return Cli(path, "buildx")
    helped = ok("build", "--help")
    if helped and "--secret" in helped.stdout and "--progress" in helped.stdout:
        return Cli(path, "classic")
    return None


def _candidates(preferred: str) -> list[str]:
    found: list[str] = []
    first = preferred if os.sep in preferred else shutil.which(preferred)
    if first:
        found.append(first)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        path = os.path.join(directory, "docker")
        if os.access(path, os.X_OK) and os.path.realpath(path) not in map(os.path.realpath, found):
            found.append(path)
    return found


def find_cli(preferred: str = "docker") -> Cli | None:
    """The first BuildKit-capable CLI: ``preferred`` first, then every ``docker`` on PATH."""
    for path in _candidates(preferred):
        key = os.path.realpath(path)
        with _probe_lock:
            if key not in _probed:
                _probed[key] = _probe(path)
                log.debug("docker CLI %s: %s", path, _probed[key] or "no BuildKit")
            cli = _probed[key]
        if cli is not None:
            return cli
    return None


class BuildKitCliBuilder:
    """Builds with BuildKit through the docker CLI; pushes through the Engine API."""

    name = "local"
    driver = "buildkit"

    def __init__(self, cli: Cli | None = None, *, docker_cli: str = "docker") -> None:
        self._cli = cli
        self._docker_cli = docker_cli
        self._engine: docker_engine.CapturingAPIClient | None = None
        self._lock = threading.Lock()

    @property
    def cli(self) -> Cli:
        if self._cli is None:
            self._cli = find_cli(self._docker_cli)
            if self._cli is None:
                raise BuilderUnavailableError(
                    f"no docker CLI with BuildKit found (tried {self._docker_cli!r} and PATH)",
                    hint=CLI_HINT)
        return self._cli

    @property
    def engine(self) -> docker_engine.CapturingAPIClient:
        with self._lock:
            if self._engine is None:
                self._engine = docker_engine.connect()
            return self._engine

    def ensure_available(self) -> None:
        docker_engine.ping(self.engine)
        _ = self.cli

    def command(self, request: BuildRequest, iidfile: str = "<iidfile>") -> list[str]:
        cli = self.cli
        args = [cli.path, *(["buildx", "build", "--load"] if cli.mode == "buildx" else ["build"])]
        args += ["--progress=plain", "-f", request.dockerfile_path, "--iidfile", iidfile]
        for tag in request.tags:
            args += ["-t", tag]
        for key in sorted(request.build_args):
            args += ["--build-arg", f"{key}={request.build_args[key]}"]
        for key in sorted(request.labels):
            args += ["--label", f"{key}={request.labels[key]}"]
        for secret_id in sorted(request.secrets):
            source = request.secrets[secret_id]  # a file, or "env:NAME" (the CLI reads it)
            where = f"env={source[4:]}" if source.startswith("env:") else f"src={source}"
            args += ["--secret", f"id={secret_id},{where}"]
        if request.network_mode:
            args += ["--network", request.network_mode]
        if request.no_cache:
            args.append("--no-cache")
        if request.platform:
            args += ["--platform", request.platform]
        return [*args, "-"]

    def describe(self, request: BuildRequest) -> str:
        text = "DOCKER_BUILDKIT=1 " + shlex.join(self.command(request)) + " < context.tar"
        if request.push:
            text += f"; then Engine API push of {request.primary_tag}"
        return text

    def build(self, request: BuildRequest, cancel: threading.Event) -> Iterator[BuildEvent]:
        parser = PlainProgressParser()
        with tempfile.TemporaryDirectory(prefix="imagebuild-") as scratch:
            iidfile = str(Path(scratch, "iid"))
            process = _start(self.command(request, iidfile))
            writer = threading.Thread(target=_feed, args=(process, request),
                                      name="imagebuild-context", daemon=True)
            writer.start()
            watcher = threading.Thread(target=_watch, args=(process, cancel),
                                       name="imagebuild-cancel-watch", daemon=True)
            watcher.start()
            assert process.stdout is not None
            try:
                for raw in process.stdout:
                    yield from parser.feed(raw.decode("utf-8", "replace"))
            finally:
                process.stdout.close()
                if process.poll() is None:  # our consumer went away: do not leave it running
                    _stop(process)
            code = process.wait()
            writer.join(timeout=5)
            if cancel.is_set():
                yield BuildCancelled(message="cancelled; the docker CLI and its build stopped")
                return
            image_id = Path(iidfile).read_text().strip() if Path(iidfile).is_file() else None
        if code != 0 or not image_id:
            yield BuildFailed(
                message=parser.error or f"docker build exited with status {code}",
                step=parser.failed_step, exit_code=parser.exit_code,
                lines=parser.failure_tail(),
            )
            return
        yield from docker_engine.push_and_finish(self.engine, request, image_id, cancel)


def _start(command: Sequence[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DOCKER_BUILDKIT": "1", "BUILDKIT_PROGRESS": "plain"}
    log.debug("running %s", shlex.join(command))
    try:
        # Own process group: a cancel signals the CLI and anything it spawned, and a kernel
        # interrupt (SIGINT to our group) does not reach it behind our back.
        return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    except OSError as error:
        raise BuilderUnavailableError(f"cannot run {command[0]}: {error}", hint=CLI_HINT) from error


def _feed(process: subprocess.Popen[bytes], request: BuildRequest) -> None:
    assert process.stdin is not None
    try:
        request.context.write_tar(process.stdin)
    except (BrokenPipeError, ValueError):
        log.debug("docker build stopped reading the context")
    except Exception:
        log.exception("writing the build context failed")
    finally:
        try:
            process.stdin.close()
        except OSError:
            pass


def _watch(process: subprocess.Popen[bytes], cancel: threading.Event) -> None:
    while process.poll() is None:
        if cancel.wait(0.1):
            _stop(process)
            return


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT, then SIGKILL: closing the CLI's session makes the engine kill the RUN process.

    The 20.10 CLI acknowledges SIGINT but then waits for the running step to end by itself
    (measured: a ``sleep 30`` kept it alive), so the grace period is short.
    """
    for sig, grace in ((signal.SIGINT, _INT_GRACE), (signal.SIGKILL, _KILL_GRACE)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            log.debug("docker build did not stop on %s", sig.name)


__all__ = ["BuildKitCliBuilder", "Cli", "find_cli", "InMemoryContext"]
