"""ImageBuildWidget headless (no kernel): state transitions, batching, bounds, errors.

Outgoing comm messages are recorded by replacing ``comm.create_comm``, as ipywidgets' own
tests do. Most tests use manual flushing (``flush_interval=None``) so every flush is explicit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from imagebuild_nb.build import DryRun, ImageBuild, RemoteRun
from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    BuildStarted,
    LogLine,
    OutputClipped,
    StepStarted,
)
from imagebuild_nb.notebook import widget_html
from imagebuild_nb.notebook.scripted import ScriptedEngine
from imagebuild_nb.settings import Settings
from tests.support.widgets import DIGEST, URI, ManualEngine


def test_check_shows_missing_then_exists_with_a_short_digest(make_widget: Any) -> None:
    engine = ScriptedEngine()
    widget = make_widget(engine)
    assert widget.status == "unknown" and 'data-status="unknown"' in widget.panel.value
    widget.check_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "missing"
    engine.existing[URI] = DIGEST
    widget.check_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "exists" and widget.digest == DIGEST
    assert "exists · sha256:abababababab" in widget.panel.value


def test_checking_state_disables_the_buttons_while_the_check_runs(make_widget: Any) -> None:
    widget = make_widget(ScriptedEngine(check_delay=0.3))
    widget.check_button.click()
    widget.flush()
    assert widget.status == "checking"
    assert widget.check_button.disabled and widget.build_button.disabled
    assert widget.cancel_button.disabled  # Cancel is for builds only
    assert widget.wait_idle(5) and not widget.check_button.disabled


def test_build_streams_steps_and_logs_and_ends_built(make_widget: Any) -> None:
    script = [StepStarted(number=1, total=2, instruction="FROM base"),
              StepStarted(number=2, total=2, instruction="RUN echo hello"),
              LogLine(text="hello", step=2)]
    widget = make_widget(ScriptedEngine(script=script))
    assert widget.cancel_button.disabled
    widget.build_button.click()
    assert widget.wait_idle(5)
    state = widget.state
    assert (state.status, state.step, state.total) == ("built", 2, 2)
    assert widget.digest and widget.digest.startswith("sha256:")
    assert "step 2/2" in widget.panel.value and "hello" in widget.panel.value
    assert "built · sha256:" in widget.panel.value
    assert widget.cancel_button.disabled and not widget.build_button.disabled
    assert "hello" in widget.full_log() and "── step 2/2: RUN echo hello" in widget.full_log()


def test_build_with_the_real_handle_class(make_widget: Any) -> None:
    """The engine's own ImageBuild handle (subscribe/wait/cancel/status) drives the widget."""

    class Engine:
        def check(self, image: Any) -> Any: ...

        def build(self, image: Any, **kwargs: Any) -> ImageBuild:
            def run(cancel: threading.Event) -> Iterator[BuildEvent]:
                yield BuildStarted(uri=URI, builder="local", reason="missing")
                yield StepStarted(number=1, total=1, instruction="RUN true")
                yield LogLine(text="ok")
                yield BuildFinished(uri=URI, digest=DIGEST, pushed=True)

            return ImageBuild(URI, builder="local",
                              remote_run=RemoteRun("r1", "http://svc/builds/r1")).start(run)

    widget = make_widget(Engine())
    widget.build_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "built" and widget.digest == DIGEST
    assert 'href="http://svc/builds/r1"' in widget.panel.value


def test_found_existing_and_dry_run_with_real_handles(make_widget: Any) -> None:
    class Engine:
        def check(self, image: Any) -> Any: ...

        def build(self, image: Any, *, dry_run: bool = False, **kwargs: Any) -> ImageBuild:
            if dry_run:
                return ImageBuild.planned(DryRun(URI, "FROM base\nRUN make\n", ("Dockerfile",),
                                                 "docker build .", "local", "buildkit", False))
            return ImageBuild.found_existing(URI, digest=DIGEST, builder="local")

    widget = make_widget(Engine())
    widget.build_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "exists" and "found existing" in widget.panel.value
    widget.dry_run.value = True
    widget.build_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "dry-run"
    assert "RUN make" in widget.panel.value and "would run: docker build ." in widget.panel.value


def test_ansi_and_carriage_returns_are_cleaned_in_the_view(make_widget: Any) -> None:
    engine = ManualEngine()
    widget = make_widget(engine)
    widget.build_button.click()
    assert engine.handle.subscribed.wait(5)
    engine.handle.emit(LogLine(text="\x1b[1;32mSuccess\x1b[0m"))
    for percent in range(0, 101, 25):
        engine.handle.emit(LogLine(text=f"\x1b[2KDownloading {percent}%\r"))
    widget.flush()
    assert "\x1b" not in widget.panel.value and "Success\nDownloading 100%</pre>" in widget.panel.value
    assert "Downloading 50%" not in widget.panel.value
    engine.handle.emit(LogLine(text="Installed"))  # like a terminal: overwrites the progress line
    engine.handle.emit(BuildFinished(uri=URI, digest=DIGEST))
    assert widget.wait_idle(5)
    assert "Success\nInstalled</pre>" in widget.panel.value
    assert widget.full_log() == "Success\nInstalled\n"


