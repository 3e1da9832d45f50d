"""ImageBuildWidget: check and build an image from buttons, with a live log view and Cancel.

Threading model: button handlers and engine callbacks never touch widget traits; they put
messages on a queue and wake the :class:`~imagebuild_nb.notebook.flusher.Flusher`. Checks and
builds run on worker threads, so the kernel keeps executing cells and Cancel stays clickable.
The flusher folds the queue into a :class:`~imagebuild_nb.notebook.viewstate.ViewState` a few
times per second and sends the live panel (badge, step, elapsed, log tail) as ONE comm message;
controls send a message only when a state transition changes them.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from traitlets import Unicode

from imagebuild_nb.events import BuildEvent
from imagebuild_nb.notebook import widget_html
from imagebuild_nb.notebook.build_record import BuildRecord
from imagebuild_nb.notebook.controls import (
    action_buttons,
    build_options,
    builder_controls,
    set_disabled,
)
from imagebuild_nb.notebook.flusher import Flusher
from imagebuild_nb.notebook.live import finished_script
from imagebuild_nb.notebook.logpager import LogPager
from imagebuild_nb.notebook.logview import LogBuffer
from imagebuild_nb.notebook.outcome import readable, settlement
from imagebuild_nb.notebook.remote_availability import remote_unavailable
from imagebuild_nb.notebook.viewstate import (
    BuildRequested,
    BuildSettled,
    BuildSubmitted,
    CancelRequested,
    CheckDone,
    CheckStarted,
    DryRunReady,
    Message,
    Problem,
    ViewState,
    reduce,
)
from imagebuild_nb.settings import Settings

if TYPE_CHECKING:
    from imagebuild_nb.build import ImageBuild
    from imagebuild_nb.engine import ImageBuildEngine
    from imagebuild_nb.spec.convert import ImageLike

class _ShowPage:
    def __init__(self, page: int | None) -> None:
        self.page = page  # None = the last page


class ImageBuildWidget(widgets.VBox):
    """Check, build (locally or remotely) and watch an image from a notebook.

    >>> from imagebuild_nb import Image, ImageBuildEngine
    >>> from imagebuild_nb.testing import ScriptedBuilder, ScriptedRegistry
    >>> registry = ScriptedRegistry()
    >>> engine = ImageBuildEngine(builders={"local": ScriptedBuilder(registry=registry)},
    ...                           checker=registry)
    >>> img = Image.from_base("localhost:5001/base:1", name="demo").with_commands(["true"])
    >>> w = ImageBuildWidget(img, engine=engine)
    >>> w.status
    'not-checked'
    >>> w.check_button.click()
    >>> w.wait_idle(timeout=5)
    True
    >>> w.status
    'missing'

    In a notebook, display it (``w`` as the last expression of a cell) and use the buttons;
    ``w.full_log()`` returns the whole log of the last build, ``w.log_path`` is its file.
    """

    uri = Unicode(help="The image reference this widget checks and builds.")
    status = Unicode("not-checked", help="not-checked, checking, exists, missing, unknown, "
                     "building, built, failed, cancelled or dry-run (Python side, not synced).")
    digest = Unicode(None, allow_none=True, help="Digest from the last check or build.")

    def __init__(self, image: ImageLike, engine: ImageBuildEngine | None = None, *,
                 settings: Settings | None = None, flush_interval: float | None = 0.25,
                 tail_lines: int = 120, log_max_bytes: int = 64 * 1024 * 1024,
                 queue_limit: int = 20_000, **kwargs: Any) -> None:
        from imagebuild_nb.spec.flyte import from_flyte, is_flyte_image

        image = from_flyte(image) if is_flyte_image(image) else image  # show the URI we build
        self._image = image
        self._engine = engine
        # Bounded, so a producer faster than the flusher waits instead of filling memory
        # (manual flushing: unbounded, the caller drains).
        self._queue: queue.Queue[Message | _ShowPage] = queue.Queue(
            maxsize=queue_limit if flush_interval else 0)
        self._interval = flush_interval
        self._last_render = 0.0
        self._dropped = 0
        self._state = ViewState()
        self._record = BuildRecord(tail_lines=tail_lines, max_bytes=log_max_bytes)
        self._job_lock = threading.Lock()
        self._job: str | None = None
        self._handle: ImageBuild | None = None
        self._cancel_requested = threading.Event()
        self._flush_lock = threading.RLock()
        self._flush_thread: int | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._remote_reason = remote_unavailable(settings, engine)
        self.builder, self.remote_button, self.remote_note = builder_controls(
            self._remote_reason)
        self.dry_run, self.force = build_options()
        self.check_button, self.build_button, self.cancel_button, self.full_log_button = \
            action_buttons()
        self.panel = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.log_pager = LogPager()
        # Where the end-of-build script goes: outputs of an Output widget are trusted, so
        # JupyterLab and Notebook 7 run it (the HTML widget runs no scripts).
        self.notice = widgets.Output(layout=widgets.Layout(display="none"))
        controls = widgets.HBox(
            [self.builder, self.remote_button, self.remote_note, self.dry_run, self.force,
             self.check_button, self.build_button, self.cancel_button, self.full_log_button],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        super().__init__(children=[controls, self.panel, self.log_pager, self.notice],
                         **kwargs)
        self.uri = str(getattr(image, "uri", image))
        self.add_class("imagebuild-widget")

        self.check_button.on_click(self._guarded(self._on_check))
        self.build_button.on_click(self._guarded(self._on_build))
        self.cancel_button.on_click(self._guarded(self._on_cancel))
        self.full_log_button.observe(self._guarded(self._on_full_log), "value")
        self.log_pager.page_number.observe(self._guarded(self._on_page), "value")
        self.log_pager.search.observe(self._guarded(self._on_search), "value")
        self._flusher = Flusher(self.flush, interval=flush_interval) if flush_interval else None
        self.flush()

    # -- public API ------------------------------------------------------------------------

    @property
    def state(self) -> ViewState:
        """The current view state (immutable; updated by the flusher)."""
        return self._state

    @property
    def previous_log_path(self) -> str | None:
        """The file holding the full log of the build before the last one (kept until the next)."""
        return self._record.previous_path

    @property
    def log_path(self) -> str | None:
        """The file holding the full log of the last build (removed when the widget closes)."""
        return self._record.path

    def full_log(self, start: int = 0, count: int | None = None) -> str:
        """The last build's log (all of it by default), cleaned of ANSI codes."""
        return self._record.text(start, count)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no check or build runs and its result is on screen (tests, scripts)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._idle.wait(remaining):
                return False
            self.flush()
            if self._idle.is_set() and not self._state.busy:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def flush(self) -> bool:
        """Apply queued messages and update the view (one message per changed widget).

        Called by the flusher thread; returns True while there is more to come.
        """
        with self._flush_lock:
            self._flush_thread = threading.get_ident()
            try:
                self._drain(limit=max(1, self._queue.qsize()))
                now = time.monotonic()
                settled = not self._state.busy and self._idle.is_set()
                if (self._interval is None or settled
                        or now - self._last_render >= self._interval * 0.9):
                    self._last_render = now
                    self._render()
            except Exception as error:  # noqa: BLE001 - a bug must show up, not kill the widget
                self._state = reduce(self._state, Problem(f"widget error: {readable(error)}"))
                with contextlib.suppress(Exception):
                    self._render()
            finally:
                self._flush_thread = None
            return self._state.busy or not self._idle.is_set() or not self._queue.empty()

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.stop(final_flush=False)
        handle = self._handle
        if handle is not None and self._state.status == "building":
            with contextlib.suppress(Exception):
                handle.cancel()
        self._record.close()
        for child in (self.builder, self.remote_button, self.remote_note, self.notice,
                      self.dry_run, self.force, self.check_button,
                      self.build_button, self.cancel_button, self.full_log_button, self.panel,
                      self.log_pager, *self.children):
            child.close()
        super().close()

    def summary(self) -> str:
        """A plain-text account of the widget (what ``repr`` and non-widget frontends show)."""
        return widget_html.plain_summary(self._state, uri=self.uri, now=time.time(),
                                         log_lines=self._log.tail(),
                                         steps=self._record.progress.view())

    def __repr__(self) -> str:
        digest = f" {widget_html.short_digest(self._state.digest)}" if self._state.digest else ""
        return f"<ImageBuildWidget {self.uri} [{self._state.status}{digest}]>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        data: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        if data is not None:
            data["text/plain"] = self.summary()
        return data

    # -- callbacks (main thread): only post messages and start workers ----------------------

    def _on_check(self, _button: Any) -> None:
        if self._start_job("check"):
            self._post(CheckStarted(at=time.time()))
            self._spawn(self._run_check)

    def _on_build(self, _button: Any) -> None:
        builder, dry_run, force = self.builder.value, self.dry_run.value, self.force.value
        if builder == "remote" and self._remote_reason:
            raise RuntimeError(f"remote builder unavailable: {self._remote_reason}")
        if self._start_job("build"):
            self.dry_run.value = self.force.value = False  # options of this build only
            self._cancel_requested.clear()
            self._handle = None
            self._post(BuildRequested(builder=builder, dry_run=dry_run, force=force,
                                      at=time.time()))
            self._spawn(lambda: self._run_build(builder, dry_run, force))

    def _on_cancel(self, _button: Any) -> None:
        self._cancel_requested.set()
        self._post(CancelRequested())
        handle = self._handle
        if handle is not None:
            self._spawn(lambda: self._cancel(handle))

    def _on_full_log(self, change: dict[str, Any]) -> None:
        if not self._in_flush():
            self._post(_ShowPage(None) if change["new"] else _ShowPage(0))

    def _on_search(self, change: dict[str, Any]) -> None:
        if not self._in_flush() and self.full_log_button.value:
            self._post(_ShowPage(self.log_pager.page_number.value))

    def _on_page(self, change: dict[str, Any]) -> None:
        if not self._in_flush() and self.full_log_button.value:
            self._post(_ShowPage(int(change["new"])))

    # -- workers (background threads) -------------------------------------------------------

    def _run_check(self) -> None:
        try:
            result = self._get_engine().check(self._image)
            self._post(CheckDone(state=result.state, digest=result.digest,
                                 reason=result.reason or ""))
        except Exception as error:  # noqa: BLE001 - shown in the widget
            self._post(Problem(readable(error), during="check"))
        finally:
            self._end_job()

    def _run_build(self, builder: str, dry_run: bool, force: bool) -> None:
        try:
            handle = self._get_engine().build(self._image, builder=builder, dry_run=dry_run,
                                              force=force, wait=False)
            self._handle = handle
            run = handle.remote_run
            self._post(BuildSubmitted(run_url=run.url if run else None, build_id=handle.id))
            if handle.dry_run is not None:
                plan = handle.dry_run
                self._post(DryRunReady(dockerfile=plan.dockerfile, at=time.time(),
                                       summary=f"{len(plan.context_files)} context files; "
                                               f"would run: {plan.command}"))
                return
            if self._cancel_requested.is_set():
                self._cancel(handle)
            handle.subscribe(self._post)
            handle.wait(raise_on_error=False)
            self._post(settlement(handle))
        except Exception as error:  # noqa: BLE001 - shown in the widget
            self._post(Problem(readable(error), during="build", at=time.time()))
        finally:
            self._end_job()

    def _cancel(self, handle: ImageBuild) -> None:
        try:
            handle.cancel()
        except Exception as error:  # noqa: BLE001 - shown in the widget
            self._post(Problem(f"cancel failed: {readable(error)}", during="cancel"))

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def _log(self) -> LogBuffer:
        """The last build's live log (its tail is what the panel shows)."""
        return self._record.log

    def _get_engine(self) -> ImageBuildEngine:
        if self._engine is None:
            from imagebuild_nb.engine import ImageBuildEngine

            # The configured default, so ImageBuildEngine.configure() and %config apply here.
            self._engine = ImageBuildEngine.default()
        return self._engine

    def _post(self, message: Message | _ShowPage) -> None:
        try:
            self._queue.put(message, timeout=10)
        except queue.Full:  # the flusher is gone or stuck: drop rather than hang the build
            self._dropped += 1
        if self._flusher is not None:
            if self._queue.maxsize and self._queue.qsize() >= self._queue.maxsize // 2:
                self._flusher.kick()  # drain now, render at the next tick
            else:
                self._flusher.wake()

    def _spawn(self, target: Callable[[], None]) -> None:
        threading.Thread(target=target, name="imagebuild-widget-job", daemon=True).start()

    def _start_job(self, name: str) -> bool:
        with self._job_lock:
            if self._job is not None:
                self._post(Problem(f"a {self._job} is running; wait for it or cancel it first"))
                return False
            self._job = name
            self._idle.clear()
            return True

    def _end_job(self) -> None:
        with self._job_lock:
            self._job = None
        self._idle.set()
        if self._flusher is not None:
            self._flusher.wake()

    def _in_flush(self) -> bool:
        return self._flush_thread == threading.get_ident()

    def _guarded(self, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        def run(argument: Any) -> None:
            try:
                callback(argument)
            except Exception as error:  # noqa: BLE001 - readable message instead of a dead widget
                self._post(Problem(readable(error)))
        return run

    def _drain(self, limit: int) -> None:
        for _ in range(limit):
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _ShowPage):
                self._show_page(item.page)
                continue
            if isinstance(item, BuildRequested):
                self._record.start()
                self.notice.outputs = ()
            elif isinstance(item, BuildEvent):
                self._record.feed(item)
            self._state = reduce(self._state, item)
            if isinstance(item, BuildSettled):
                self._notify()

    def _notify(self) -> None:
        """The build ended: the tab's title (and a notification where the browser allows it)
        tells a user who looked away; nothing happens for one looking at the page."""
        script = finished_script(self._record.progress.view())
        if script:
            self.notice.outputs = ({"output_type": "display_data", "metadata": {},
                                    "data": {"text/html": script, "text/plain": ""}},)

    def _show_page(self, page: int | None) -> None:
        if page == 0 or not self.full_log_button.value:
            self.log_pager.hide()
        else:
            self.log_pager.show(self._log.store, page, name=self.uri)

    def _render(self) -> None:
        state = self._state
        notes = [self._record.note(),
                 f"{self._dropped} events dropped (view overloaded)" if self._dropped else ""]
        note = " · ".join(n for n in notes if n)
        value = widget_html.panel(state, uri=self.uri, now=time.time(),
                                  log_lines=self._log.tail(), lines_total=self._log.lines_total,
                                  log_note=note, steps=self._record.progress.view())
        if self.panel.value != value:
            with self.panel.hold_sync():
                self.panel.value = value
        busy = state.busy or not self._idle.is_set()
        can_cancel = state.status == "building" and not state.cancelling and self._job == "build"
        for control, disabled in ((self.check_button, busy), (self.build_button, busy),
                                  (self.cancel_button, not can_cancel), (self.builder, busy),
                                  (self.dry_run, busy), (self.force, busy)):
            set_disabled(control, disabled)
        self.status = state.status
        self.digest = state.digest

