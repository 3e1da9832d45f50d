"""The BuildKit driver: ``docker build`` with BuildKit as a subprocess, ``--progress=plain``.

BuildKit brings cache mounts (pip/apt downloads survive rebuilds), build secrets (e.g. a CA
bundle that never lands in a layer) and a context the engine only re-reads when it changed.
The CLI is found by capability, not by name: ``docker buildx`` when the plug-in is there,
else a CLI whose classic ``build`` speaks BuildKit (``DOCKER_BUILDKIT=1``, docker 18.09-22.x).
Newer CLIs without buildx refuse BuildKit and are skipped. Pushing goes through the Engine API.

>>> command = BuildKitCliBuilder(Cli("/usr/bin/docker", "classic")).command(
...     BuildRequest(dockerfile="", context=InMemoryContext({}), tags=("demo:1",)))
>>> command  # doctest: +NORMALIZE_WHITESPACE
['/usr/bin/docker', 'build', '--progress=plain', '-f', 'Dockerfile', '--iidfile', '<iidfile>',
 '-t', 'demo:1', '-']
"""

from __future__ import annotations

import codecs
import logging
import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from imagebuild_nb.builders import child, docker_engine
from imagebuild_nb.builders.base import BuildRequest
from imagebuild_nb.builders.context import InMemoryContext
from imagebuild_nb.builders.leftovers import Scratch
from imagebuild_nb.builders.plain_progress import PlainProgressParser
from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.events import BuildCancelled, BuildEvent, BuildFailed, LogLine

log = logging.getLogger(__name__)

CLI_HINT = (
    "install a docker CLI with BuildKit (the buildx plug-in, or a 20.10-22.x CLI) and point "
    "the docker_cli setting at it, or use local_driver='docker-api'"
)
SILENCE_TIMEOUT = 600.0  # the build_silence_timeout setting's default
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

    def __init__(self, cli: Cli | None = None, *, docker_cli: str = "docker",
                 silence_timeout: float = SILENCE_TIMEOUT) -> None:
        self._cli = cli
        self._docker_cli = docker_cli
        # Seconds the CLI may print nothing before the build is stopped as hung (0: no limit).
        self.silence_timeout = silence_timeout
        self._engine: docker_engine.CapturingAPIClient | None = None
        self._lock = threading.Lock()
        self._swept = False

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

    def close(self) -> None:
        """Drop the engine connection (the next call opens a fresh one)."""
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    def ensure_available(self) -> None:
        docker_engine.ping(self.engine)
        _ = self.cli
        if not self._swept:  # what killed processes left: once per builder
            self._swept = True
            docker_engine.sweep_leftovers(self.engine)

    def command(self, request: BuildRequest, iidfile: str = "<iidfile>") -> list[str]:
        cli = self.cli
        args = [cli.path, *(["buildx", "build", "--load"] if cli.mode == "buildx" else ["build"])]
        args += ["--progress=plain", "-f", request.dockerfile_path, "--iidfile", iidfile]
        for tag in request.tags:
            args += ["-t", tag]
        args += request.cli_flags()
        return [*args, "-"]

    def describe(self, request: BuildRequest) -> str:
        text = "DOCKER_BUILDKIT=1 " + shlex.join(self.command(request)) + " < context.tar"
        if request.push:
            text += f"; then Engine API push of {request.primary_tag}"
        return text

    def build(self, request: BuildRequest, cancel: threading.Event) -> Iterator[BuildEvent]:
        parser = PlainProgressParser()
        silent: child.Silent | None = None
        before = docker_engine.image_id(self.engine, request.primary_tag)
        with Scratch.create() as scratch:
            iidfile = str(scratch.path / "iid")
            process = _start(self.command(request, iidfile))
            writer = threading.Thread(target=_feed, args=(process, request),
                                      name="imagebuild-context", daemon=True)
            writer.start()
            watcher = threading.Thread(target=_watch, args=(process, cancel),
                                       name="imagebuild-cancel-watch", daemon=True)
            watcher.start()
            assert process.stdout is not None
            text = codecs.getincrementaldecoder("utf-8")("replace")
            try:
                for data in child.chunks(process, self.silence_timeout):
                    yield from parser.feed_chunk(text.decode(data))
                yield from parser.feed_chunk(text.decode(b"", final=True))
                yield from parser.flush()
            except child.Silent as error:
                silent = error
            finally:
                if process.poll() is None:  # silent, or our consumer went away: stop it
                    child.stop(process)
                process.stdout.close()
            code = child.wait(process, timeout=30)
            writer.join(timeout=5)
            if cancel.is_set():
                yield BuildCancelled(message="cancelled; the docker CLI and its build stopped")
                return
            image_id = Path(iidfile).read_text().strip() if Path(iidfile).is_file() else None
        if silent is not None:
            # The 20.10 CLI can stall on its own output (a very long line) after the engine
            # finished: a new image under the tag is the build's result.
            tagged = docker_engine.image_id(self.engine, request.primary_tag)
            if tagged is None or tagged == before:
                yield BuildFailed(message=docker_engine.silence_message(silent.seconds),
                                  step=parser.current_step, lines=parser.current_tail())
                return
            code, image_id = 0, tagged
            yield LogLine(text=f"the docker CLI printed nothing for {silent.seconds:g} s and "
                          "was stopped; the engine had finished the build", stream="system")
        if code != 0 and not docker_engine.answers(self.engine):
            self.close()  # its pooled connections point at the engine that went away
            raise BuilderUnavailableError(
                f"lost the Docker engine at {docker_engine.engine_address()} during the build "
                f"({parser.error or f'docker build exited with status {code}'})",
                hint=docker_engine.LOST_HINT)
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
    try:
        # Own session, dies with us: see imagebuild_nb.builders.child.
        return child.start(command, env)
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
            child.stop(process)
            return


__all__ = ["BuildKitCliBuilder", "Cli", "find_cli", "InMemoryContext"]