def test_failure_shows_the_step_exit_code_and_tail(make_widget: Any) -> None:
    script = [StepStarted(number=3, total=4, instruction="RUN make"),
              LogLine(text="make: *** [all] Error 2"),
              BuildFailed(message="RUN make returned a non-zero code: 2", step="3/4 RUN make",
                          exit_code=2, lines=("cc -o x", "make: *** [all] Error 2"))]
    widget = make_widget(ScriptedEngine(script=script))
    widget.build_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "failed"
    html = widget.panel.value
    assert "failed at step 3/4 RUN make" in html and "exit code 2" in html and "cc -o x" in html
    assert "failed" in widget._repr_mimebundle_()["text/plain"]


def test_clipped_output_is_marked(make_widget: Any) -> None:
    widget = make_widget(ScriptedEngine(script=[OutputClipped(message="log limit 200KiB/s")]))
    widget.build_button.click()
    assert widget.wait_idle(5)
    assert "this log is incomplete" in widget.panel.value


def test_cancel_is_enabled_only_while_building_and_ends_cancelled(make_widget: Any) -> None:
    engine = ManualEngine()
    widget = make_widget(engine)
    assert widget.cancel_button.disabled
    widget.build_button.click()
    assert engine.handle.subscribed.wait(5)
    widget.flush()
    assert widget.status == "building" and not widget.cancel_button.disabled
    widget.cancel_button.click()
    assert engine.handle.cancelled.wait(5)
    widget.flush()
    assert "building · cancelling…" in widget.panel.value and widget.cancel_button.disabled
    engine.handle.emit(BuildCancelled(message="cancelled by the user"))
    assert widget.wait_idle(5)
    assert widget.status == "cancelled" and widget.cancel_button.disabled


def test_cancel_stops_a_scripted_build_midway(make_widget: Any) -> None:
    engine = ScriptedEngine(script=[LogLine(text=f"tick {n}") for n in range(1000)], delay=0.01)
    widget = make_widget(engine, flush_interval=0.05)
    widget.build_button.click()
    deadline = time.monotonic() + 5
    while "tick 3" not in widget.panel.value and time.monotonic() < deadline:
        time.sleep(0.02)
    widget.cancel_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "cancelled" and engine.builds[0].status == "cancelled"
    assert "tick 999" not in widget.full_log()


def test_engine_errors_are_readable_messages_not_dead_widgets(make_widget: Any) -> None:
    down = BuilderUnavailableError("the Docker engine does not answer",
                                   hint="start Docker or set DOCKER_HOST")
    widget = make_widget(ScriptedEngine(check_error=RuntimeError("registry exploded"),
                                        build_error=down))
    widget.check_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "unknown" and "RuntimeError: registry exploded" in widget.panel.value
    widget.build_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "failed"
    assert "does not answer" in widget.panel.value and "start Docker" in widget.panel.value
    assert not widget.build_button.disabled  # usable again


def test_a_bug_in_rendering_is_shown_and_the_widget_recovers(make_widget: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    widget = make_widget(ScriptedEngine())
    real = widget_html.panel
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("render bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(widget_html, "panel", flaky)
    widget.check_button.click()
    assert widget.wait_idle(5)
    assert "widget error: ValueError: render bug" in widget.panel.value
    widget.check_button.click()
    assert widget.wait_idle(5) and widget.status == "missing"


def test_remote_builder_is_disabled_with_a_reason_unless_configured(make_widget: Any) -> None:
    widget = make_widget(ScriptedEngine())
    assert "IMAGEBUILD_NB_REMOTE_URL" in widget.builder.tooltips[1]
    widget.builder.value = "remote"
    widget.flush()
    assert widget.builder.value == "local"
    assert "remote builder unavailable" in widget.panel.value
    engine = ManualEngine()
    configured = make_widget(engine, settings=Settings(remote_url="http://svc:8888"))
    configured.builder.value = "remote"
    configured.build_button.click()
    assert engine.handle.subscribed.wait(5)
    assert engine.calls[0]["builder"] == "remote"
    engine.handle.emit(BuildFinished(uri=URI, digest=DIGEST))
    assert configured.wait_idle(5)


def test_second_build_click_while_building_is_refused_with_a_message(make_widget: Any) -> None:
    engine = ManualEngine()
    widget = make_widget(engine)
    widget.build_button.click()
    widget.build_button.click()  # before any flush disabled the button
    assert engine.handle.subscribed.wait(5)
    widget.flush()
    assert "a build is running" in widget.panel.value and len(engine.calls) == 1
    engine.handle.emit(BuildFinished(uri=URI, digest=DIGEST))
    assert widget.wait_idle(5)


def test_text_repr_is_meaningful_where_widgets_do_not_render(make_widget: Any) -> None:
    widget = make_widget(ScriptedEngine(script=[LogLine(text="last words")]))
    widget.build_button.click()
    assert widget.wait_idle(5)
    text = widget._repr_mimebundle_()["text/plain"]
    assert URI in text and "status: built" in text and "| last words" in text
    assert repr(widget).startswith(f"<ImageBuildWidget {URI} [built sha256:")
