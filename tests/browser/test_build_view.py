"""The build view in a real browser: JupyterLab 4 and Notebook 7, light and dark themes.

One notebook per (app, theme) builds with the real engine through the magic: a multi-step
build with a cached step, a failing build (its step open, the others folded), a no-op rebuild
(one "exists" card), a build cancelled by interrupting the kernel. Every state colour on the
page is measured from the rendered page (computed colours over the effective background):
WCAG AA, at least 4.5:1. Screenshots go to test-artifacts/build-view-<app>-<theme>-*.png.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import Lab, button, open_and_run, run_cell, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.engine]

CONTRAST_JS = """
(elements) => {
  function parse(text) {
    let m = text.match(/^rgba?\\(([^)]+)\\)$/);
    if (m) {
      const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    }
    m = text.match(/^color\\(srgb ([^)]+)\\)$/);
    if (m) {
      const p = m[1].split(/[\\s\\/]+/).filter(Boolean).map(Number);
      return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
    }
    throw new Error("cannot read the colour " + text);
  }
  const over = (top, bottom) => [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3]))
    .concat([1]);
  function background(element) {
    const layers = [];
    for (let e = element; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let base = [255, 255, 255, 1];
    for (const layer of layers.reverse()) base = over(layer, base);
    return base;
  }
  const channel = v => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const luminance = c => 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
  return elements.map(element => {
    const bg = background(element);
    const fg = over(parse(getComputedStyle(element).color), bg);
    const [a, b] = [luminance(fg), luminance(bg)];
    return {state: element.dataset.state || element.className, text: element.textContent.trim()
      .slice(0, 50), ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)};
  });
}
"""
COLOURED = (".imagebuild-view [data-state], .imagebuild-card [data-state], .imagebuild-card th, "
            ".imagebuild-hint, .imagebuild-error, .imagebuild-nb-existence [data-state], "
            ".imagebuild-widget [data-state], .imagebuild-widget .imagebuild-failure, "
            ".imagebuild-widget .imagebuild-loghead, .imagebuild-widget .imagebuild-remote-note")


def notebook(base: str, tag: str) -> list[str]:
    name = f"test/build-view-{tag}"
    image = f"Image.from_base({base!r}, name={name!r})"
    return [
        "%load_ext imagebuild_nb\nfrom imagebuild_nb import Image\n"
        f"first = {image}.with_commands(['echo prepared {tag}'])\n"
        f"second = first.with_commands(['for i in $(seq 1 400); do echo line-$i; done; sleep 1'])\n"
        f"bad = first.with_commands(['echo about to fail; exit 3', 'echo never'])\n"
        f"slow = {image}.with_commands(['echo slow {tag}; sleep 120'])",
        "%imagebuild build first",
        "%imagebuild build second",  # the first RUN step comes from the cache
        "%imagebuild build bad",
        "%imagebuild build second",  # nothing to do: it exists
        "%imagebuild build slow",
        "%imagebuild exists bad",
        # The widget draws the same states: a scripted builder behind the real engine.
        "from imagebuild_nb import ImageBuildEngine, ImageBuildWidget\n"
        "from imagebuild_nb.events import BuildFailed, LogLine, StepStarted\n"
        "from imagebuild_nb.settings import Settings\n"
        "from imagebuild_nb.testing import ScriptedBuilder, ScriptedRegistry\n"
        "steps = [StepStarted(number=1, total=2, instruction='FROM base'),\n"
        "         StepStarted(number=2, total=2, instruction='RUN make'),\n"
        "         LogLine(text='make: *** Error 2', step=2),\n"
        "         BuildFailed(message='RUN make returned 2', exit_code=2)]\n"
        "registry = ScriptedRegistry()\n"
        "engine = ImageBuildEngine(Settings(), checker=registry,\n"
        "    builders={'local': ScriptedBuilder(steps, delay=0.2, registry=registry)})\n"
        "w = ImageBuildWidget(bad, engine=engine)\nw",
    ]


@pytest.fixture
def themed_lab(lab: Lab, theme: str) -> Iterator[Lab]:
    """The session's JupyterLab in ``theme``; back to light for the tests after this one."""
    lab.set_theme(theme)
    yield lab
    lab.set_theme("light")


