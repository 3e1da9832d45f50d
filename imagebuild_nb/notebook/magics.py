"""``%imagebuild`` / ``%%imagebuild``: thin magics over the public API (see ``%imagebuild?``)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from traitlets import Enum, Int, List, Unicode

from imagebuild_nb.errors import ImageBuildError
from imagebuild_nb.events import is_terminal
from imagebuild_nb.notebook import arguments, freeze_magics
from imagebuild_nb.notebook.live import LiveView, LogText, StatusView
from imagebuild_nb.progress.follow import Interrupted, follow
from imagebuild_nb.progress.model import Progress
from imagebuild_nb.settings import Settings

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from imagebuild_nb.build import ImageBuild
    from imagebuild_nb.engine import ImageBuildEngine
    from imagebuild_nb.events import BuildEvent
    from imagebuild_nb.notebook.widget import ImageBuildWidget
    from imagebuild_nb.spec.image import Image
    from imagebuild_nb.spec.reference import ImageReference

_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[[^\]]+\])*$")


@magics_class
class ImageBuildMagics(Magics):
    """The %imagebuild magics. Every setting also reads ``IMAGEBUILD_NB_<NAME>`` from the env."""

    default_builder = Enum(["local", "local-podman", "remote"], default_value=None,
                           allow_none=True, config=True,
                           help="Builder used when --builder is not given (env: DEFAULT_BUILDER).")
    registry = Unicode(None, allow_none=True, config=True,
                       help="Registry for images that name none; unset keeps them in the engine.")
    base_image_mirror = Unicode(None, allow_none=True, config=True,
                                help="Registry mirror for default base images, "
                                     "e.g. localhost:5001.")
    network_mode = Unicode(None, allow_none=True, config=True,
                           help="Network for RUN steps, e.g. 'host'.")
    extra_ca_files = List(Unicode(), default_value=None, allow_none=True, config=True,
                          help="CA certificate files trusted by RUN steps during builds.")
    unknown_existence_policy = Enum(["build", "fail"], default_value=None, allow_none=True,
                                    config=True,
                                    help="When existence cannot be verified: build, or fail.")
    local_driver = Enum(["auto", "docker-api", "buildkit"], default_value=None, allow_none=True,
                        config=True, help="Local build driver; auto picks BuildKit when present.")
    remote_url = Unicode(None, allow_none=True, config=True, help="URL of the build service.")
    remote_token = Unicode(None, allow_none=True, config=True,
                           help="Token for the build service (kept out of reprs).")
    tail_lines = Int(5, config=True,
                     help="Last log lines of the running step shown in the cell during a build; "
                     "the full log is `%imagebuild logs`.")

    def __init__(self, shell: InteractiveShell | None = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.builds: dict[str, ImageBuild] = {}
        self.progress: dict[str, Progress] = {}  # build id -> its steps, fed as it runs
        self.last_build: ImageBuild | None = None

    def settings(self) -> Settings:
        """The kernel's engine settings (environment, then ``ImageBuildEngine.configure``)
        with the traits set through ``%config`` on top."""
        from imagebuild_nb.engine import ImageBuildEngine

        names = ("default_builder", "registry", "base_image_mirror", "network_mode",
                 "unknown_existence_policy", "local_driver", "remote_url", "remote_token")
        overrides: dict[str, object] = {name: getattr(self, name) for name in names}
        if self.extra_ca_files is not None:
            overrides["extra_ca_files"] = tuple(self.extra_ca_files)
        chosen = {name: value for name, value in overrides.items() if value is not None}
        base = ImageBuildEngine.default().settings
        return base.replace(**chosen) if chosen else base

    @line_cell_magic
    def imagebuild(self, line: str, cell: str | None = None) -> object:
        try:
            if cell is None and freeze_magics.handles(line):  # freeze, verify, run
                return freeze_magics.dispatch(self, line)
            if cell is None:
                return self._line(arguments.parse(arguments.line_parser(), line))
            return self._cell(arguments.parse(arguments.cell_parser(), line), cell)
        except ImageBuildError as error:
            # A user's problem, not a bug: show the message and hint, not a traceback.
            raise UsageError(str(error)) from None

    imagebuild.__doc__ = arguments.HELP + freeze_magics.HELP

    # -- line magic ------------------------------------------------------------------------------

    def _line(self, args: argparse.Namespace) -> object:
        if args.command in ("status", "logs", "cancel"):
            return self._build_command(args)
        target = self._resolve_image(args.image)
        if args.command == "exists":
            return self._engine().check(target)
        if args.command == "widget":
            return self._widget(target)
        return self._build(self._require_image(target, args.image), args)

    def _cell(self, args: argparse.Namespace, body: str) -> object:
        from imagebuild_nb import Image

        if not body.strip():
            raise UsageError("the cell body is empty: write a Dockerfile below %%imagebuild")
        context = Path(args.context or os.getcwd()).expanduser()
        if not context.is_dir():
            raise UsageError(f"--context {args.context!r} is not a folder")
        # The Dockerfile lives outside the context so the cell never edits the user's folder;
        # its folder goes when the build (or the check) is over.
        folder = Path(tempfile.mkdtemp(prefix="imagebuild-cell-"))
        before = self.last_build
        try:
            dockerfile = folder / "Dockerfile"
            dockerfile.write_text(body if body.endswith("\n") else body + "\n")
            image = Image.from_dockerfile(dockerfile, name=args.name, registry=args.registry,
                                          tag=args.tag, context=context)
            if args.command == "exists":
                return self._engine().check(image)
            return self._build(image, args, cell=body)
        finally:
            started = self.last_build if self.last_build is not before else None
            _remove_when_done(folder, started)

    # -- commands ----------------------------------------------------------------------------------

    def _build(self, image: Image, args: argparse.Namespace, cell: str | None = None) -> object:
        engine = self._engine()
        build = engine.build(image, builder=args.builder, dry_run=args.dry_run,
                             force=args.force, wait=False)
        self._remember(build)
        if args.dry_run and build.dry_run is not None:
            return build.dry_run
        if args.no_wait or build.done:
            return build
        return self._follow(build, cell=cell)

    def _remember(self, build: ImageBuild) -> None:
        """Keep the build (``status``/``logs``/``cancel`` with no argument mean the last one)
        and fold its events into its steps as they come."""
        self.builds[build.id] = build
        self.last_build = build
        if build.id not in self.progress:
            progress = self.progress[build.id] = Progress()
            build.subscribe(progress.feed)

    def _follow(self, build: ImageBuild, *, cancel: bool = True,
                cell: str | None = None) -> ImageBuild:
        """Follow in the cell: one display of the steps, updated in place; never the whole log.

        A failed build is returned like any other (``b = %imagebuild build img`` sets ``b``).
        """
        live = LiveView(build, tail=self.tail_lines, cell=cell)
        try:
            follow(build, live, cancel=cancel)
        except Interrupted as stopped:
            live.finish()
            left = "nothing was left behind" if stopped.clean else "it may have left a container"
            raise UsageError(f"build {build.id} cancelled by interrupt; {left}") from None
        except KeyboardInterrupt:  # only following stopped (logs --follow): the build goes on
            raise UsageError(f"stopped following build {build.id}; it goes on "
                             f"(%imagebuild status {build.id})") from None
        build.wait(raise_on_error=False)
        live.finish()
        return build

    def _build_command(self, args: argparse.Namespace) -> object:
        build = self._resolve_build(args.build)
        if args.command == "status":
            return StatusView(build, self._progress_of(build))
        if args.command == "cancel":
            build.cancel()
            build.wait(timeout=60, raise_on_error=False)
            return build
        if getattr(args, "follow", False) and not build.done:
            self._follow(build, cancel=False)
        return LogText.of(build)

    def _progress_of(self, build: ImageBuild) -> Progress:
        progress = self.progress.get(build.id)
        if progress is None:  # a build made in Python, not by a magic
            progress = Progress().feed_all(build.events)
        return progress

    def _widget(self, image: Image | ImageReference) -> ImageBuildWidget:
        try:
            from imagebuild_nb.notebook.widget import ImageBuildWidget
        except ImportError:
            raise UsageError("the widget is not available in this version") from None
        return ImageBuildWidget(self._require_image(image, "IMAGE"), engine=self._engine())

    # -- resolution ------------------------------------------------------------------------------

    def _engine(self) -> ImageBuildEngine:
        """The kernel's default engine, re-configured when the settings changed.

        Sharing the default means ``%config`` also applies to ``ImageBuildEngine.build(...)``
        called from Python in the same kernel, and one checker (one HTTP client) serves all.
        """
        from imagebuild_nb.engine import ImageBuildEngine

        settings = self.settings()
        engine = ImageBuildEngine.default()
        if engine.settings != settings:
            engine = ImageBuildEngine.configure(settings)
        return engine

    def _resolve_image(self, text: str) -> Image | ImageReference:
        from imagebuild_nb import Image, ImageReference

        value = self._lookup(text)
        if value is None:
            if "/" not in text and ":" not in text:
                raise UsageError(
                    f"no variable named {text!r} in the notebook: pass a variable holding an "
                    "Image, or a full reference such as localhost:5001/team/app:1.0"
                )
            return ImageReference.parse(text, argument="IMAGE")
        if isinstance(value, (Image, ImageReference)):
            return value
        if isinstance(value, str):
            return ImageReference.parse(value, argument=text)
        from imagebuild_nb.spec.flyte import from_flyte, is_flyte_image

        if is_flyte_image(value):
            return from_flyte(value)  # a flyte.Image: the same image, as ours
        kind = f"{type(value).__module__}.{type(value).__qualname__}"
        raise UsageError(f"{text!r} is a {kind}, not an imagebuild_nb.Image or flyte.Image; "
                         "create one with Image.from_debian_base(...) or "
                         "Image.from_dockerfile(...)")

    def _require_image(self, target: Image | ImageReference, text: str) -> Image:
        from imagebuild_nb import Image

        if not isinstance(target, Image):
            raise UsageError(f"{text!r} is an image reference; building needs an Image spec "
                             "held in a variable (e.g. img = Image.from_base(...))")
        return target

    def _resolve_build(self, text: str | None) -> ImageBuild:
        if text is None:
            if self.last_build is None:
                raise UsageError("no build yet in this kernel: run %imagebuild build IMAGE first, "
                                 "or pass a build (its variable or id)")
            return self.last_build
        value = self._lookup(text)
        from imagebuild_nb.build import ImageBuild

        if isinstance(value, ImageBuild):
            return value
        if text in self.builds:
            return self.builds[text]
        known = ", ".join(self.builds) or "none yet"
        raise UsageError(f"no build {text!r}: pass the variable holding a build or a build id "
                         f"started in this kernel (known: {known})")

    def _lookup(self, text: str) -> object:
        if not _VARIABLE.match(text):
            return None
        namespace = self.shell.user_ns if self.shell is not None else {}
        root = re.split(r"[.\[]", text, maxsplit=1)[0]
        if root not in namespace or self.shell is None:
            return None
        try:
            return self.shell.ev(text)
        except Exception as error:
            raise UsageError(f"cannot evaluate {text!r}: {error}") from None


def _remove_when_done(folder: Path, build: ImageBuild | None) -> None:
    """Remove a cell's scratch folder now, or when ``build`` (still running) ends."""
    if build is None or build.done:
        shutil.rmtree(folder, ignore_errors=True)
        return

    def on_event(event: BuildEvent) -> None:
        if is_terminal(event):
            shutil.rmtree(folder, ignore_errors=True)

    build.subscribe(on_event)
