"""HTML renderers: the live step view (magic, widget, service page) and the result card.

Pure functions of a :class:`~imagebuild_nb.progress.model.View` (and of an ``ImageBuild`` for the
card). Inline styles only, built from JupyterLab's theme variables (:mod:`.states`), so the same
markup reads in the light and dark themes, in the widget (no sanitizer) and in trusted outputs.
Rows carry ``data-label``, ``data-state`` and ``data-duration`` so tests read what users read.

>>> from imagebuild_nb.progress.view import StepView, View
>>> view = View("built", "Built in 1.0 s", 1.0, 1, 1,
...             (StepView("1/1", "RUN make", "done", 0.5, 0, (), False, 1),))
>>> 'data-label="1/1" data-state="done" data-duration="0.5s"' in steps_html(view)
True
"""

from __future__ import annotations

import html
import shlex
from typing import TYPE_CHECKING

from imagebuild_nb.progress import states as states  # re-exported: views.states is the palette
from imagebuild_nb.progress.model import Progress
from imagebuild_nb.progress.text import right_column, sections
from imagebuild_nb.progress.view import StepView, View

if TYPE_CHECKING:
    from imagebuild_nb.build import ImageBuild

MONO = ("font-family: var(--jp-code-font-family, monospace); "
        "font-size: var(--jp-code-font-size, 13px);")
_TEXT = "color: var(--jp-content-font-color1, rgba(0, 0, 0, 0.87));"
_BORDER = "var(--jp-border-color2, #e0e0e0)"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def state_span(state: str, text: str | None = None, *, css_class: str = "imagebuild-state") -> str:
    """A state's words in its colour (``data-state`` for tests and the contrast check)."""
    return (f'<span class="{css_class}" data-state="{_esc(state)}" style="color: '
            f'{states.colour(state)}; font-weight: 600">'
            f"{_esc(text if text is not None else states.label(state))}</span>")


def badge(state: str, text: str | None = None) -> str:
    """A bordered badge: the state colour on the page's own background (no filled colour)."""
    return (f'<span class="imagebuild-badge" data-state="{_esc(state)}" data-status="'
            f'{_esc(state)}" style="color: {states.colour(state)}; border: 1px solid '
            f'{states.colour(state)}; border-radius: 4px; padding: 0 6px; font-weight: 600; '
            f'white-space: nowrap">{_esc(text if text is not None else states.label(state))}'
            "</span>")


def step_row(step: StepView, *, tail: int = 5) -> str:
    name = step.label if step.number is None else f"[{step.label}]"
    instruction = "" if step.number is None and step.instruction == step.label else \
        step.instruction
    mark = states.MARKS.get(step.state, "")
    right = right_column(step)
    summary = (
        f'<span style="color: {states.colour(step.state)}; display: inline-block; width: 1.2em">'
        f"{_esc(mark)}</span>"
        f'<span class="imagebuild-label" style="{MONO} {_TEXT}">{_esc(name)}</span> '
        f'<code class="imagebuild-instruction" style="{MONO} {_TEXT} background: none; '
        f'white-space: pre-wrap; word-break: break-all">{_esc(instruction)}</code>'
        f'<span style="flex: 1"></span>'
        + state_span(step.state, right, css_class="imagebuild-duration"))
    attrs = (f'class="imagebuild-step" data-label="{_esc(step.label)}" data-state='
             f'"{_esc(step.state)}" data-duration="{_esc(states.seconds(step.duration))}"')
    if step.platform:
        attrs += f' data-platform="{_esc(step.platform)}"'
    line = f'<div style="display: flex; gap: 0.4em; align-items: baseline">{summary}</div>'
    if not step.tail:
        return f'<div {attrs} style="padding: 1px 0">{line}</div>'
    shown = step.tail[-tail:] if step.state == "running" else step.tail
    more = step.lines - len(shown)
    note = (f'<div style="color: {states.muted()}; {MONO}">… {more} earlier lines in the full '
            "log</div>") if more > 0 else ""
    body = (f'<div style="margin: 2px 0 4px 1.6em; padding: 2px 6px; border-left: 2px solid '
            f'{_BORDER}">{note}<pre class="imagebuild-tail" style="margin: 0; {MONO} {_TEXT} '
            f'white-space: pre-wrap; word-break: break-all">{_esc(chr(10).join(shown))}</pre>'
            "</div>")
    opened = " open" if step.open else ""
    return (f'<details {attrs}{opened} style="padding: 1px 0"><summary style="list-style: none; '
            f'cursor: pointer">{line}</summary>{body}</details>')


