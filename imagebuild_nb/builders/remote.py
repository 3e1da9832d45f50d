"""The "remote" builder: builds on the build service through ``RemoteBuildClient``
(:mod:`imagebuild_nb.builders.remote_client`), as the engine's other builders build locally.

The service is found by :func:`~imagebuild_nb.builders.hub_discovery.find_service`:
``remote_url``, or inside a JupyterHub server the Hub's service, called with the server's token.
The service tells which Dockerfile form it builds (``driver``) before the engine plans.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from imagebuild_nb.build import RemoteRun
from imagebuild_nb.builders.base import BuildRequest
from imagebuild_nb.builders.remote_client import RemoteBuildClient, check_outcome
from imagebuild_nb.errors import BuilderUnavailableError, ServiceError
from imagebuild_nb.events import BuildEvent, BuildFailed, BuildStarted
from imagebuild_nb.settings import Settings
from imagebuild_nb.wire import BuildStatus

if TYPE_CHECKING:
    from imagebuild_nb.checkers import ExistenceResult


class RemoteBuilder:
    """The ``Builder`` for ``builder="remote"``: builds on the service, events streamed back.

    >>> builder = RemoteBuilder(Settings(remote_url="http://127.0.0.1:8890", remote_token="t"))
    >>> builder.name
    'remote'
    """

    name = "remote"
    # The plain Dockerfile form, which every driver builds: used while the service cannot be
    # asked for its own driver.
    fallback_driver = "docker-api"

    def __init__(
        self, settings: Settings | None = None, *, client: RemoteBuildClient | None = None
    ) -> None:
        # Connection settings only: nothing about any build, so one builder serves many
        # builds at once and a build is found again by its id alone.
        self._settings = settings
        self._client = client
        self._driver: str | None = None

    @property
    def driver(self) -> str:
        """The service's driver, asked once (its health answer). The engine plans with it
        before anything else (the legacy driver puts build CAs in the image and the tag), so
        the check, the dry run and the build name the tag the service will build."""
        if self._driver is None:
            try:
                self._learn_driver()
            except (BuilderUnavailableError, ServiceError):
                return self.fallback_driver  # unreachable: ensure_available() says so
        return self._driver or self.fallback_driver

    def _learn_driver(self) -> None:
        self._driver = str(self.client.health().get("driver") or self.fallback_driver)

    @property
    def client(self) -> RemoteBuildClient:
        if self._client is None:
            self._client = RemoteBuildClient.from_settings(self._settings)
        return self._client

    def ensure_available(self) -> None:
        self._learn_driver()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def builds_indexes(self) -> bool:
        """Several platforms go to the service as they are: it builds the index itself."""
        return True

    def describe(self, request: BuildRequest) -> str:
        files = len(request.context.file_list())
        where = f" for {request.platform}" if request.platform else ""
        return (
            f"upload the build context ({files} files) to the build service at "
            f"{self.client.url} and build {request.primary_tag}{where} there"
            + (" (pushed by the service)" if request.push else "")
        )

    def start(self, request: BuildRequest, *, spec: dict[str, Any] | None = None,
              secrets: Mapping[str, str] | None = None) -> RemoteRun:
        """Upload and submit; returns at once with the run id and page URL. ``secrets``: id ->
        name, resolved by the service from its own configuration (a name it lacks: 400)."""
        return self.client.submit_request(request, spec=spec, secrets=secrets)

    def build(self, request: BuildRequest, cancel: threading.Event) -> Iterator[BuildEvent]:
        run = self.start(request)
        for event in self.follow(run.id, cancel):
            if not isinstance(event, BuildStarted):  # the engine announces the build itself
                yield event

    def follow(
        self, build_id: str, cancel: threading.Event | None = None, *, after: int = 0
    ) -> Iterator[BuildEvent]:
        """Events of a build on the service (also one started by another process).

        A build the service lost (it restarted mid-build: ``interrupted``) raises ServiceError
        instead of ending as an ordinary failure; a failed build ends with its ``BuildFailed``
        event as sent (failing step, exit code, log tail), like a local build.
        """
        for event in self.client.events(build_id, after=after, cancel=cancel):
            if isinstance(event, BuildFailed):
                record = self.client.get(build_id)
                if record.get("status") == BuildStatus.INTERRUPTED:
                    check_outcome(record)  # raises ServiceError: lost, not failed
            yield event

    def check(self, reference: str, *, spec_hash: str | None = None,
              platform: str | None = None) -> ExistenceResult:
        """Existence as the service sees it, with the service's registry credentials."""
        from imagebuild_nb.checkers import ExistenceResult

        params = {"spec_hash": spec_hash, "platform": platform}
        data = self.client.exists(reference, **{k: v for k, v in params.items() if v})
        data["platforms"] = tuple(data.get("platforms") or ())
        return ExistenceResult(**data)


# The client stays importable from here, where notebooks and the first set's docs name it.
__all__ = ["RemoteBuildClient", "RemoteBuilder", "check_outcome"]
