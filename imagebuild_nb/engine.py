"""``ImageBuildEngine``: identity -> existence -> builder -> events -> ``ImageBuild``.

The seed's API, usable on the class (default settings) or on an instance (its own settings)::

    from imagebuild_nb import Image, ImageBuildEngine
    img = (Image.from_debian_base(name="analysis", registry="localhost:5001")
           .with_pip_packages("six"))
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

Input is an ``Image``, a ``flyte.Image`` (converted by :func:`~imagebuild_nb.as_image`) or a
ready ``BuildTarget``; each call computes one :class:`~imagebuild_nb.plan.BuildPlan` that its
check, dry run and build share. The parts are injectable (no module globals to patch)::

    ImageBuildEngine(settings, builders={"local": my_builder}, checker=my_checker)

Flyte's async forms work too: ``await ImageBuildEngine.build.aio(img)``,
``await ImageBuildEngine.image_exists.aio(img)`` (they run off the event loop).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, Generic, Literal, ParamSpec, TypeVar

from imagebuild_nb.build import DryRun, ImageBuild
from imagebuild_nb.builders import platforms
from imagebuild_nb.builders.base import Builder, ExistenceCheck, SubmittingBuilder
from imagebuild_nb.builders.own_store import ChecksOwnStore
from imagebuild_nb.builders.select import get_builder
from imagebuild_nb.builders.target import BuildTarget
from imagebuild_nb.checkers.result import ExistenceResult
from imagebuild_nb.errors import ImageBuildError
from imagebuild_nb.events import BuildEvent, BuildFailed, BuildFinished, BuildStarted, LogLine
from imagebuild_nb.plan import BuildPlan
from imagebuild_nb.settings import Settings
from imagebuild_nb.singleflight import SingleFlight
from imagebuild_nb.spec.convert import ImageLike
from imagebuild_nb.spec.reference import ImageReference
from imagebuild_nb.spec.secrets import remote_secrets, resolve, scrub, secret_values

if TYPE_CHECKING:
    from imagebuild_nb.verify import VerifyResult

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")
EngineInput = ImageLike | BuildTarget

# Single flight across engine instances (the magics make a fresh engine per call), keyed by
# (builder name, image URI).
_flights: SingleFlight[tuple[str, str], ImageBuild] = SingleFlight()


class _Bound(Generic[P, T]):
    """An engine method bound to an engine: call it, or ``await method.aio(...)`` (Flyte's
    syncify convention), which runs it on a worker thread so the event loop never blocks."""

    def __init__(self, func: Callable[Concatenate[ImageBuildEngine, P], T],
                 engine: ImageBuildEngine) -> None:
        self._func, self._engine = func, engine
        functools.update_wrapper(self, func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._func(self._engine, *args, **kwargs)

    async def aio(self, *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self, *args, **kwargs))


class _either(Generic[P, T]):
    """A method callable on the class (uses the configured default engine) or an instance."""

    def __init__(self, func: Callable[Concatenate[ImageBuildEngine, P], T]) -> None:
        self.func = func
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def __get__(self, obj: ImageBuildEngine | None,
                owner: type[ImageBuildEngine]) -> _Bound[P, T]:
        return _Bound(self.func, obj if obj is not None else owner.default())


class ImageBuildEngine:
    """Checks and builds images. See the module docstring for the rules."""

    # The builders this project ships (plug-ins may add names through entry points).
    ImageBuilderType = Literal["local", "local-podman", "remote"]

    _default: ClassVar[ImageBuildEngine | None] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, settings: Settings | None = None, *,
                 builders: Mapping[str, Builder] | None = None,
                 checker: ExistenceCheck | None = None) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self._builders = dict(builders or {})
        self._checker: ExistenceCheck | None = checker
        self._owns_checker = checker is None
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
    def checker(self) -> ExistenceCheck:
        with self._lock:
            if self._checker is None:
                from imagebuild_nb.checkers import ExistenceChecker

                self._checker = ExistenceChecker(self.settings)
            return self._checker

    def builder(self, name: str | None = None) -> Builder:
        """The builder called ``name`` (default: the settings'), injected ones first."""
        name = name or self.settings.default_builder
        return self._builders.get(name) or get_builder(name, self.settings)

    def plan(self, image: EngineInput, builder: Builder | None = None) -> BuildPlan:
        """The plan one call works from (identity now; rendering when a step needs it), for
        ``builder`` (default: the configured one), whose driver can change the tag."""
        return BuildPlan.make(image, self.settings, (builder or self.builder()).driver)

    def close(self) -> None:
        """Release the existence checker's connections and thread (the engine stays usable)."""
        with self._lock:
            checker = self._checker if self._owns_checker else None
            if self._owns_checker:
                self._checker = None
        if checker is not None:
            checker.close()

    # -- existence ------------------------------------------------------------------------------

    @_either
    def check(self, image: EngineInput | ImageReference | str) -> ExistenceResult:
        """Tri-state existence (exists / missing / unknown with reason) of ``image``: a spec,
        or a plain reference such as ``localhost:5001/team/app:1.0``."""
        builder = self.settings.default_builder
        if isinstance(image, (ImageReference, str)):
            reference = image if isinstance(image, ImageReference) else \
                ImageReference.parse(image, argument="image")
            return self._check_uri(str(reference), None, self.settings.platform, builder)
        return self._check(self.plan(image), builder)

    @_either
    def image_exists(self, image: EngineInput) -> str | None:
        """The seed's contract: the URI when the image exists, None when it is missing.

        Also the image's own URI for a default base image, a ``latest`` tag, or when existence
        cannot be verified (the reason is logged; use :meth:`check` to see it).
        """
        plan = self.plan(image)
        if plan.is_default_base:
            log.info("%s is a default base image; assuming it exists", plan.uri)
            return plan.uri
        if plan.tag == "latest":
            log.info("%s has the 'latest' tag; it is always (re)built", plan.uri)
            return plan.uri
        result = self._check(plan, self.settings.default_builder)
        if result.state == "exists":
            return plan.uri
        if result.state == "missing":
            return None
        log.warning("cannot verify that %s exists (%s); returning its URI", plan.uri,
                    result.reason)
        return plan.uri

    # -- building -------------------------------------------------------------------------------

    @_either
    def build(self, image: EngineInput, builder: str | None = None, dry_run: bool = False,
              force: bool = False, wait: bool = True) -> ImageBuild:
        """Build ``image`` unless it exists; returns the :class:`ImageBuild` (see module doc).

        ``wait=False`` returns at once; the build runs on a background thread (safe inside a
        running asyncio loop, e.g. a Jupyter kernel). A failed build raises
        :class:`~imagebuild_nb.errors.BuildFailedError` from ``wait()`` (here when ``wait``).
        """
        name = builder or self.settings.default_builder
        chosen = self.builder(name)
        plan = self.plan(image, chosen)
        if dry_run:
            return ImageBuild.planned(self._dry_run(plan, chosen, force), reason="dry run")
        if plan.is_default_base and force:
            plan.refuse_upstream_tag()  # forcing an upstream image would overwrite it locally
        chosen.ensure_available()  # engine down: the clear error comes before anything else
        if plan.is_default_base:
            return self._annotated(ImageBuild.found_existing(plan.uri, digest=None, builder=name,
                                                             driver=chosen.driver), plan)
        plan.refuse_upstream_tag()
        key = (name, plan.uri)
        while True:
            flight, leading = _flights.lead_or_join(key)
            if leading:
                break
            # Join outside any lock: other keys and the build's own callbacks never wait on us.
            log.info("joining the build of %s already running in this process", plan.uri)
            shared = flight.outcome()
            if shared is not None and not (force and shared.found):
                return shared.wait() if wait else shared
            # The leader failed before building, or found the image while we must rebuild it.
        try:
            handle = self._start(plan, name, chosen, force,
                                 on_done=lambda finished: _flights.land(key, flight, finished))
        except BaseException:
            _flights.land(key, flight, None)  # joiners make the call themselves
            raise
        if handle.done:  # found existing: nothing to join once it is shared
            _flights.land(key, flight, handle)
        else:
            _flights.share(flight, handle)
        return handle.wait() if wait else handle

    @_either
    def verify(self, image: EngineInput | str,
               modules: Iterable[str] | None = None) -> VerifyResult:
        """Import the kernel's imported modules (or ``modules``) in a container of the built
        ``image``; per module: same version / different / fails. See :mod:`imagebuild_nb.verify`."""
        from imagebuild_nb.verify import verify

        return verify(image.uri if isinstance(image, BuildTarget) else image, modules)

    def _start(self, plan: BuildPlan, name: str, chosen: Builder, force: bool,
               on_done: Callable[[ImageBuild], None]) -> ImageBuild:
        """The leader's part: check existence, then start the build when one is needed."""
        reason, existence = self._why_build(plan, force, name)
        if reason is None:
            assert existence is not None  # only a check finds it there
            return self._annotated(ImageBuild.found_existing(
                plan.uri, digest=existence.digest, builder=name, driver=chosen.driver,
                existence=existence), plan)
        submitting = isinstance(chosen, SubmittingBuilder)
        # A build elsewhere gets the secrets' names only; the service resolves them itself.
        request = plan.request(chosen.driver, force=force, with_secrets=not submitting)
        chosen = platforms.for_request(chosen, request, self.settings)  # one build per platform?
        # Only to scrub them from logs: secret values are never stored or sent anywhere.
        hidden = () if submitting else secret_values([resolve(mount) for mount in plan.secrets])
        handle = self._annotated(ImageBuild(plan.uri, builder=name, driver=chosen.driver,
                                            reason=reason), plan)
        handle.existence = existence

        events: Callable[[threading.Event], Iterator[BuildEvent]]
        if isinstance(chosen, SubmittingBuilder):
            # A builder that runs elsewhere (the service) submits now, so even wait=False
            # returns with the run's id and page; the thread then only follows it.
            remote_run = chosen.start(request, secrets=remote_secrets(plan.secrets))
            handle.remote_run = remote_run
            events = functools.partial(_without_started, chosen.follow, remote_run.id)
        else:
            events = functools.partial(chosen.build, request)

        def run(cancel: threading.Event) -> Iterator[BuildEvent]:
            yield BuildStarted(uri=plan.uri, builder=name, driver=chosen.driver, reason=reason,
                               dockerfile=request.dockerfile)
            for event in events(cancel):
                if isinstance(event, BuildFinished):
                    self._forget(plan.uri)
                yield _scrubbed(event, hidden) if hidden else event

        return handle.start(run, on_done=on_done)

    def _check(self, plan: BuildPlan, builder: str) -> ExistenceResult:
        return self._check_uri(plan.uri, plan.check_spec_hash,
                               plan.platform or self.settings.platform, builder)

    def _check_uri(self, uri: str, spec_hash: str | None, platform: str | None,
                   builder: str) -> ExistenceResult:
        """Ask where the build would happen: a builder that answers existence itself (the
        service, with its own registry credentials) is asked; otherwise our checker."""
        if builder != "local":
            chosen = self.builder(builder)
            if isinstance(chosen, SubmittingBuilder):
                return chosen.check(uri, spec_hash=spec_hash, platform=platform)
            # No registry: the image stays in the builder's own store (podman's), not dockerd's.
            if isinstance(chosen, ChecksOwnStore) and ImageReference.parse(uri).registry is None:
                return chosen.check_store(uri, spec_hash=spec_hash, platform=platform)
        return self.checker.check(uri, spec_hash=spec_hash, platform=platform)

    def _why_build(self, plan: BuildPlan, force: bool,
                   builder: str) -> tuple[str | None, ExistenceResult | None]:
        """Why a build is needed (None: it exists), and the existence result when checked."""
        if force:
            return "force: rebuild without cache", None
        if plan.tag == "latest":
            return "the 'latest' tag is always built", None
        result = self._check(plan, builder)
        if result.state == "exists" and not result.built_from_other_spec:
            return None, result
        if result.state == "exists":
            return f"{plan.uri} exists but was built from another spec", result
        if result.state == "missing":
            return "missing", result
        if self.settings.unknown_existence_policy == "fail":
            raise ImageBuildError(
                f"cannot tell whether {plan.uri} exists: {result.reason}",
                hint="fix the registry access, build with force=True, or set "
                     "unknown_existence_policy='build' to build anyway",
            )
        return f"existence unknown ({result.reason}); building to be sure", result

    def _dry_run(self, plan: BuildPlan, chosen: Builder, force: bool) -> DryRun:
        request = plan.request(chosen.driver, force=force, with_secrets=False)
        chosen = platforms.for_request(chosen, request, self.settings)
        return DryRun(uri=plan.uri, dockerfile=request.dockerfile,
                      context_files=tuple(request.context.file_list()),
                      command=chosen.describe(request), builder=chosen.name,
                      driver=chosen.driver, push=request.push, origin=plan.origin,
                      secrets=tuple(mount.name for mount in plan.secrets))

    @staticmethod
    def _annotated(build: ImageBuild, plan: BuildPlan) -> ImageBuild:
        build.origin = plan.origin
        return build

    def _forget(self, uri: str) -> None:
        if self._checker is not None:
            self._checker.invalidate(uri)


def _scrubbed(event: BuildEvent, hidden: tuple[str, ...]) -> BuildEvent:
    """The event with secret values replaced by ``***`` (a step that prints one)."""
    if isinstance(event, LogLine):
        return dataclasses.replace(event, text=scrub(event.text, hidden))
    if isinstance(event, BuildFailed):
        return dataclasses.replace(event, message=scrub(event.message, hidden),
                                   lines=tuple(scrub(line, hidden) for line in event.lines))
    return event


def _without_started(follow: Callable[..., Iterator[BuildEvent]], build_id: str,
                     cancel: threading.Event) -> Iterator[BuildEvent]:
    """The remote run's events minus its own "started" (the engine announces the build)."""
    return (event for event in follow(build_id, cancel) if not isinstance(event, BuildStarted))
