"""``ImageBuildEngine``: identity -> existence -> builder -> events -> ``ImageBuild``.

The seed's API, usable on the class (default settings) or on an instance (its own settings)::

    from imagebuild_nb import Image, ImageBuildEngine
    img = Image.from_debian_base(name="analysis", registry="localhost:5001").with_pip_packages("six")
    ImageBuildEngine.image_exists(img)        # URI when it exists, None when missing
    build = ImageBuildEngine.build(img)        # builds and pushes only when needed
    build.status, build.digest                 # ('built', 'sha256:...') or ('exists', ...)
    ImageBuildEngine.configure(network_mode="host", local_driver="docker-api")
    handle = ImageBuildEngine(Settings(registry="localhost:5001")).build(img, wait=False)
    handle.cancel()

Rules (see DESIGN.md, "Behaviour contract"): a ``latest`` tag is always built; otherwise an
existing image comes back without any build call; ``force`` skips the check and builds without
cache; unknown existence builds and says why, or fails under ``unknown_existence_policy="fail"``;
``dry_run`` touches neither engine nor registry. Identical concurrent builds run once.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Generic, TypeVar

from imagebuild_nb.build import DryRun, ImageBuild
from imagebuild_nb.builders.base import Builder
from imagebuild_nb.builders.select import get_builder
from imagebuild_nb.builders.target import BuildTarget
from imagebuild_nb.errors import ImageBuildError
from imagebuild_nb.events import BuildEvent, BuildFinished, BuildStarted
from imagebuild_nb.settings import Settings
from imagebuild_nb.singleflight import SingleFlight

log = logging.getLogger(__name__)

T = TypeVar("T")

# Single flight across engine instances (the magics make a fresh engine per call), keyed by
# (builder name, image URI).
_flights: SingleFlight[tuple[str, str], ImageBuild] = SingleFlight()


class _either(Generic[T]):
    """A method callable on the class (uses the configured default engine) or an instance."""

    def __init__(self, func: Callable[..., T]) -> None:
        self.func = func
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def __get__(self, obj: Any, owner: type[ImageBuildEngine]) -> Callable[..., T]:
        return functools.partial(self.func, obj if obj is not None else owner.default())


class ImageBuildEngine:
    """Checks and builds images. See the module docstring for the rules."""

    _default: ClassVar[ImageBuildEngine | None] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self._checker: Any = None
        self._lock = threading.Lock()

    # -- configuration --------------------------------------------------------------------------

    @classmethod
    def default(cls) -> ImageBuildEngine:
        """The engine the class-level calls use (settings from ``IMAGEBUILD_NB_*``)."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    @classmethod
    def configure(cls, settings: Settings | None = None, **changes: Any) -> ImageBuildEngine:
        """Replace the default engine's settings: ``configure(network_mode="host")``."""
        base = settings if settings is not None else cls.default().settings
        engine = cls(base.replace(**changes) if changes else base)
        with cls._default_lock:
            previous, cls._default = cls._default, engine
        if previous is not None:
            previous.close()  # its checker's connections and loop thread; it stays usable
        return engine

    @property
    def checker(self) -> Any:
        with self._lock:
            if self._checker is None:
                from imagebuild_nb.checkers import ExistenceChecker

                self._checker = ExistenceChecker(self.settings)
            return self._checker

    def close(self) -> None:
        """Release the existence checker's connections and thread (the engine stays usable)."""
        with self._lock:
            checker, self._checker = self._checker, None
        if checker is not None and hasattr(checker, "close"):
            checker.close()

    # -- existence ------------------------------------------------------------------------------

    @_either
    def check(self, image: Any) -> Any:
        """Tri-state existence (exists / missing / unknown with reason) of ``image``."""
        return self._check(_identity(self._placed(image)), self.settings.default_builder)

    @_either
    def image_exists(self, image: Any) -> str | None:
        """The seed's contract: the URI when the image exists, None when it is missing.

        Also the image's own URI for a default base image, a ``latest`` tag, or when existence
        cannot be verified (the reason is logged; use :meth:`check` to see it).
        """
        image = self._placed(image)
        target = _identity(image)
        if target.is_default_base:
            log.info("%s is a default base image; assuming it exists", target.uri)
            return target.uri
        if target.tag == "latest":
            log.info("%s has the 'latest' tag; it is always (re)built", target.uri)
            return target.uri
        result = self.check(image)
        if result.state == "exists":
            return target.uri
        if result.state == "missing":
            return None
        log.warning("cannot verify that %s exists (%s); returning its URI", target.uri,
                    result.reason)
        return target.uri

    # -- building -------------------------------------------------------------------------------

    @_either
    def build(self, image: Any, builder: str | None = None, dry_run: bool = False,
              force: bool = False, wait: bool = True) -> ImageBuild:
        """Build ``image`` unless it exists; returns the :class:`ImageBuild` (see module doc).

        ``wait=False`` returns at once; the build runs on a background thread (safe inside a
        running asyncio loop, e.g. a Jupyter kernel). A failed build raises
        :class:`~imagebuild_nb.errors.BuildFailedError` from ``wait()`` (here when ``wait``).
        """
        name = builder or self.settings.default_builder
        chosen = get_builder(name, self.settings)
        image = self._placed(image)
        identity = _identity(image)
        if dry_run:
            return ImageBuild.planned(self._dry_run(image, chosen, force), reason="dry run")
        chosen.ensure_available()  # engine down: the clear error comes before anything else
        if identity.is_default_base and not force:
            return ImageBuild.found_existing(identity.uri, digest=None, builder=name,
                                             driver=chosen.driver)
        key = (name, identity.uri)
        while True:
            flight, leading = _flights.lead_or_join(key)
            if leading:
                break
            # Join outside any lock: other keys and the build's own callbacks never wait on us.
            log.info("joining the build of %s already running in this process", identity.uri)
            shared = flight.outcome()
            if shared is not None and not (force and shared.found):
                return shared.wait() if wait else shared
            # The leader failed before building, or found the image while we must rebuild it.
        try:
            handle = self._start(image, identity, name, chosen, force,
                                 on_done=lambda finished: _flights.land(key, flight, finished))
        except BaseException:
            _flights.land(key, flight, None)  # joiners make the call themselves
            raise
        if handle.done:  # found existing: nothing to join once it is shared
            _flights.land(key, flight, handle)
        else:
            _flights.share(flight, handle)
        return handle.wait() if wait else handle

    def _start(self, image: Any, identity: _Identity, name: str, chosen: Builder, force: bool,
               on_done: Callable[[ImageBuild], None]) -> ImageBuild:
        """The leader's part: check existence, then start the build when one is needed."""
        reason, existence = self._why_build(identity, force, name)
        if reason is None:
            return ImageBuild.found_existing(identity.uri, digest=existence.digest, builder=name,
                                             driver=chosen.driver, existence=existence)
        request = _target(image, chosen.driver, self.settings).request(
            chosen.driver, network_mode=self.settings.network_mode, no_cache=force)
        handle = ImageBuild(identity.uri, builder=name, driver=chosen.driver, reason=reason)
        handle.existence = existence

        events: Callable[[threading.Event], Iterator[BuildEvent]]
        start = getattr(chosen, "start", None)
        if callable(start):
            # A builder that runs elsewhere (the service) submits now, so even wait=False
            # returns with the run's id and page; the thread then only follows it.
            remote_run = start(request)
            handle.remote_run = remote_run
            events = functools.partial(_without_started, chosen.follow, remote_run.id)  # type: ignore[attr-defined]
        else:
            events = functools.partial(chosen.build, request)

        def run(cancel: threading.Event) -> Iterator[BuildEvent]:
            yield BuildStarted(uri=identity.uri, builder=name, driver=chosen.driver, reason=reason)
            for event in events(cancel):
                if isinstance(event, BuildFinished):
                    self._forget(identity.uri)
                yield event

        return handle.start(run, on_done=on_done)

    def _placed(self, image: Any) -> Any:
        """An image that names no registry goes to the configured one (``settings.registry``);
        with none configured it stays in the local engine (the embedded default)."""
        registry = self.settings.registry
        if (registry and not isinstance(image, BuildTarget) and image.registry is None
                and not image.is_default_base):
            return image.with_registry(registry)
        return image

    def _check(self, identity: _Identity, builder: str) -> Any:
        """Ask where the build would happen: a builder that answers existence itself (the
        service, with its own registry credentials) is asked; otherwise our checker."""
        platform = identity.platform or self.settings.platform
        if builder != "local":
            answer = getattr(get_builder(builder, self.settings), "check", None)
            if callable(answer):
                return answer(identity.uri, spec_hash=identity.spec_hash, platform=platform)
        return self.checker.check(identity.uri, spec_hash=identity.spec_hash, platform=platform)

    def _why_build(self, identity: _Identity, force: bool, builder: str) -> tuple[str | None, Any]:
        """Why a build is needed (None: it exists), and the existence result when checked."""
        if force:
            return "force: rebuild without cache", None
        if identity.tag == "latest":
            return "the 'latest' tag is always built", None
        result = self._check(identity, builder)
        if result.state == "exists" and not getattr(result, "built_from_other_spec", False):
            return None, result
        if result.state == "exists":
            return f"{identity.uri} exists but was built from another spec", result
        if result.state == "missing":
            return "missing", result
        if self.settings.unknown_existence_policy == "fail":
            raise ImageBuildError(
                f"cannot tell whether {identity.uri} exists: {result.reason}",
                hint="fix the registry access, build with force=True, or set "
                     "unknown_existence_policy='build' to build anyway",
            )
        return f"existence unknown ({result.reason}); building to be sure", result

    def _dry_run(self, image: Any, chosen: Builder, force: bool) -> DryRun:
        target = _target(image, chosen.driver, self.settings)
        request = target.request(chosen.driver, network_mode=self.settings.network_mode,
                                 no_cache=force)
        return DryRun(uri=target.uri, dockerfile=request.dockerfile,
                      context_files=tuple(request.context.file_list()),
                      command=chosen.describe(request), builder=chosen.name,
                      driver=chosen.driver, push=request.push)

    def _forget(self, uri: str) -> None:
        if self._checker is not None:
            self._checker.invalidate(uri)


