"""The ``local-podman`` builder: ``podman build`` and ``podman push`` as subprocesses.

For users with podman and no Docker daemon (Fedora, RHEL, rootless setups, clusters). The same
request, events, cancel, errors and result as the Docker builders:

- the context tar is unpacked into a scratch folder that podman builds from;
- several platforms (``request.platform == "linux/amd64,linux/arm64"``) build into one manifest
  list (``--manifest``) that is pushed with ``podman manifest push --all`` as one OCI index;
- registries on loopback (and those in ``insecure_registries``) are spoken to with
  ``--tls-verify=false``, as dockerd treats them;
- a cancel stops podman (SIGINT, then SIGKILL to its process group) and removes the build's
  working containers, which a stopped podman leaves in its store;
- podman dies with this process (:mod:`.child`); its scratch folder (context, podman's TMPDIR,
  the working containers noted at each stage's first step) is swept by the next podman
  builder to start when this process was killed (:mod:`.leftovers`).

``root``/``runroot`` give podman a private store (``--root``/``--runroot``), e.g. beside a
Docker engine on the same machine.

>>> from imagebuild_nb.builders.context import InMemoryContext
>>> command = PodmanBuilder("podman").command(BuildRequest(dockerfile="",
...     context=InMemoryContext({}), tags=("demo:1",)), "/ctx", "/iid")
>>> command  # doctest: +NORMALIZE_WHITESPACE
['podman', 'build', '--layers', '--force-rm', '-f', '/ctx/Dockerfile', '--iidfile', '/iid',
 '-t', 'demo:1', '/ctx']
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import os
import shlex
import subprocess
import tarfile
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path

import httpx

from imagebuild_nb.builders import child, leftovers
from imagebuild_nb.builders.base import BuildRequest
from imagebuild_nb.builders.leftovers import Scratch
from imagebuild_nb.builders.lines import LineSplitter, readable
from imagebuild_nb.builders.podman_output import PodmanOutputParser
from imagebuild_nb.checkers.base import Stopwatch, spec_hash_verdict
from imagebuild_nb.checkers.result import ExistenceResult
from imagebuild_nb.errors import BuilderUnavailableError, ImageBuildError
from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    PushProgress,
    StepStarted,
)
from imagebuild_nb.registry import default_keychain
from imagebuild_nb.registry.client import RegistryClient
from imagebuild_nb.registry.index import platform_digests
from imagebuild_nb.settings import Settings
from imagebuild_nb.spec.reference import ImageReference

log = logging.getLogger(__name__)

PODMAN_HINT = ("install podman (Debian/Ubuntu: apt-get install podman; Fedora/RHEL: dnf install "
               "podman) or point the podman_cli setting at it; or use builder='local' (Docker)")
SILENCE_TIMEOUT = 600.0
_LOOPBACK = ("localhost", "127.", "[::1]")


class PodmanBuilder:
    """Builds and pushes with the podman CLI; see the module docstring."""

    name = "local-podman"
    driver = "podman"

    def __init__(self, podman: str = "podman", *, root: str | None = None,
                 runroot: str | None = None, insecure_registries: Sequence[str] = (),
                 silence_timeout: float = SILENCE_TIMEOUT) -> None:
        self.podman = podman
        self.root = root
        self.runroot = runroot
        self.insecure_registries = tuple(insecure_registries)
        self.silence_timeout = silence_timeout
        self._swept = False

    @property
    def store(self) -> str:
        """Names podman's image store in scratch records, as an engine address does."""
        return f"podman:{self.root or 'default'}"

    def builds_indexes(self) -> bool:
        """Several platforms build into one manifest list (``--manifest``), pushed as an index."""
        return True

    # -- what runs ---------------------------------------------------------------------------
    def base(self) -> list[str]:
        args = [self.podman]
        if self.root:
            args += ["--root", self.root]
        if self.runroot:
            args += ["--runroot", self.runroot]
        return args

    def insecure(self, request: BuildRequest) -> bool:
        """Loopback or configured-insecure registries in the tags or the FROM lines."""
        hosts = {ImageReference.parse(tag).registry or "" for tag in request.tags}
        for line in request.dockerfile.splitlines():
            words = line.split()
            if len(words) >= 2 and words[0].upper() == "FROM":
                image = next((w for w in words[1:] if not w.startswith("--")), "")
                if "/" in image:
                    hosts.add(image.split("/", 1)[0])
        return any(h.startswith(_LOOPBACK) or h in self.insecure_registries for h in hosts if h)

    def platforms(self, request: BuildRequest) -> list[str]:
        return [p for p in (request.platform or "").split(",") if p]

    def command(self, request: BuildRequest, context_dir: str, iidfile: str) -> list[str]:
        args = [*self.base(), "build", "--layers", "--force-rm", "-f",
                f"{context_dir}/{request.dockerfile_path}", "--iidfile", iidfile]
        multi = len(self.platforms(request)) > 1
        for tag in request.tags:
            args += ["--manifest", tag] if multi else ["-t", tag]
        args += request.cli_flags()
        if self.insecure(request):
            args.append("--tls-verify=false")
        return [*args, context_dir]

    def push_command(self, request: BuildRequest, digestfile: str) -> list[str]:
        tag = request.primary_tag
        tls = ["--tls-verify=false"] if self.insecure(request) else []
        if len(self.platforms(request)) > 1:
            return [*self.base(), "manifest", "push", "--all", *tls, "--digestfile", digestfile,
                    tag, f"docker://{tag}"]
        return [*self.base(), "push", *tls, "--digestfile", digestfile, tag]

    def describe(self, request: BuildRequest) -> str:
        text = shlex.join(self.command(request, "<context>", "<iidfile>"))
        if request.push:
            text += "; then " + shlex.join(self.push_command(request, "<digestfile>"))
        return text

    # -- availability ------------------------------------------------------------------------
    def ensure_available(self) -> None:
        try:
            done = subprocess.run([*self.base(), "version", "--format", "{{.Client.Version}}"],
                                  capture_output=True, text=True, timeout=60)
        except FileNotFoundError as error:
            raise BuilderUnavailableError(f"podman not found ({self.podman!r})",
                                          hint=PODMAN_HINT) from error
        except (OSError, subprocess.TimeoutExpired) as error:
            raise BuilderUnavailableError(f"cannot run {self.podman}: {error}",
                                          hint=PODMAN_HINT) from error
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise BuilderUnavailableError(f"podman does not work here: {why[0]}", hint=PODMAN_HINT)
        if not self._swept:  # what killed processes left: once per builder
            self._swept = True
            leftovers.sweep(self.store, self._remove_container)

    def _remove_container(self, container: str) -> bool:
        done = self._quiet(["rm", "-f", container])
        return done.returncode == 0 or "no such container" in done.stderr.lower()

    # -- existence in podman's own store (images that name no registry) ------------------------
    def check_store(self, reference: str, *, spec_hash: str | None = None,
                    platform: str | None = None) -> ExistenceResult:
        ref = ImageReference.parse(reference)
        watch = Stopwatch(ref, "podman store")
        try:
            done = self._quiet(["image", "inspect", "--format", "json", reference])
        except FileNotFoundError:
            return watch.unknown(f"daemon down: podman not found ({self.podman!r})")
        except (OSError, subprocess.TimeoutExpired) as error:
            return watch.unknown(f"error: podman image inspect failed ({error})")
        if done.returncode != 0:
            if "image not known" in done.stderr or "no such image" in done.stderr.lower():
                return watch.result("missing")
            return watch.unknown(f"error: podman image inspect: {done.stderr.strip()[-300:]}")
        try:
            data = json.loads(done.stdout)[0]
        except (ValueError, IndexError, KeyError) as error:
            return watch.unknown(f"error: podman image inspect printed no image ({error})")
        have = "/".join(p for p in (data.get("Os"), data.get("Architecture")) if p)
        if platform and "," not in platform and have and have != platform:
            return watch.result("missing", platforms=(have,),
                                reason=f"the image is for {have}, not {platform}")
        matches, reason = spec_hash_verdict({"config": {"Labels": data.get("Labels") or {}}},
                                            spec_hash)
        return watch.result("exists", digest=data.get("Digest") or data.get("Id"),
                            platforms=(have,) if have else (), spec_hash_matches=matches,
                            reason=reason)

    # -- building ----------------------------------------------------------------------------
    def build(self, request: BuildRequest, cancel: threading.Event) -> Iterator[BuildEvent]:
        parser = PodmanOutputParser()
        # Named after this process: if it is killed, the next start sweeps it (and the working
        # containers noted in it).
        with Scratch.create() as scratch:
            context_dir = scratch.path / "context"
            _unpack(request, context_dir)
            iidfile = str(scratch.path / "iid")
            if len(self.platforms(request)) > 1:  # --manifest adds to a list that exists
                for tag in request.tags:
                    self._quiet(["manifest", "rm", tag])
            command = self.command(request, str(context_dir), iidfile)
            before = self._working_containers()

            def built(line: str) -> Iterator[BuildEvent]:
                for event in parser.feed(line):
                    if isinstance(event, StepStarted) and event.number == 2:
                        # The stage's working container exists now: note it for a sweep.
                        for container in sorted(self._working_containers() - before):
                            scratch.note_container(self.store, container)
                    yield event

            # podman's own temporary files go into the scratch folder too, swept with it.
            (scratch.path / "tmp").mkdir()
            outcome = yield from self._run(command, cancel, built, tmpdir=scratch.path / "tmp")
            if outcome == "cancelled":
                self._remove_working_containers(before)
                yield BuildCancelled(message="cancelled; podman stopped and its build "
                                             "containers were removed")
                return
            if outcome == "silent":
                self._remove_working_containers(before)
                yield BuildFailed(message=f"podman printed nothing for {self.silence_timeout:g} s "
                                  "and was stopped as hung", step=parser.instruction,
                                  lines=parser.tail())
                return
            image_id = _read(iidfile)
            if outcome != 0 or not image_id:
                yield BuildFailed(message=parser.error or f"podman build exited with status "
                                  f"{outcome}", step=parser.failed_step,
                                  exit_code=parser.exit_code,
                                  lines=tuple(readable(line) for line in parser.tail()))
                return
            digest = None
            if request.push:
                digest_file = str(scratch.path / "digest")
                tail: list[str] = []

                def pushed(line: str) -> Iterator[BuildEvent]:
                    tail.append(line)
                    del tail[:-TAIL]
                    layer = line.split()[-1] if line.startswith("Copying ") else ""
                    yield PushProgress(layer=layer, status=line)

                outcome = yield from self._run(self.push_command(request, digest_file), cancel,
                                               pushed)
                if outcome == "cancelled":
                    yield BuildCancelled(message="cancelled during push")
                    return
                digest = _read(digest_file)
                if outcome != 0 or not digest:
                    why = next((ln for ln in reversed(tail) if ln.startswith("Error")),
                               tail[-1] if tail else f"exit status {outcome}")
                    yield BuildFailed(message=f"push of {request.primary_tag} failed: {why}",
                                      step="push", lines=tuple(tail))
                    return
            yield BuildFinished(uri=request.primary_tag, digest=digest, image_id=image_id,
                                pushed=digest is not None,
                                platform_digests=self._platform_digests(request))

    def _run(self, command: list[str], cancel: threading.Event,
             on_line: Callable[[str], Iterator[BuildEvent]], tmpdir: Path | None = None
             ) -> Generator[BuildEvent, None, int | str]:
        """Run ``command`` (it dies with this process: see :mod:`.child`), turning each output
        line into events; returns its exit status, or "cancelled" / "silent"."""
        try:
            env = {**os.environ, **({"TMPDIR": str(tmpdir)} if tmpdir else {})}
            process = child.start(command, env)
        except OSError as error:
            raise BuilderUnavailableError(f"cannot run {command[0]}: {error}",
                                          hint=PODMAN_HINT) from error
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        watcher = threading.Thread(target=_watch, args=(process, cancel), daemon=True,
                                   name="imagebuild-podman-cancel-watch")
        watcher.start()
        splitter, text = LineSplitter(), codecs.getincrementaldecoder("utf-8")("replace")
        try:
            for data in child.chunks(process, self.silence_timeout):
                for piece in splitter.feed(text.decode(data)):
                    yield from on_line(piece.text)
            for piece in splitter.feed(text.decode(b"", final=True)):
                yield from on_line(piece.text)
            for piece in splitter.flush():
                yield from on_line(piece.text)
        except child.Silent:
            child.stop(process)
            return "cancelled" if cancel.is_set() else "silent"
        finally:
            if process.poll() is None:  # our consumer went away (or cancel): stop podman
                child.stop(process)
            process.stdout.close()
        code = child.wait(process, timeout=30)
        return "cancelled" if cancel.is_set() else code

    def _platform_digests(self, request: BuildRequest) -> dict[str, str]:
        """Each platform's image digest in the index, as the registry serves it."""
        if len(self.platforms(request)) < 2 or not request.push:
            return {}

        async def read() -> dict[str, str]:
            async with RegistryClient(keychain=default_keychain(),
                                      insecure_hosts=self.insecure_registries) as client:
                return await platform_digests(client, ImageReference.parse(request.primary_tag))

        try:
            return asyncio.run(read())
        except (ImageBuildError, httpx.HTTPError, ValueError) as error:
            log.warning("could not read the index of %s back: %s", request.primary_tag, error)
            return {}

    def _quiet(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.base(), *args], capture_output=True, text=True, timeout=120)

    def _working_containers(self) -> set[str]:
        """Ids of buildah working containers in podman's store (``ps --external``)."""
        listed = self._quiet(["ps", "-a", "--external", "--format", "json"])
        try:
            containers = json.loads(listed.stdout or "[]")
        except ValueError:
            return set()
        return {str(c["Id"]) for c in containers if _is_build_container(c)}

    def _remove_working_containers(self, before: set[str]) -> None:
        """A stopped ``podman build`` can leave its working containers behind: remove the
        ones that appeared during this build."""
        ours = sorted(self._working_containers() - before)
        if ours:
            log.info("removing %d podman build container(s) left by a stopped build", len(ours))
            self._quiet(["rm", "-f", *ours])


