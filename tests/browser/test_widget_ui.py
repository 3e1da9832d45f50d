"""The widget in a real JupyterLab + Chromium: the real engine with a scripted builder and
registry (imagebuild_nb.testing), no Docker needed.

Proves the kernel-side mechanics: updates from the flusher thread reach the page, a 20,000-line
log streams without freezing, other cells run while a build runs, the full-log pager works.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Lab, button, open_and_run, run_cell, screenshot

pytestmark = [pytest.mark.browser]

SETUP = """\
from imagebuild_nb import Image, ImageBuildEngine, ImageBuildWidget
from imagebuild_nb.events import LogLine, StepStarted
from imagebuild_nb.settings import Settings
from imagebuild_nb.testing import ScriptedBuilder, ScriptedRegistry
script = [StepStarted(number=1, total=2, instruction="FROM base"),
          StepStarted(number=2, total=2, instruction="RUN chatty"),
          *(LogLine(text=f"\\x1b[32mline {i}\\x1b[0m", step=2) for i in range(5000))]
registry = ScriptedRegistry()
builder = ScriptedBuilder(script, delay=0.0004, registry=registry)
engine = ImageBuildEngine(Settings(), builders={"local": builder}, checker=registry)
img = Image.from_base("localhost:5001/base:1", name="demo/ui").with_commands(["chatty"])
w = ImageBuildWidget(img, engine=engine)
w
"""


def test_scripted_check_build_check_with_other_cells_running(page: Any, lab: Lab) -> None:
    open_and_run(page, lab, [SETUP, "import time; time.sleep(1); print('side', 6 * 7)"], run=1)
    widget = page.locator(".imagebuild-widget")
    widget.wait_for()
    badge = widget.locator(".imagebuild-badge")
    assert badge.get_attribute("data-status") == "not-checked"
    assert "not checked yet" in badge.inner_text()

    button(widget, "Check").click()
    widget.locator(".imagebuild-badge[data-status='missing']").wait_for()

    # The user looks away (another tab) while it builds: the tab's title tells them it ended.
    title = page.title()
    page.evaluate("Object.defineProperty(document, 'hidden', {value: true, configurable: true})")
    button(widget, "Build").click()
    widget.locator(".imagebuild-badge[data-status='building']").wait_for()
    page.wait_for_function(
        "() => (document.querySelector('.imagebuild-log pre')?.textContent ?? '')"
        ".includes('line 1')")
    # Separate widget updates: wait for the button to follow the badge.
    button(widget, "Cancel").and_(widget.locator("button:enabled")).wait_for(timeout=10_000)
    # The kernel runs another cell (which blocks for a second) while the build streams.
    run_cell(page, 1)
    page.locator(".jp-OutputArea-output", has_text="side 42").wait_for()
    widget.locator(".imagebuild-badge[data-status='built']").wait_for(timeout=60_000)
    page.wait_for_function("() => document.title.startsWith('✓ Built in')")
    page.evaluate("Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
                  "document.dispatchEvent(new Event('visibilitychange'))")
    assert page.title() == title
    log_text = widget.locator(".imagebuild-log pre").inner_text()
    assert "line 4999" in log_text and "\x1b" not in log_text
    assert "5002 log lines" in widget.locator(".imagebuild-loghead").inner_text()
    # The log box overflows and shows its newest line (auto-scroll without JavaScript).
    assert widget.locator(".imagebuild-log").evaluate(
        "e => e.scrollHeight > e.clientHeight + 50 && Math.abs("
        "e.querySelector('pre').getBoundingClientRect().bottom"
        " - e.getBoundingClientRect().bottom) < 4")
    screenshot(widget, "widget-scripted-built.png")
    button(widget, "Cancel").and_(widget.locator("button:disabled")).wait_for(timeout=10_000)

    button(widget, "Full log").click()
    page.wait_for_function(
        "() => (document.querySelector('.imagebuild-pagehead')?.textContent ?? '')"
        ".includes('of 5002')")
    assert "line 4999" in widget.locator(".imagebuild-page").inner_text()
    # The download link holds the whole log as a .log file.
    link = widget.locator(".imagebuild-download a[download]")
    assert link.get_attribute("download").endswith(".log")
    downloaded = link.evaluate("a => fetch(a.href).then(r => r.text())")
    assert downloaded.startswith("── [1/2] FROM base\n") and downloaded.endswith("line 4999\n")
    assert downloaded.count("\n") == 5002
    screenshot(widget, "widget-scripted-full-log.png")

    button(widget, "Check").click()
    widget.locator(".imagebuild-badge[data-status='exists']").wait_for()
    assert "sha256:" in badge.inner_text()


def test_remote_builder_is_disabled_with_its_reason_shown(page: Any, lab: Lab) -> None:
    open_and_run(page, lab, [SETUP])
    widget = page.locator(".imagebuild-widget")
    widget.wait_for()
    remote = button(widget, "remote")
    assert remote.count() == 1 and remote.is_disabled()
    assert "IMAGEBUILD_NB_REMOTE_URL" in remote.get_attribute("title")
    assert widget.get_by_text("remote: no build service configured").is_visible()
    assert widget.locator(".widget-toggle-buttons button", has_text="remote").count() == 0
    screenshot(widget.locator(".widget-hbox").first, "widget-remote-disabled.png")
