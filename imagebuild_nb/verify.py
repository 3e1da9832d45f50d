"""Prove a built image runs the notebook's code: import probes and commands in a container.

>>> result = verify("localhost:5001/frozen:3f8b...")    # doctest: +SKIP
>>> result.ok, [c.state for c in result.checks]         # doctest: +SKIP
(True, ['same', 'same'])
>>> run("localhost:5001/frozen:3f8b...", "python3 train.py")   # doctest: +SKIP
0

Both create one labelled container of the image and remove it when done, also when the
caller is interrupted (Ctrl-C, a kernel interrupt) or the engine call fails.
"""

from __future__ import annotations

import html
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import docker

from imagebuild_nb.errors import BuilderUnavailableError, ImageBuildError

if TYPE_CHECKING:
    from docker.models.containers import Container

    from imagebuild_nb.spec.convert import ImageLike

LABEL = "imagebuild-nb.container"
PROBE_MARK = "IMAGEBUILD_NB_PROBE "
MOUNT_TARGET = "/mnt/notebook"
State = Literal["same", "different", "imports", "fails"]

# Runs inside the image with its own python3: imports each module, reads the version of the
# distribution the kernel had it from, prints one JSON line.
PROBE = r"""
import importlib, json, sys
from importlib import metadata
wanted = json.loads(sys.argv[1])
out = {}
for module, dist in wanted.items():
    entry = {}
    try:
        importlib.import_module(module)
    except BaseException as error:
        entry["error"] = f"{type(error).__name__}: {error}"
    if dist:
        try:
            entry["version"] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            entry["version"] = None
    out[module] = entry
print("IMAGEBUILD_NB_PROBE " + json.dumps(out), flush=True)
"""


@dataclass(frozen=True)
class ModuleCheck:
    """One module: ``same`` version as the kernel, ``different``, ``imports`` (no kernel
    version to compare) or ``fails`` (with the error)."""

    module: str
    state: State
    distribution: str | None = None
    expected: str | None = None
    found: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    image: str
    checks: tuple[ModuleCheck, ...]

    @property
    def ok(self) -> bool:
        return all(check.state in ("same", "imports") for check in self.checks)

    def by_module(self) -> dict[str, ModuleCheck]:
        return {check.module: check for check in self.checks}

    def __str__(self) -> str:
        lines = [f"{self.image}: {'all modules import as in the kernel' if self.ok else 'NOT OK'}"]
        for c in self.checks:
            detail = {"same": f"{c.distribution} {c.found}",
                      "different": f"{c.distribution} {c.found} (kernel: {c.expected})",
                      "imports": "imports", "fails": c.error or "fails"}[c.state]
            lines.append(f"  {c.module:<24} {c.state:<10} {detail}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colors = {"same": "var(--jp-success-color1, green)",
                  "imports": "var(--jp-success-color1, green)",
                  "different": "var(--jp-warn-color1, orange)",
                  "fails": "var(--jp-error-color1, red)"}
        rows = "".join(
            f"<tr><td><code>{html.escape(c.module)}</code></td>"
            f"<td style='color:{colors[c.state]}'>{c.state}</td>"
            f"<td>{html.escape(c.distribution or '')}</td><td>{html.escape(c.expected or '')}</td>"
            f"<td>{html.escape(c.found or '')}</td><td>{html.escape(c.error or '')}</td></tr>"
            for c in self.checks)
        return (f"<div><b>{html.escape(self.image)}</b>: "
                f"{'all modules import as in the kernel' if self.ok else 'not OK'}"
                "<table><tr><th>module</th><th>state</th><th>distribution</th><th>kernel</th>"
                f"<th>image</th><th>error</th></tr>{rows}</table></div>")


def expected_modules(image: ImageLike | str | None = None,
                     modules: Iterable[str] | None = None) -> dict[str, tuple[str, str] | None]:
    """The modules to probe with the kernel's (distribution, version) for each.

    ``modules`` given: those (version from this environment when it has them). Otherwise the
    top-level modules this process imported that come from distributions the image pins (an
    ``Image``) or that a freeze of this environment would keep (an image reference).
    """
    from imagebuild_nb.freeze import imported_modules, read_environment

    env = read_environment()
    if modules is not None:
        wanted: dict[str, tuple[str, str] | None] = {}
        for module in modules:
            providers = env.providers(module.split(".", 1)[0])
            wanted[module] = (providers[0].display_name, providers[0].version) \
                if providers else None
        return wanted
    from imagebuild_nb.spec.image import Image

    return imported_modules(image if isinstance(image, Image) else None, env=env)


