"""The build service as a Jupyter Server extension, also runnable on its own.

Standalone, on a host with a Docker engine (binds to 127.0.0.1 unless ``--ip`` says otherwise)::

    jupyter imagebuild --port 8890 --IdentityProvider.token=$TOKEN \\
        --ImageBuildServiceApp.state_dir=/var/lib/imagebuild \\
        --ImageBuildServiceApp.max_concurrent_builds=2

Standalone, the service is all the server serves: ``ImageBuildServerApp`` turns off Jupyter
Server's own services (kernels, contents, files, terminals, sessions, ...), so its token opens the
build API and the build pages, nothing else.

Inside an existing Jupyter Server it is enabled by ``jupyter-config/jupyter_server_config.d/
imagebuild_nb.json`` (``jupyter server extension enable imagebuild_nb``); it then adds its routes
to that server, whose kernels, contents and files stay that server's own. Authentication is
Jupyter Server's: its token or the identity provider it is configured with (JupyterHub).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from tornado.ioloop import PeriodicCallback
from traitlets import Bool, Dict, Float, Int, Type, Unicode, default

from imagebuild_nb.checkers import ExistenceChecker
from imagebuild_nb.service import handlers
from imagebuild_nb.service.archive import ArchiveLimits
from imagebuild_nb.service.backend import BuildBackend, LocalBackend
from imagebuild_nb.service.build_secrets import ServiceSecrets, read_config_file
from imagebuild_nb.service.engine_runner import EngineRunner
from imagebuild_nb.service.hub import ADMIN_SCOPE, hub_server_config
from imagebuild_nb.service.manager import DEFAULT_CONTEXT_RETENTION, BuildManager
from imagebuild_nb.service.page import BuildPageHandler
from imagebuild_nb.service.redact import Redactor, docker_config_secrets
from imagebuild_nb.service.runner import BuildRunner
from imagebuild_nb.service.store import BuildStore
from imagebuild_nb.settings import Settings

log = logging.getLogger(__name__)

API = "/imagebuild/api"
PRUNE_INTERVAL = 3600.0  # seconds between sweeps of unused uploaded contexts
FARM_MAINTAIN_INTERVAL = 5.0  # a farm replica's upkeep: expired leases, unused contexts
ID = handlers.BUILD_ID


class ImageBuildServerApp(ServerApp):
    """The Jupyter Server under the standalone service: authentication and nothing else of its own.

    ``default_services`` is the list jupyter_server loads handlers from; "auth" (login/logout)
    stays for the build pages in a browser. Terminals come from an extension (never loaded
    standalone) and are off here too. Embedded, the user's own ServerApp is used instead.
    """

    default_services = ("auth",)  # type: ignore[assignment]  # base: its default's 13-tuple

    @default("terminals_enabled")
    def _no_terminals(self) -> bool:
        return False

    def init_signal(self) -> None:
        super().init_signal()
        # Unless a user at a terminal can answer jupyter_server's "Shut down?" prompt, SIGINT
        # stops the service as SIGTERM does: JupyterHub stops its services with SIGINT first
        # (from a session of their own, on the Hub's terminal when it has one). Without a
        # terminal, jupyter_server's default is a bare KeyboardInterrupt that skips stopping the
        # extension, and the process then waits forever for the builds it never cancelled.
        if not _in_the_foreground_of_a_terminal():
            signal.signal(signal.SIGINT, self._stop_on_sigint)

    def _stop_on_sigint(self, sig: int, frame: object) -> None:
        if self._stopping:  # a second SIGINT: stop waiting for whatever holds the exit up
            raise KeyboardInterrupt
        self._signal_stop(sig, frame)

    def init_configurables(self) -> None:
        super().init_configurables()
        # The contents manager adds /files/ by itself (ContentsManager.get_extra_handlers),
        # outside default_services: no host files through this server.
        self.contents_manager.files_handler_class = None


class ImageBuildServiceApp(ExtensionApp):
    """Accepts build submissions, runs them next to a Docker engine, streams their events."""

    name = "imagebuild"
    description = "imagebuild-nb build service: remote image builds for notebooks"
    extension_url = "/imagebuild/api/health"
    load_other_extensions = False
    serverapp_class = ImageBuildServerApp  # standalone only: see ImageBuildServerApp
    _pruner: PeriodicCallback | None = None
    backend: BuildBackend
    # Standalone, the service is an API server: loopback and no browser unless told otherwise.
    serverapp_config = {"ip": "127.0.0.1", "open_browser": False}

    state_dir = Unicode(
        help="Directory for the build database, event logs and uploaded contexts.",
    ).tag(config=True)
    max_concurrent_builds = Int(2, help="Builds that run at the same time; others queue.").tag(
        config=True
    )
    max_upload_bytes = Int(
        512 * 1024**2, help="Largest build-context upload accepted (bytes, as sent)."
    ).tag(config=True)
    max_context_files = Int(50_000, help="Most entries a build-context archive may hold.").tag(
        config=True
    )
    max_unpacked_bytes = Int(
        2 * 1024**3, help="Largest total size of the files in a build-context archive."
    ).tag(config=True)
    context_retention = Float(
        DEFAULT_CONTEXT_RETENTION,
        help="Seconds an uploaded build context is kept after its last use (upload, HEAD, "
        "submission); contexts of queued and running builds are always kept. Checked at start "
        "and hourly.",
    ).tag(config=True)
    max_builds_per_user = Int(
        0, help="Unfinished (queued or running) builds one JupyterHub user may have; the next "
        "submission is refused with 429 naming this limit (joining an identical build never "
        "is). 0: no limit. The standalone service's shared token is one operator, never limited.",
    ).tag(config=True)
    max_running_per_user = Int(
        0, help="Builds of one JupyterHub user that run at once; the rest wait even when slots "
        "are free. 0: only max_concurrent_builds. Free slots always go first to the user with "
        "the fewest builds running, so one user's queue never starves another's build.",
    ).tag(config=True)
    admin_scope = Unicode(
        ADMIN_SCOPE, help="The JupyterHub scope whose holders (like Hub admins) see and cancel "
        "every user's builds; others see the builds they submitted or joined.",
    ).tag(config=True)
    keepalive_interval = Float(
        15.0, help="Seconds between SSE keepalive comments on an idle event stream."
    ).tag(config=True)
    network_mode = Unicode(
        None, allow_none=True,
        help="Network for RUN steps ('host' where the bridge has no NAT). Default: "
        "IMAGEBUILD_NB_NETWORK_MODE, like every other imagebuild-nb setting.",
    ).tag(config=True)

    @default("network_mode")
    def _network_mode_from_env(self) -> str | None:
        return Settings.from_env().network_mode

    build_secrets = Dict(
        help="Build secrets this service lends to builds whose RUN steps mount them, by name: "
        '{"GITHUB_PAT": {"env": "SERVICE_GITHUB_PAT"}, "deploy_key": {"file": "/run/keys/deploy"}} '
        "(a variable or a file on the service host; a client sends the name only, never a "
        "value). A submission naming one this service lacks is refused. Default: the JSON file "
        "named by IMAGEBUILD_NB_BUILD_SECRETS_FILE, else none.",
    ).tag(config=True)

    @default("build_secrets")
    def _build_secrets_from_file(self) -> dict[str, Any]:
        path = os.environ.get("IMAGEBUILD_NB_BUILD_SECRETS_FILE")
        return read_config_file(path) if path else {}

    runner_class = Type(
        default_value=EngineRunner,
        klass=object,
        help="The BuildRunner class (see imagebuild_nb.service.runner); default: the local builder "
        "with the host's driver. imagebuild_nb.service.engine_runner.DockerApiRunner pins the "
        "Engine API.",
    ).tag(config=True)

    database_url = Unicode(
        "",
        help="PostgreSQL URL of a build farm (needs the farm extra). Set, this service is one of "
        "N stateless replicas over that database and imagebuild-agent processes on the engines "
        "build; empty (the default), it builds here with sqlite and the local engine. Default: "
        "IMAGEBUILD_NB_DATABASE_URL.",
    ).tag(config=True)
    farm_listen = Bool(
        True, help="Farm replicas: wake event streams by LISTEN/NOTIFY (off: poll only)."
    ).tag(config=True)
    farm_max_context_bytes = Int(
        256 * 1024**2, help="Farm replicas: largest build context stored in the database."
    ).tag(config=True)
    farm_context_grace = Float(
        600.0, help="Farm replicas: seconds an unused context stays after its last build."
    ).tag(config=True)

    @default("database_url")
    def _database_url_from_env(self) -> str:
        return os.environ.get("IMAGEBUILD_NB_DATABASE_URL", "")

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return os.path.join(jupyter_data_dir(), "imagebuild", "service")

    def _jupyter_server_config(self) -> dict[str, Any]:
        # Started as a JupyterHub service (standalone only): the Hub's address, prefix and users.
        config: dict[str, Any] = super()._jupyter_server_config()  # type: ignore[no-untyped-call]
        config["ServerApp"].update(hub_server_config())
        return config

    def initialize_settings(self) -> None:
        if self.database_url:
            self._initialize_farm()
            return
        store = BuildStore(Path(self.state_dir))
        token = getattr(self.serverapp.identity_provider, "token", None) if self.serverapp else None
        build_secrets = ServiceSecrets.from_config(self.build_secrets)
        secrets = [token, *docker_config_secrets(), *build_secrets.values()]
        manager = BuildManager(
            store,
            self._make_runner(),
            max_concurrent=self.max_concurrent_builds,
            archive_limits=ArchiveLimits(
                max_files=self.max_context_files, max_unpacked_bytes=self.max_unpacked_bytes
            ),
            redactor=Redactor(secrets),
            context_retention=self.context_retention,
            secrets=build_secrets,
            max_builds_per_user=self.max_builds_per_user,
            max_running_per_user=self.max_running_per_user,
        )
        self.manager = manager
        self.backend = LocalBackend(manager)
        self._common_settings(imagebuild_manager=manager)
        self.log.info(
            "imagebuild service: state in %s, %d concurrent builds, runner %s",
            self.state_dir,
            self.max_concurrent_builds,
            manager.runner.name,
        )

    def _initialize_farm(self) -> None:
        # Imported only here: the embedded default never loads psycopg.
        from imagebuild_nb.farm.backend import FarmBackend
        from imagebuild_nb.farm.store import FarmStore

        # Connections for the worker threads that run queries (asyncio's default pool).
        store = FarmStore(self.database_url, max_context_bytes=self.farm_max_context_bytes,
                          context_grace=self.farm_context_grace, pool_size=16)
        uploads = Path(self.state_dir) / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        self.backend = FarmBackend(
            store,
            archive_limits=ArchiveLimits(
                max_files=self.max_context_files, max_unpacked_bytes=self.max_unpacked_bytes
            ),
            upload_dir=uploads,
            listen=self.farm_listen,
            max_builds_per_user=self.max_builds_per_user,
            max_running_per_user=self.max_running_per_user,
        )
        self._common_settings()
        self.log.info("imagebuild service: farm replica on %s", _redacted_url(self.database_url))

    def _common_settings(self, **extra: Any) -> None:
        settings = Settings.from_env(network_mode=self.network_mode)
        self.settings.update(
            imagebuild_backend=self.backend,
            **extra,
            imagebuild_settings=settings,
            imagebuild_admin_scope=self.admin_scope,
            imagebuild_checker=ExistenceChecker(settings),
            imagebuild_config={
                "max_upload_bytes": self.max_upload_bytes,
                "keepalive_interval": self.keepalive_interval,
            },
        )

    def _make_runner(self) -> BuildRunner:
        # klass=object: traitlets types the trait as type[object] (the protocol is not a class).
        runner: BuildRunner = self.runner_class(  # type: ignore[call-arg,assignment]
            network_mode=self.network_mode)
        return runner

    def initialize_handlers(self) -> None:
        routes: list[tuple[str, Any]] = [
            (rf"{API}/health", handlers.HealthHandler),
            (rf"{API}/openapi.yaml", handlers.OpenAPIHandler),
            (rf"{API}/existence", handlers.ExistenceHandler),
            (rf"{API}/contexts/(?P<digest>[^/]+)", handlers.ContextHandler),
            (rf"{API}/builds", handlers.BuildsHandler),
            (rf"{API}/builds/{ID}", handlers.BuildHandler),
            (rf"{API}/builds/{ID}/cancel", handlers.CancelHandler),
            (rf"{API}/builds/{ID}/events", handlers.EventsHandler),
            (rf"{API}/builds/{ID}/log", handlers.LogHandler),
            (rf"/imagebuild/builds/{ID}", BuildPageHandler),
        ]
        self.handlers.extend(routes)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        await self.backend.start()
        # A farm replica also hands on builds whose agents died (any agent does too).
        every = FARM_MAINTAIN_INTERVAL if self.database_url else min(
            self.context_retention, PRUNE_INTERVAL)
        self._pruner = PeriodicCallback(self.backend.maintain, max(every, 1.0) * 1000)
        self._pruner.start()

    async def stop_extension(self) -> None:
        if self._pruner is not None:
            self._pruner.stop()
        await self.backend.shutdown()
        self.settings["imagebuild_checker"].close()


def _in_the_foreground_of_a_terminal() -> bool:
    """Whether stdin is a terminal whose foreground process group is ours: a user there
    pressed Ctrl-C and can answer a prompt."""
    try:
        return bool(sys.stdin) and os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError):  # not a terminal, or stdin closed
        return False


def _redacted_url(url: str) -> str:
    """The database URL without its password, for the log."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"


main = launch_new_instance = ImageBuildServiceApp.launch_instance
