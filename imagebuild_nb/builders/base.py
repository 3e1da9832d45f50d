"""The Builder protocol and the request every builder takes.

A builder turns one :class:`BuildRequest` (Dockerfile text, a build context that writes itself
as a tar stream, tags, args, labels, network, cache and secret options) into a stream of
:mod:`imagebuild_nb.events`. The contract, which every implementation (the two local drivers,
the remote client, plug-ins from the ``imagebuild_nb.builders`` entry-point group) keeps:

- ``ensure_available()`` raises :class:`~imagebuild_nb.errors.BuilderUnavailableError` with a
  hint when the builder cannot run at all; it is cheap and has no side effects.
- ``describe(request)`` says what would run (the command line or API call) and touches nothing;
  dry runs show it.
- ``build(request, cancel)`` yields events as they happen: ``StepStarted``, ``LogLine``,
  ``CacheHit``, ``OutputClipped``, ``PushProgress``, and exactly one terminal event last:
  ``BuildFinished`` (with the image id, and the registry digest when pushed), ``BuildFailed``
  (failing step, exit code, last log lines) or ``BuildCancelled``. It does not raise for a
  failed or cancelled build; it raises ``BuilderUnavailableError`` only when the engine goes away
  before the build starts. ``seq`` is left at 0: the engine numbers events.
- ``cancel`` is a :class:`threading.Event` set from another thread; the builder stops promptly,
  and leaves no containers and no tags from the cancelled build behind.
- Nothing prints; diagnostics go to :mod:`logging`.

>>> from imagebuild_nb.builders import BuildRequest, InMemoryContext
>>> request = BuildRequest(
...     dockerfile="FROM busybox\\nRUN echo hi\\n",
...     context=InMemoryContext({}),
...     tags=("localhost:5001/demo:1",),
... )
>>> request.primary_tag
'localhost:5001/demo:1'
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Protocol, runtime_checkable

from imagebuild_nb.events import BuildEvent

if TYPE_CHECKING:
    from imagebuild_nb.build import RemoteRun
    from imagebuild_nb.checkers.result import ExistenceResult


@runtime_checkable
class BuildContextSource(Protocol):
    """A build context that can write itself as an uncompressed tar stream.

    The tar must hold the Dockerfile at :attr:`BuildRequest.dockerfile_path`.
    """

    def write_tar(self, stream: IO[bytes]) -> None: ...

    def file_list(self) -> list[str]: ...


@dataclass(frozen=True)
class BuildRequest:
    """Everything a builder needs for one build; builders never look at the Image spec."""

    dockerfile: str
    context: BuildContextSource
    tags: tuple[str, ...]
    dockerfile_path: str = "Dockerfile"
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    network_mode: str | None = None
    no_cache: bool = False
    platform: str | None = None
    # id -> a file on this machine, or "env:NAME" for an environment variable of this process;
    # BuildKit mounts them with RUN --mount=type=secret,id=<id>. Never the values themselves.
    secrets: Mapping[str, str] = field(default_factory=dict)
    # Push the primary tag to its registry after the build (it names a registry).
    push: bool = False

    def __post_init__(self) -> None:
        if not self.tags:
            raise ValueError("BuildRequest needs at least one tag")

    @property
    def primary_tag(self) -> str:
        return self.tags[0]

    def cli_flags(self) -> list[str]:
        """The ``build`` flags this request asks of a CLI (``docker build`` and ``podman build``
        take the same ones): build args, labels, secrets, network, no-cache, platform."""
        flags: list[str] = []
        for key in sorted(self.build_args):
            flags += ["--build-arg", f"{key}={self.build_args[key]}"]
        for key in sorted(self.labels):
            flags += ["--label", f"{key}={self.labels[key]}"]
        for secret_id in sorted(self.secrets):
            source = self.secrets[secret_id]  # a file, or "env:NAME" (the CLI reads it)
            where = f"env={source[4:]}" if source.startswith("env:") else f"src={source}"
            flags += ["--secret", f"id={secret_id},{where}"]
        if self.network_mode:
            flags += ["--network", self.network_mode]
        if self.no_cache:
            flags.append("--no-cache")
        if self.platform:
            flags += ["--platform", self.platform]
        return flags


@runtime_checkable
class Builder(Protocol):
    """A way to build images; see the module docstring for the full contract."""

    name: str  # the builder name users pick: "local", "remote", a plug-in's name
    driver: str  # how: "docker-api", "buildkit", ...

    def ensure_available(self) -> None: ...

    def describe(self, request: BuildRequest) -> str: ...

    def build(self, request: BuildRequest, cancel: threading.Event) -> Iterator[BuildEvent]: ...


@runtime_checkable
class SubmittingBuilder(Builder, Protocol):
    """A builder that builds elsewhere (the build service): it submits, then follows.

    The engine calls :meth:`start` at once, so even ``wait=False`` returns with the run's id and
    page; it asks :meth:`check` whether an image exists (with the service's credentials).
    """

    def start(self, request: BuildRequest, *,
              secrets: Mapping[str, str] | None = None) -> RemoteRun:
        """``secrets``: BuildKit secret id -> name, resolved where the build runs."""
        ...

    def follow(self, build_id: str, cancel: threading.Event | None = None) -> Iterator[BuildEvent]:
        ...

    def check(self, reference: str, *, spec_hash: str | None = None,
              platform: str | None = None) -> ExistenceResult: ...


@runtime_checkable
class ExistenceCheck(Protocol):
    """What the engine asks whether an image exists (``ExistenceChecker`` is the real one)."""

    def check(self, ref: str, *, spec_hash: str | None = None,
              platform: str | None = None) -> ExistenceResult: ...

    def invalidate(self, ref: str | None = None) -> int: ...

    def close(self) -> None: ...