class _Identity:
    """What the engine needs before deciding to build: cheap (one hash, no rendering)."""

    def __init__(self, uri: str, tag: str, spec_hash: str | None, platform: str | None,
                 is_default_base: bool) -> None:
        self.uri, self.tag, self.spec_hash = uri, tag, spec_hash
        self.platform, self.is_default_base = platform, is_default_base


def _identity(image: Any) -> _Identity:
    if isinstance(image, BuildTarget):
        return _Identity(image.uri, image.tag, image.spec_hash if image.explicit_tag else None,
                         image.platform, image.is_default_base)
    reference = image.reference  # one snapshot of the spec's files
    explicit = getattr(image, "explicit_tag", None) is not None
    return _Identity(str(reference), reference.tag or "latest",
                     image.spec_hash if explicit else None, getattr(image, "platform", None),
                     bool(getattr(image, "is_default_base", False)))


def _target(image: Any, driver: str, settings: Settings) -> BuildTarget:
    if isinstance(image, BuildTarget):
        return image
    from imagebuild_nb.builders.from_image import target_from_image

    return target_from_image(image, driver=driver, settings=settings)


def _without_started(follow: Callable[..., Iterator[BuildEvent]], build_id: str,
                     cancel: threading.Event) -> Iterator[BuildEvent]:
    """The remote run's events minus its own "started" (the engine announces the build)."""
    return (event for event in follow(build_id, cancel) if not isinstance(event, BuildStarted))
