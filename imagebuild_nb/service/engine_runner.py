"""The service builds with the project's own local builder (issue 5's drivers).

``EngineRunner`` takes the host's choice of driver; ``DockerApiRunner`` pins the Engine API.

The uploaded, extracted context becomes a ``DirectoryContext`` and the job a ``BuildRequest``;
the local builder's events pass through unchanged (the service renumbers them).

>>> EngineRunner(network_mode="host").network_mode
'host'
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from imagebuild_nb.builders import Builder, BuildRequest, DirectoryContext, platforms
from imagebuild_nb.builders.select import local_builder
from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.events import BuildEvent, BuildFailed, BuildStarted
from imagebuild_nb.service.archive import ArchiveTooLargeError, UnsafeArchiveError, read_inside
from imagebuild_nb.service.runner import BuildJob
from imagebuild_nb.settings import Settings
from imagebuild_nb.spec.reference import ImageReference

MAX_DOCKERFILE_BYTES = 1024**2


def _default_builder() -> Builder:
    # The service host's own choice: BuildKit CLI when usable, else the Engine API.
    return local_builder(Settings.from_env())


def _docker_api_builder() -> Builder:
    return local_builder(Settings.from_env(local_driver="docker-api"))


class EngineRunner:
    def __init__(
        self,
        *,
        network_mode: str | None = None,
        builder_factory: Callable[[], Builder] = _default_builder,
    ) -> None:
        self.network_mode = network_mode
        self._builder_factory = builder_factory
        # Registry access for a multi-platform build's index (the host's own settings).
        self.settings = Settings.from_env()
        self._builder: Builder | None = None
        self.name = "local"

    @property
    def driver(self) -> str:
        return self.builder.driver

    @property
    def builder(self) -> Builder:
        if self._builder is None:
            self._builder = self._builder_factory()
            self.name = f"local/{self._builder.driver}"
        return self._builder

    def run(self, job: BuildJob, cancelled: threading.Event) -> Iterator[BuildEvent]:
        builder = self.builder
        try:  # never through a link: the context came from a client
            dockerfile = read_inside(job.context_dir, job.dockerfile, MAX_DOCKERFILE_BYTES
                                     ).decode("utf-8")
        except (UnsafeArchiveError, ArchiveTooLargeError, UnicodeDecodeError) as error:
            yield BuildFailed(message=f"the Dockerfile {job.dockerfile!r} cannot be used: {error}")
            return
        request = BuildRequest(
            dockerfile=dockerfile,
            context=DirectoryContext(job.context_dir, dockerfile, job.dockerfile),
            tags=(job.uri,),
            dockerfile_path=job.dockerfile,
            network_mode=self.network_mode,
            no_cache=job.force,
            push=job.push and ImageReference.parse(job.uri).registry is not None,
            secrets=dict(job.secrets),  # names of where the values are; the CLI reads them
            platform=job.platform,
        )
        try:  # several platforms: one build each and the index, as a local build does
            builder = platforms.for_request(builder, request, self.settings)
        except BuilderUnavailableError as error:  # the Engine-API driver: one platform only
            yield BuildFailed(
                message=f"this build service cannot build {job.platform}: {error.message}",
                lines=("build one platform per image, or build locally; the service builds "
                       "several with BuildKit (the default runner on a host whose docker CLI "
                       "has BuildKit)",))
            return
        yield BuildStarted(uri=job.uri, builder="remote", driver=builder.driver,
                           dockerfile=dockerfile)
        yield from builder.build(request, cancelled)


class DockerApiRunner(EngineRunner):
    """The local builder pinned to the Engine API (docker-py, legacy builder), whatever the
    host's CLI supports: the same events, push and cancel as ``builder="local"``."""

    def __init__(self, *, network_mode: str | None = None) -> None:
        super().__init__(network_mode=network_mode, builder_factory=_docker_api_builder)
