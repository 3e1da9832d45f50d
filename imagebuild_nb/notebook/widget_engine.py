"""What the widget needs from the engine, as small Protocols, and adapters that read the answers.

The widget asks for three things: an existence check, a build started without waiting, and on
the returned handle a way to follow events, wait and cancel. Anything with that shape works:
:class:`imagebuild_nb.ImageBuildEngine`, and :class:`~imagebuild_nb.notebook.scripted.ScriptedEngine`
in tests and demos. The adapters run in worker threads and turn answers into
:mod:`~imagebuild_nb.notebook.viewstate` messages; they never touch widgets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from imagebuild_nb.events import BuildEvent
from imagebuild_nb.notebook.viewstate import BuildSettled, BuildSubmitted, CheckDone, DryRunReady


@runtime_checkable
class ExistenceLike(Protocol):
    """The tri-state existence answer: ``state`` is "exists", "missing" or "unknown"."""

    @property
    def state(self) -> str: ...

    @property
    def digest(self) -> str | None: ...

    @property
    def reason(self) -> str | None: ...


@runtime_checkable
class BuildHandleLike(Protocol):
    """A started build. ``subscribe`` replays past events, then delivers new ones, from any thread."""

    def subscribe(self, callback: Callable[[BuildEvent], None]) -> object: ...

    def wait(self, timeout: float | None = None) -> object: ...

    def cancel(self) -> object: ...


@runtime_checkable
class EngineLike(Protocol):
    def check(self, image: Any) -> ExistenceLike: ...

    def build(
        self,
        image: Any,
        builder: str | None = None,
        dry_run: bool = False,
        force: bool = False,
        wait: bool = True,
    ) -> Any: ...


def default_engine() -> EngineLike:
    """The real engine (imported late: the widget module must import without it)."""
    from imagebuild_nb.engine import ImageBuildEngine

    # The configured default engine, so ImageBuildEngine.configure() and %config apply here too.
    return ImageBuildEngine.default()


def uri_of(image: Any) -> str:
    uri = getattr(image, "uri", None)
    return str(uri if uri is not None else image)


def check_message(result: Any) -> CheckDone:
    """Turn an existence result into a view message (tolerates enum states and missing fields)."""
    state = getattr(result, "state", None)
    state = str(getattr(state, "value", state) or "unknown").lower()
    reason = getattr(result, "reason", None) or ""
    return CheckDone(state=state, digest=getattr(result, "digest", None), reason=str(reason))


def follow(handle: Any, callback: Callable[[BuildEvent], None]) -> bool:
    """Deliver the handle's events to ``callback``; False when the handle offers no subscription.

    Prefers a callback subscription (``subscribe`` / ``on_event`` / ``add_listener``).
    """
    for name in ("subscribe", "on_event", "add_listener", "add_callback"):
        method = getattr(handle, name, None)
        if callable(method):
            method(callback)
            return True
    return False


def iterate_events(handle: Any, callback: Callable[[BuildEvent], None]) -> None:
    """Fallback for handles without a subscription: iterate their replayable event stream."""
    events = getattr(handle, "events", None)
    stream = events() if callable(events) else events
    if stream is None:
        return
    for event in stream:
        callback(event)


def submitted_message(handle: Any) -> BuildSubmitted:
    run = getattr(handle, "remote_run", None) or getattr(handle, "run", None)
    url = getattr(run, "url", None) if run is not None else None
    url = url or getattr(handle, "run_url", None)
    build_id = getattr(handle, "id", None) or getattr(run, "id", None)
    return BuildSubmitted(run_url=str(url) if url else None,
                          build_id=str(build_id) if build_id else None)


def dry_run_message(handle: Any) -> DryRunReady:
    """The rendering a dry run returned: Dockerfile text plus a one-line summary."""
    rendering = getattr(handle, "dry_run", None) or getattr(handle, "rendering", None) or handle
    dockerfile = getattr(rendering, "dockerfile", None)
    if dockerfile is None and isinstance(rendering, dict):
        dockerfile = rendering.get("dockerfile")
    files = getattr(rendering, "context_files", None) or getattr(rendering, "files", None)
    command = getattr(rendering, "command", None) or getattr(rendering, "driver", None)
    parts = []
    if files is not None:
        parts.append(f"{len(files)} context files")
    if command:
        parts.append(f"would run: {' '.join(command) if isinstance(command, list | tuple) else command}")
    return DryRunReady(dockerfile=str(dockerfile or "(no Dockerfile in the dry-run result)"),
                       summary="; ".join(parts), at=time.time())


def settled_message(handle: Any, error: BaseException | None) -> BuildSettled:
    """How the build ended, read from the handle after ``wait()`` returned or raised."""
    status = getattr(handle, "status", None)
    status = str(getattr(status, "value", status) or "").lower()
    digest = getattr(handle, "digest", None)
    # ``found`` must be a real bool: ImageBuild also has a ``found_existing`` classmethod.
    existing = getattr(handle, "found", None) is True
    if error is not None:
        name = type(error).__name__.lower()
        final = "cancelled" if "cancel" in name or "cancel" in status else "failed"
        return BuildSettled(status=final, digest=digest, message=readable(error), at=time.time())
    if existing or status in ("exists", "existing", "found", "found_existing", "skipped"):
        return BuildSettled(status="exists", digest=digest, message="found existing, not built",
                            at=time.time())
    if "cancel" in status:
        return BuildSettled(status="cancelled", digest=digest, at=time.time())
    if "fail" in status or "error" in status:
        return BuildSettled(status="failed", digest=digest, at=time.time())
    return BuildSettled(status="built", digest=digest, at=time.time())


def readable(error: BaseException) -> str:
    """One readable message for an exception: its text plus the hint our errors carry."""
    text = str(error) or type(error).__name__
    hint = getattr(error, "hint", None)
    if hint and str(hint) not in text:
        text = f"{text}\nhint: {hint}"
    return f"{type(error).__name__}: {text}"


def remote_unavailable(settings: Any, engine: Any) -> str:
    """Why the remote builder cannot be used ("" when it can)."""
    if settings is None:
        settings = getattr(engine, "settings", None)
    if settings is None:
        try:
            settings = default_engine().settings if engine is None else None
        except Exception:  # noqa: BLE001 - fall back to the environment below
            settings = None
    if settings is None:
        try:
            from imagebuild_nb.settings import Settings

            settings = Settings.from_env()
        except Exception as error:  # noqa: BLE001 - a bad setting must not break the widget
            return f"settings could not be read: {readable(error)}"
    if getattr(settings, "remote_url", None):
        return ""
    return ("no remote build service configured: set IMAGEBUILD_NB_REMOTE_URL "
            "(or the remote_url setting) to the service's URL")