TAIL = 30


def podman_builder(settings: Settings) -> PodmanBuilder:
    """The ``local-podman`` builder the settings describe."""
    return PodmanBuilder(settings.podman_cli, root=settings.podman_root,
                         runroot=settings.podman_runroot,
                         insecure_registries=settings.insecure_registries,
                         silence_timeout=settings.build_silence_timeout)


def _is_build_container(container: dict[str, object]) -> bool:
    names = container.get("Names") or []
    return isinstance(names, list) and any(str(n).endswith("-working-container") for n in names)


def _unpack(request: BuildRequest, where: Path) -> None:
    """The context tar into ``where`` (the project's own tar: regular files, folders, links)."""
    where.mkdir(parents=True)
    reader, writer = os.pipe()
    with os.fdopen(reader, "rb") as source, os.fdopen(writer, "wb") as sink:
        failure: list[BaseException] = []

        def write() -> None:
            try:
                request.context.write_tar(sink)
            except BaseException as error:  # reported below, in this thread
                failure.append(error)
            finally:
                sink.close()

        thread = threading.Thread(target=write, name="imagebuild-podman-context", daemon=True)
        thread.start()
        with tarfile.open(fileobj=source, mode="r|") as archive:
            archive.extractall(where, filter="tar")
        thread.join()
    if failure:
        raise failure[0]
    if not (where / request.dockerfile_path).is_file():
        (where / request.dockerfile_path).parent.mkdir(parents=True, exist_ok=True)
        (where / request.dockerfile_path).write_text(request.dockerfile)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def _watch(process: subprocess.Popen[bytes], cancel: threading.Event) -> None:
    while process.poll() is None:
        if cancel.wait(0.1):
            child.stop(process)
            return