def output(page: Any, index: int) -> Any:
    return page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea")


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_build_view_states_read_well_in_both_themes(page: Any, themed_lab: Lab, busybox_base: str,
                                                   app: str, theme: str) -> None:
    lab = themed_lab
    tag = uuid.uuid4().hex[:8]
    open_and_run(page, lab, notebook(busybox_base, tag), run=3, app=app)
    # The user looks away (another tab) while the failing build runs: the tab's title tells
    # them when it ends, until they come back.
    output(page, 2).locator(".imagebuild-view[data-status='built']").wait_for(timeout=120_000)
    page.evaluate("Object.defineProperty(document, 'hidden', {value: true, configurable: true})")
    run_cell(page, 3)
    run_cell(page, 4)
    page.wait_for_function("() => document.title.startsWith('✗ Failed at step 3/4 after')",
                           timeout=120_000)
    # The page sets its own title meanwhile (JupyterLab does as the notebook's state changes):
    # the mark stays over it, one mark only, and coming back shows the page's title.
    # One script, one task: JupyterLab cannot retitle the page between its steps (it does when
    # the notebook's state changes, and would then rightly be the title restored).
    marked, back = page.evaluate("""async () => {
        document.title = 'renamed - JupyterLab';
        await Promise.resolve();  // the title observer runs first (a microtask)
        const marked = document.title;
        Object.defineProperty(document, 'hidden', {value: false, configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
        return [marked, document.title];
    }""")
    assert marked.startswith("✗ Failed at step 3/4 after") and marked.count(" · ") == 1
    assert marked.endswith(" · renamed - JupyterLab")
    assert back == "renamed - JupyterLab"
    assert page.evaluate("document.body.dataset.jpThemeLight") == str(theme == "light").lower()
    views = page.locator(".imagebuild-view")
    # Wait for each build cell's final header (cells run in order).
    page.locator(".imagebuild-view[data-status='failed']").wait_for(timeout=120_000)
    page.locator(".imagebuild-card[data-status='exists']").wait_for(timeout=120_000)

    cached = output(page, 2).locator(".imagebuild-view")
    assert cached.get_attribute("data-status") == "built"
    assert output(page, 2).locator(".imagebuild-step[data-label='2/3'][data-state='cached']") \
        .count() == 1
    assert output(page, 2).locator(".imagebuild-step[data-label='3/3'][data-state='done']") \
        .count() == 1
    assert output(page, 2).locator("details[open]").count() == 0  # finished steps folded
    screenshot(output(page, 2), f"build-view-{app}-{theme}-cached.png")

    failed = output(page, 3)
    assert failed.locator(".imagebuild-step[data-state='failed'][open]").count() == 1
    assert failed.locator(".imagebuild-step[data-state='failed'] .imagebuild-tail") \
        .inner_text().strip().endswith("about to fail")
    assert failed.locator("details[open]").count() == 1
    assert failed.locator(".imagebuild-card[data-status='failed']").count() == 1
    screenshot(failed, f"build-view-{app}-{theme}-failed.png")

    noop = output(page, 4)
    assert noop.locator(".imagebuild-view").count() == 0  # no progress view, one card
    assert noop.inner_text().count("exists") == 1
    screenshot(noop, f"build-view-{app}-{theme}-noop.png")

    # The kernel interrupt cancels the running build (its RUN step has started).
    run_cell(page, 5)
    slow = output(page, 5)
    # Its RUN step (the user's 2/2) is running and has printed.
    slow.locator(".imagebuild-step[data-label='2/2'][data-state='running'] .imagebuild-tail",
                 has_text=f"slow {tag}").wait_for(timeout=120_000)
    page.keyboard.press("Escape")
    page.keyboard.press("i")
    page.keyboard.press("i")
    slow.locator(".imagebuild-view[data-status='cancelled']").wait_for(timeout=90_000)
    assert slow.locator(".imagebuild-step[data-label='2/2'][data-state='cancelled']").count() == 1
    screenshot(slow, f"build-view-{app}-{theme}-cancelled.png")

    run_cell(page, 6)  # an existence check: the same colours and words
    output(page, 6).locator(".imagebuild-nb-existence [data-state='missing']").wait_for()
    run_cell(page, 7)
    widget = page.locator(".imagebuild-widget")
    widget.locator(".imagebuild-badge[data-status='not-checked']").wait_for()
    assert button(widget, "remote").is_disabled()
    title = page.title()
    page.evaluate("Object.defineProperty(document, 'hidden', {value: true, configurable: true})")
    button(widget, "Build").click()
    widget.locator(".imagebuild-badge[data-status='failed']").wait_for(timeout=60_000)
    # The widget tells a user who looked away too, in both apps.
    page.wait_for_function("() => document.title.startsWith('✗ Failed at step')")
    page.evaluate("Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
                  "document.dispatchEvent(new Event('visibilitychange'))")
    assert page.title() == title
    screenshot(widget, f"build-view-{app}-{theme}-widget.png")
    measured = page.locator(COLOURED).evaluate_all(CONTRAST_JS)
    states = {m["state"] for m in measured}
    assert {"built", "failed", "cancelled", "cached", "done", "exists", "skipped",
            "missing", "imagebuild-loghead", "imagebuild-remote-note"} <= states, states
    weak = [m for m in measured if m["ratio"] < 4.5]
    assert not weak, weak
    assert views.count() >= 4