def steps_html(view: View, *, tail: int = 5) -> str:
    """The rows; in a multi-platform build, a section per platform headed by its line."""
    parts = []
    for platform, steps in sections(view):
        rows = "".join(step_row(step, tail=tail) for step in steps)
        if platform is None:
            parts.append(rows)
            continue
        head = (f'<code style="{MONO} {_TEXT}">{_esc(platform.platform)}</code> '
                + state_span(platform.status, platform.summary,
                             css_class="imagebuild-platform-summary"))
        parts.append(f'<div class="imagebuild-platform" data-platform="{_esc(platform.platform)}"'
                     f' data-state="{_esc(platform.status)}" style="margin: 2px 0">'
                     f'<div>{head}</div><div style="margin-left: 0.8em">{rows}</div></div>')
    return "".join(parts)


def header_state(view: View) -> str:
    return {"waiting": "waiting", "building": "building"}.get(view.status, view.status)


def progress_html(view: View, *, tail: int = 5, title: str = "") -> str:
    """The live view: header, a row per step with its folded log, the error if it failed."""
    head = state_span(header_state(view), view.header, css_class="imagebuild-header")
    if title:
        head = f'<code style="{MONO} {_TEXT}">{_esc(title)}</code> ' + head
    failure = ""
    if view.failure is not None and view.failure.message:
        code = view.failure.exit_code
        failure = (f'<div class="imagebuild-error" style="{MONO} color: '
                   f'{states.colour("failed")}; white-space: pre-wrap">'
                   + (f"(exit code {code}) " if code is not None else "")
                   + f"{_esc(view.failure.message)}</div>")
    clipped = ""
    if view.clipped:
        clipped = (f'<div style="color: {states.colour("unknown")}">the builder clipped part of '
                   "the output: the log is incomplete</div>")
    return (f'<div class="imagebuild-view" data-status="{_esc(view.status)}" style="'
            f'font-family: var(--jp-ui-font-family, sans-serif); {_TEXT} line-height: 1.5; '
            'max-width: 60em">'
            f'<div style="margin-bottom: 2px">{head}</div>{steps_html(view, tail=tail)}'
            f"{failure}{clipped}</div>")


# -- the result card --------------------------------------------------------------------------

def copy_button(value: str, what: str) -> str:
    return (f'<button class="imagebuild-copy" title="copy the {_esc(what)}" data-copy="'
            f'{_esc(value)}" onclick="navigator.clipboard.writeText(this.dataset.copy);'
            "this.textContent='copied'\" style=\"font-size: 11px; padding: 0 6px; margin-left: "
            f'4px; cursor: pointer; color: var(--jp-ui-font-color1, #000); background: '
            f'var(--jp-layout-color2, #eee); border: 1px solid {_BORDER}; border-radius: 3px">'
            "copy</button>")


def run_command(uri: str) -> str:
    return f"docker run --rm -it {shlex.quote(uri)}"


def where_text(build: ImageBuild) -> str:
    """Where the image is: pushed to a registry, or kept in the local engine."""
    registry = build.uri.split("/", 1)[0] if "/" in build.uri else ""
    has_registry = bool(registry) and ("." in registry or ":" in registry
                                       or registry == "localhost")
    if build.status == "exists":
        return f"found in {registry}" if has_registry else "found in the local engine"
    if build.status != "built":
        return ""
    if has_registry:
        return f"pushed to {registry}"
    return "kept in the local engine (no registry set)"