def verify(image: ImageLike | str, modules: Iterable[str] | None = None, *,
           client: docker.DockerClient | None = None,
           labels: Mapping[str, str] | None = None) -> VerifyResult:
    """Import each module inside a container of ``image`` (built or pulled already) and
    compare the versions with this environment's."""
    ref = _reference(image)
    wanted = expected_modules(image, modules)
    payload = json.dumps({module: dist[0] if dist else None for module, dist in wanted.items()})
    chunks: list[str] = []
    with _container(ref, ["python3", "-c", PROBE, payload], client=client, labels=labels,
                    network_disabled=True) as container:
        container.start()
        for chunk in _stream(container, stderr=False):
            chunks.append(chunk.decode(errors="replace"))
        code = container.wait().get("StatusCode")
    text = "".join(chunks)
    line = next((ln for ln in reversed(text.splitlines()) if ln.startswith(PROBE_MARK)), None)
    if line is None:
        raise ImageBuildError(f"the import probe did not run in {ref} (exit code {code}): "
                              f"{text.strip()[-500:]}",
                              hint="the image needs python3 on its PATH (the default base has it)")
    found = json.loads(line[len(PROBE_MARK):])
    return VerifyResult(ref, tuple(_check(module, wanted[module], found.get(module, {}))
                                   for module in wanted))


def _check(module: str, kernel: tuple[str, str] | None, entry: Mapping[str, Any]) -> ModuleCheck:
    dist, expected = kernel if kernel else (None, None)
    found = entry.get("version")
    if "error" in entry:
        return ModuleCheck(module, "fails", dist, expected, found, entry["error"])
    if expected is None:
        return ModuleCheck(module, "imports", dist, None, found)
    state: State = "same" if found == expected else "different"
    return ModuleCheck(module, state, dist, expected, found)


def run(image: ImageLike | str, command: Sequence[str] | str, *,
        mount: str | os.PathLike[str] | None = None,
        output: Callable[[str], None] | None = None,
        client: docker.DockerClient | None = None, network_mode: str | None = None,
        labels: Mapping[str, str] | None = None) -> int:
    """Run ``command`` (a list, or a shell line) in a container of ``image`` with the folder
    ``mount`` (default: the current folder, i.e. the notebook's) read-only at /mnt/notebook,
    the working directory. Output streams to ``output`` (default: stdout); returns the exit
    code."""
    ref = _reference(image)
    argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
    if not argv:
        raise ImageBuildError("run: no command given", hint="e.g. run(image, 'python3 -V')")
    folder = os.path.abspath(os.fspath(mount if mount is not None else os.getcwd()))
    write = output or _stdout
    with _container(ref, argv, client=client, labels=labels, network_mode=network_mode,
                    volumes={folder: {"bind": MOUNT_TARGET, "mode": "ro"}},
                    working_dir=MOUNT_TARGET) as container:
        container.start()
        for chunk in _stream(container):
            write(chunk.decode(errors="replace"))
        return int(container.wait().get("StatusCode", -1))


def _stream(container: Container, *, stderr: bool = True) -> Iterator[bytes]:
    """The container's output as it comes; its connection is closed however we leave."""
    stream = container.logs(stream=True, follow=True, stderr=stderr)
    try:
        yield from stream
    finally:
        stream.close()
        # docker-py's close() shuts the socket down but its file object keeps the fd open
        # until collected (a ResourceWarning): close the HTTP response too.
        response = getattr(stream, "_response", None)
        if response is not None:
            response.close()


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _reference(image: ImageLike | str) -> str:
    if isinstance(image, str):
        return image
    from imagebuild_nb.spec.convert import as_image

    return as_image(image).uri


def _client() -> docker.DockerClient:
    from imagebuild_nb.builders.docker_engine import ENGINE_HINT, engine_params

    try:
        client = docker.DockerClient(**engine_params(), timeout=600)
        client.ping()
    except docker.errors.DockerException as error:
        raise BuilderUnavailableError(f"the Docker engine does not answer: {error}",
                                      hint=ENGINE_HINT) from None
    return client


@contextmanager
def _container(ref: str, argv: list[str], *, client: docker.DockerClient | None,
               labels: Mapping[str, str] | None, **options: Any) -> Iterator[Container]:
    """A created container, removed (forced) on the way out whatever happens."""
    own = client is None
    client = client or _client()
    tags = {LABEL: uuid.uuid4().hex, **(labels or {})}
    container = None
    try:
        try:
            container = client.containers.create(ref, argv, labels=tags, **options)
        except docker.errors.ImageNotFound:
            try:
                client.images.pull(ref)
            except docker.errors.APIError as error:
                raise ImageBuildError(
                    f"{ref} is neither in the engine nor pullable: {error.explanation or error}",
                    hint="build it first: ImageBuildEngine.build(image) or "
                         "%imagebuild build IMAGE") from None
            container = client.containers.create(ref, argv, labels=tags, **options)
        yield container
    finally:
        try:
            if container is not None:
                container.remove(force=True)
            else:  # interrupted between the engine creating it and the answer reaching us
                for found in client.containers.list(all=True, filters={"label": f"{LABEL}="
                                                                       f"{tags[LABEL]}"}):
                    found.remove(force=True)
        finally:
            if own:
                client.close()
