"""ImageBuildWidget headless (no kernel): the real engine and ImageBuild, a scripted builder.

Outgoing comm messages are recorded by replacing ``comm.create_comm``, as ipywidgets' own
tests do. Most tests use manual flushing (``flush_interval=None``) so every flush is explicit.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.events import (
    BuildCancelled,
    BuildFailed,
    BuildFinished,
    LogLine,
    OutputClipped,
    StepStarted,
)
from imagebuild_nb.notebook import widget_html
from imagebuild_nb.settings import Settings
from imagebuild_nb.testing import ScriptedBuilder, ScriptedRegistry
from tests.support.widgets import DIGEST, URI, ManualBuilder, engine_with, scripted


def test_starts_neutral_then_check_shows_missing_then_exists_with_a_short_digest(
        make_widget: Any) -> None:
    registry = ScriptedRegistry()
    widget = make_widget(scripted(registry=registry))
    assert widget.status == "not-checked" and "not checked yet" in widget.panel.value
    widget.check_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "missing"
    registry.existing[widget.uri] = DIGEST
    widget.check_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "exists" and widget.digest == DIGEST
    assert "exists · sha256:abababababab" in widget.panel.value


def test_checking_state_disables_the_buttons_while_the_check_runs(make_widget: Any) -> None:
    widget = make_widget(engine_with(ScriptedBuilder(), ScriptedRegistry(delay=0.3)))
    widget.check_button.click()
    widget.flush()
    assert widget.status == "checking"
    assert widget.check_button.disabled and widget.build_button.disabled
    assert widget.cancel_button.disabled  # Cancel is for builds only
    assert widget.wait_idle(5) and not widget.check_button.disabled


def test_build_shows_the_users_steps_with_times_and_ends_built_in_n_s(make_widget: Any) -> None:
    # What the legacy builder reports for the widget's image: FROM, RUN, ENV, our LABEL.
    widget = make_widget(scripted(StepStarted(number=1, total=4, instruction="FROM base"),
                                  StepStarted(number=2, total=4, instruction="RUN echo widget"),
                                  LogLine(text="hello", step=2),
                                  StepStarted(number=3, total=4, instruction="ENV WIDGET_TEST=1"),
                                  StepStarted(number=4, total=4,
                                              instruction='LABEL "io.imagebuild-nb.spec-hash"=1')))
    assert widget.cancel_button.disabled
    widget.build_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "built" and widget.digest and widget.digest.startswith("sha256:")
    html = widget.panel.value
    assert "Built in " in html  # "done in N s"
    assert re.findall(r'data-label="([^"]+)"', html) == ["prepare", "1/3", "2/3", "3/3"]
    assert 'data-label="2/3" data-state="done"' in html
    assert "built · sha256:" in html and "hello" in html
    assert widget.cancel_button.disabled and not widget.build_button.disabled
    assert "hello" in widget.full_log() and "── [2/3] RUN echo widget\nhello" in widget.full_log()


def test_no_progress_bar_is_full_before_the_end(make_widget: Any) -> None:
    builder = ManualBuilder()
    widget = make_widget(engine_with(builder))
    widget.build_button.click()
    assert builder.started.wait(5)
    builder.emit(StepStarted(number=1, total=2, instruction="FROM base"))
    builder.emit(StepStarted(number=2, total=2, instruction="RUN sleep 20"))
    time.sleep(0.2)
    widget.flush()
    assert "(1/2)" in widget.panel.value and "<progress" not in widget.panel.value
    builder.emit(BuildFinished(uri=URI, digest=DIGEST))
    assert widget.wait_idle(5)


def test_force_and_dry_run_apply_to_one_build_and_the_previous_log_stays(make_widget: Any) -> None:
    widget = make_widget(scripted(LogLine(text="first")))
    widget.force.value = True
    widget.build_button.click()
    assert not widget.force.value  # reset after use
    assert widget.wait_idle(5) and "first" in widget.full_log()
    first_log = widget.log_path
    widget.dry_run.value = True
    widget.build_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "dry-run" and not widget.dry_run.value
    assert "RUN echo widget" in widget.panel.value and "would run: scripted build" in \
        widget.panel.value
    assert widget.previous_log_path == first_log


def test_found_existing_is_one_exists(make_widget: Any) -> None:
    registry = ScriptedRegistry()
    widget = make_widget(scripted(registry=registry))
    registry.existing[widget.uri] = DIGEST
    widget.build_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "exists" and "already built, nothing to do" in widget.panel.value


def test_ansi_and_carriage_returns_are_cleaned_in_the_view(make_widget: Any) -> None:
    builder = ManualBuilder()
    widget = make_widget(engine_with(builder))
    widget.build_button.click()
    assert builder.started.wait(5)
    builder.emit(LogLine(text="\x1b[1;32mSuccess\x1b[0m"))
    for percent in range(0, 101, 25):
        builder.emit(LogLine(text=f"\x1b[2KDownloading {percent}%\r"))
    time.sleep(0.3)
    widget.flush()
    assert ("\x1b" not in widget.panel.value
            and "Success\nDownloading 100%</pre>" in widget.panel.value)
    builder.emit(LogLine(text="Installed"))  # like a terminal: overwrites the progress line
    builder.emit(BuildFinished(uri=URI, digest=DIGEST))
    assert widget.wait_idle(5)
    assert "Success\nInstalled</pre>" in widget.panel.value
    assert widget.full_log() == "Success\nInstalled\n"


def test_failure_shows_the_step_exit_code_and_tail(make_widget: Any) -> None:
    widget = make_widget(scripted(
        StepStarted(number=1, total=2, instruction="FROM base"),
        StepStarted(number=2, total=2, instruction="RUN make"),
        LogLine(text="make: *** [all] Error 2", step=2),
        BuildFailed(message="RUN make returned a non-zero code: 2", step="step 2: RUN make",
                    exit_code=2, lines=("cc -o x", "make: *** [all] Error 2"))))
    widget.build_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "failed"
    html = widget.panel.value
    assert "Failed at step 2/2" in html and 'data-state="failed" data-duration' in html
    assert "exit code 2" in html and "cc -o x" in html
    assert "failed" in widget._repr_mimebundle_()["text/plain"]


def test_clipped_output_is_marked(make_widget: Any) -> None:
    widget = make_widget(scripted(OutputClipped(message="log limit 200KiB/s")))
    widget.build_button.click()
    assert widget.wait_idle(5)
    assert "this log is incomplete" in widget.panel.value


def test_cancel_is_enabled_only_while_building_and_ends_cancelled(make_widget: Any) -> None:
    builder = ManualBuilder()
    widget = make_widget(engine_with(builder))
    assert widget.cancel_button.disabled
    widget.build_button.click()
    assert builder.started.wait(5)
    time.sleep(0.1)
    widget.flush()
    assert widget.status == "building" and not widget.cancel_button.disabled
    widget.cancel_button.click()
    assert builder.cancelled.wait(5)
    assert widget.wait_idle(5)
    assert widget.status == "cancelled" and widget.cancel_button.disabled
    assert "Cancelled after" in widget.panel.value


def test_cancel_stops_a_scripted_build_midway(make_widget: Any) -> None:
    engine = scripted(*(LogLine(text=f"tick {n}") for n in range(1000)), delay=0.01)
    widget = make_widget(engine, flush_interval=0.05)
    widget.build_button.click()
    deadline = time.monotonic() + 5
    while "tick 3" not in widget.panel.value and time.monotonic() < deadline:
        time.sleep(0.02)
    widget.cancel_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "cancelled"
    assert "tick 999" not in widget.full_log()


def test_engine_errors_are_readable_messages_not_dead_widgets(make_widget: Any) -> None:
    down = BuilderUnavailableError("the Docker engine does not answer",
                                   hint="start Docker or set DOCKER_HOST")
    widget = make_widget(engine_with(ScriptedBuilder(unavailable=down),
                                     ScriptedRegistry(error=RuntimeError("registry exploded"))))
    widget.check_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "unknown" and "RuntimeError: registry exploded" in widget.panel.value
    widget.build_button.click()
    assert widget.wait_idle(5)
    assert widget.status == "failed"
    assert "does not answer" in widget.panel.value and "start Docker" in widget.panel.value
    assert not widget.build_button.disabled  # usable again


def test_a_bug_in_rendering_is_shown_and_the_widget_recovers(
        make_widget: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    widget = make_widget(scripted())
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
    widget = make_widget(scripted())
    # Not a choice that snaps back: remote is a disabled button with its reason beside it.
    assert widget.builder.options == ("local", "local-podman")
    assert widget.remote_button.disabled and widget.remote_button.layout.display is None
    assert "IMAGEBUILD_NB_REMOTE_URL" in widget.remote_button.tooltip
    assert "IMAGEBUILD_NB_REMOTE_URL" in widget.remote_note.value
    assert "no build service configured" in widget.remote_note.value
    widget.remote_button.click()  # a disabled button's click (only possible from Python)
    widget.flush()
    assert (widget.builder.value == "local"
            and "remote builder unavailable" not in widget.panel.value)
    builder = ManualBuilder()
    configured = make_widget(engine_with(builder), settings=Settings(remote_url="http://svc:8888"))
    assert configured.builder.options == ("local", "local-podman", "remote")
    assert configured.remote_button.layout.display == "none" and not configured.remote_note.value
    configured.builder.value = "remote"
    configured.build_button.click()
    assert builder.started.wait(5)
    builder.emit(BuildFinished(uri=URI, digest=DIGEST))
    assert configured.wait_idle(5) and configured.status == "built"


def test_finished_build_tells_a_user_who_looked_away(make_widget: Any) -> None:
    builder = ManualBuilder()
    widget = make_widget(engine_with(builder))
    assert widget.notice.outputs == ()
    widget.build_button.click()
    assert builder.started.wait(5)
    builder.emit(StepStarted(number=1, total=1, instruction="RUN true"))
    builder.emit(BuildFinished(uri=URI, digest=DIGEST))
    assert widget.wait_idle(5) and widget.status == "built"
    (output,) = widget.notice.outputs
    script = output["data"]["text/html"]
    assert "document.title" in script and '"\\u2713 Built in' in script
    widget.build_button.click()  # the next build clears the notice until it ends
    widget.flush()
    assert widget.notice.outputs == ()
    builder.emit(BuildFailed(message="boom", exit_code=2))
    assert widget.wait_idle(5) and widget.status == "failed"
    assert "\\u2717 Failed" in widget.notice.outputs[0]["data"]["text/html"]


def test_second_build_click_while_building_is_refused_with_a_message(make_widget: Any) -> None:
    builder = ManualBuilder()
    widget = make_widget(engine_with(builder))
    widget.build_button.click()
    widget.build_button.click()  # before any flush disabled the button
    assert builder.started.wait(5)
    widget.flush()
    assert "a build is running" in widget.panel.value and len(builder.requests) == 1
    builder.emit(BuildFinished(uri=URI, digest=DIGEST))
    assert widget.wait_idle(5)


def test_text_repr_is_meaningful_where_widgets_do_not_render(make_widget: Any) -> None:
    widget = make_widget(scripted(LogLine(text="last words")))
    widget.build_button.click()
    assert widget.wait_idle(5)
    text = widget._repr_mimebundle_()["text/plain"]
    assert widget.uri in text and "status: built" in text and "| last words" in text
    assert repr(widget).startswith(f"<ImageBuildWidget {widget.uri} [built sha256:")


def test_cancelled_state_reads_cancelled_even_if_the_builder_said_so_first(
        make_widget: Any) -> None:
    builder = ManualBuilder()
    widget = make_widget(engine_with(builder))
    widget.build_button.click()
    assert builder.started.wait(5)
    builder.emit(BuildCancelled(message="cancelled elsewhere"))
    assert widget.wait_idle(5) and widget.status == "cancelled"