def card_rows(build: ImageBuild, progress: View | None) -> list[tuple[str, str]]:
    """(name, HTML value) rows of the card, in reading order."""
    rows = [("image", f'<code style="{MONO}">{_esc(build.uri)}</code>')]
    where = where_text(build)
    if where:
        rows.append(("where", _esc(where)))
    size = getattr(build, "size", None)
    if size:
        rows.append(("size", _esc(states.size(size))))
    if build.digest:
        rows.append(("digest", f'<code style="{MONO}" title="{_esc(build.digest)}">'
                               f"{_esc(build.digest)}</code>{copy_button(build.digest, 'digest')}"))
    if build.status in ("built", "failed", "cancelled") and build.duration is not None:
        took = states.spaced(progress.elapsed if progress and progress.elapsed else build.duration)
        rows.append(("time", _esc(f"{took} with {build.builder}/{build.driver}".rstrip("/"))))
    reason = _reason(build)
    if reason:
        rows.append(("why", _esc(reason)))
    if build.remote_run is not None:
        url = _esc(build.remote_run.url)
        rows.append(("run", f'<a href="{url}" target="_blank" rel="noopener">{url}</a>'))
    if build.status in ("built", "exists"):
        command = run_command(build.uri)
        rows.append(("try it", f'<code style="{MONO}">{_esc(command)}</code>'
                               f"{copy_button(command, 'command')}"))
    return rows


def _reason(build: ImageBuild) -> str:
    if build.status == "exists":
        return "already built, nothing to do (force=True rebuilds it)"
    if build.reason == "missing":
        return "it did not exist yet"
    return build.reason


def card_html(build: ImageBuild, *, log_hint: str = "") -> str:
    """The result card: status, where the image is, size, digest, time, why, how to run it."""
    view = Progress().feed_all(build.events).view() if build.events else None
    state = {"exists": "exists", "dry-run": "dry-run"}.get(build.status, build.status)
    title = {"built": "built", "exists": "exists", "failed": "build failed",
             "cancelled": "cancelled", "running": "building", "dry-run": "dry run"}.get(
        build.status, build.status)
    table = "".join(
        f'<tr><th style="text-align: right; padding: 0 8px 0 0; font-weight: normal; color: '
        f'{states.muted()}; vertical-align: top">{_esc(name)}</th><td style="text-align: left; '
        f'padding: 0">{value}</td></tr>' for name, value in card_rows(build, view))
    parts = [f'<div style="margin-bottom: 4px">{badge(state, title)}</div>',
             f'<table style="border-collapse: collapse; {_TEXT}">{table}</table>']
    if build.status == "failed" and view is not None and view.failure is not None:
        failure = view.failure
        where = f"step {failure.step}" if failure.step and failure.step[0].isdigit() else \
            (failure.step or "")
        if failure.platform:
            where = f"{failure.platform} {where}".strip()
        code = f" (exit code {failure.exit_code})" if failure.exit_code is not None else ""
        parts.append(f'<div class="imagebuild-error" style="color: {states.colour("failed")}; '
                     f'margin-top: 4px">failed{(" at " + _esc(where)) if where else ""}{code}: '
                     f'<span style="{MONO}">{_esc(failure.message.splitlines()[0])}</span></div>')
        if failure.lines:
            parts.append(f'<details><summary style="cursor: pointer; color: {states.muted()}">'
                         f"last {len(failure.lines)} log lines</summary><pre style=\"{MONO} "
                         f'{_TEXT} margin: 0; white-space: pre-wrap">'
                         f"{_esc(chr(10).join(failure.lines))}</pre></details>")
    if log_hint:
        parts.append(f'<div style="color: {states.muted()}">{_esc(log_hint)}</div>')
    if build.dry_run is not None:
        dry = build.dry_run
        parts.append(f'<div style="{_TEXT}">would run: <code style="{MONO}">'
                     f"{_esc(dry.command)}</code></div>"
                     f'<pre style="{MONO} {_TEXT} margin: 2px 0; padding: 4px; background: '
                     f'var(--jp-cell-editor-background, #f5f5f5)">{_esc(dry.dockerfile)}</pre>'
                     f'<details><summary style="cursor: pointer">{len(dry.context_files)} '
                     f'context files</summary><pre style="{MONO} {_TEXT}">'
                     f"{_esc(chr(10).join(dry.context_files))}</pre></details>")
    return (f'<div class="imagebuild-card" data-status="{_esc(build.status)}" style="font-family: '
            f'var(--jp-ui-font-family, sans-serif); {_TEXT} line-height: 1.5; padding: 4px 0">'
            + "".join(parts) + "</div>")
