"""HTML for the widget's live panel: status badge, the shared step view, details, log tail.

Pure functions of a :class:`~imagebuild_nb.notebook.viewstate.ViewState`, so the flusher renders
one string and sends it in one message. Plain HTML and inline CSS (no scripts): the log box is a
``column-reverse`` flex container, which keeps it scrolled to the newest line without JavaScript.

>>> from imagebuild_nb.notebook.viewstate import ViewState
>>> "not checked yet" in badge(ViewState())
True
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from imagebuild_nb.notebook.viewstate import ViewState
from imagebuild_nb.progress import html as views
from imagebuild_nb.progress import states, text
from imagebuild_nb.progress.view import View

_MONO = "font-family: var(--jp-code-font-family, monospace); font-size: 12px;"


def muted() -> str:
    return states.muted()


def short_digest(digest: str | None) -> str:
    """``sha256:0123456789ab…`` -> ``sha256:0123456789ab`` (12 hex digits, like docker)."""
    if not digest:
        return ""
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}" if value else digest[:19]


def format_elapsed(seconds: float | None) -> str:
    """Minutes and seconds.

    >>> format_elapsed(75.4)
    '1:15'
    """
    if seconds is None:
        return ""
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def badge(state: ViewState) -> str:
    """The status badge: the shared colour and wording of every view."""
    label = states.label(state.status)
    if state.status in ("exists", "built") and state.digest:
        label = f"{label} · {short_digest(state.digest)}"
    if state.cancelling:
        label = "building · cancelling…"
    return views.badge(state.status, label)


def progress_html(state: ViewState, steps: View | None) -> str:
    """The build's steps (the shared view: header with n/m and time, rows, open tails)."""
    if steps is None or (not steps.steps and steps.status == "waiting"):
        return ""
    return views.progress_html(steps, tail=3)


def details(state: ViewState, *, steps_shown: bool = False) -> str:
    out: list[str] = []
    if state.detail and state.status not in ("failed",):
        out.append(f'<div class="imagebuild-detail">{html.escape(state.detail)}</div>')
    if state.problem:
        out.append(f'<pre class="imagebuild-problem" style="color: {states.colour("failed")}; '
                   f'white-space: pre-wrap; margin: 2px 0; {_MONO}">'
                   f'{html.escape(state.problem)}</pre>')
    if state.failure is not None:
        failure = state.failure
        where = f" at step {html.escape(failure.step)}" if failure.step else ""
        code = f" (exit code {failure.exit_code})" if failure.exit_code is not None else ""
        if not steps_shown:  # the step view says it already (message and exit code)
            out.append(f'<div class="imagebuild-failure" style="color: {states.colour("failed")}">'
                       f"<b>failed{where}{code}</b>: {html.escape(failure.message)}</div>")
        if failure.lines:
            out.append(_pre("\n".join(failure.lines[-20:]), "imagebuild-failure-tail"))
    if state.dockerfile is not None:
        summary = f" ({html.escape(state.dry_run_summary)})" if state.dry_run_summary else ""
        out.append(f"<div>Dockerfile (dry run, nothing built){summary}:</div>")
        out.append(_pre(state.dockerfile, "imagebuild-dockerfile"))
    if state.clipped:
        out.append(f'<div style="color: {states.colour("unknown")}">'
                   f"the builder clipped part of the output "
                   f"({state.clipped}×): this log is incomplete</div>")
    if state.run_url:
        url = html.escape(state.run_url, quote=True)
        out.append(f'<div>remote build: <a class="imagebuild-run" href="{url}" target="_blank" '
                   f'rel="noopener">{url}</a></div>')
    return "".join(out)


def log_box(lines: Sequence[str], *, lines_total: int, max_bytes: int = 32_000,
            note: str = "") -> str:
    """The tail, newest at the bottom, at most ``max_bytes`` of text (the comm budget)."""
    if not lines_total and not lines:
        return ""
    shown: list[str] = []
    size = 0
    for line in reversed(lines):
        size += len(line) + 1
        if size > max_bytes and shown:
            break
        shown.append(line)
    shown.reverse()
    hidden = lines_total - len(shown)
    head = f"{lines_total} log lines"
    if hidden > 0:
        head += f", last {len(shown)} shown"
    if note:
        head += f" · {note}"
    body = html.escape("\n".join(shown))
    return (f'<div class="imagebuild-loghead" style="color: {states.muted()}; {_MONO}">'
            f"{html.escape(head)}</div>"
            '<div class="imagebuild-log" style="max-height: 18em; overflow-y: auto; display: '
            "flex; flex-direction: column-reverse; "
            "border: 1px solid var(--jp-border-color2, #e0e0e0); "
            'border-radius: 3px; background: var(--jp-layout-color1, #fff)">'
            # flex: none, or the flex item shrinks to the box and column-reverse cannot anchor
            f'<pre style="flex: none; margin: 0; padding: 4px; white-space: pre-wrap; {_MONO}">'
            f"{body}</pre>"
            "</div>")


def panel(state: ViewState, *, uri: str, now: float, log_lines: Sequence[str],
          lines_total: int, log_note: str = "", steps: View | None = None) -> str:
    """The whole live panel as one HTML string."""
    head = (f'<div class="imagebuild-head"><code class="imagebuild-uri">{html.escape(uri)}</code>'
            f" {badge(state)}</div>")
    progress = progress_html(state, steps)
    if progress:
        progress = f'<div class="imagebuild-progress">{progress}</div>'
    return (f'<div class="imagebuild-panel">{head}{progress}'
            f'{details(state, steps_shown=bool(progress))}'
            f"{log_box(log_lines, lines_total=lines_total, note=log_note)}</div>")


def _pre(text: str, css_class: str) -> str:
    return (f'<pre class="{css_class}" style="margin: 2px 0; padding: 4px; background: '
            f'rgba(127,127,127,0.08); white-space: pre-wrap; {_MONO}">{html.escape(text)}</pre>')


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain_summary(state: ViewState, *, uri: str, now: float, log_lines: Sequence[str],
                  steps: View | None = None) -> str:
    """The widget as plain text, for frontends that do not render widgets."""
    lines = [f"ImageBuildWidget {uri}", f"status: {state.status}"]
    if state.digest:
        lines.append(f"digest: {state.digest}")
    if steps is not None and steps.steps:
        lines.extend(text.frame(steps, tail=0))
    if state.failure is not None:
        lines.append(f"failed: {state.failure.message}")
        lines.extend(f"  {line}" for line in state.failure.lines[-10:])
    if state.dockerfile is not None:
        lines.append("Dockerfile (dry run):")
        lines.extend(f"  {line}" for line in state.dockerfile.splitlines())
    if state.problem:
        lines.append(f"error: {state.problem}")
    if state.run_url:
        lines.append(f"remote build: {state.run_url}")
    lines.extend(f"| {line}" for line in log_lines[-10:])
    return "\n".join(lines)
