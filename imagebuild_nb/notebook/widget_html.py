"""HTML for the widget's live panel: status badge, step progress, elapsed time, details, log tail.

Pure functions of a :class:`~imagebuild_nb.notebook.viewstate.ViewState`, so the flusher renders
one string and sends it in one message. Plain HTML and inline CSS (no scripts): the log box is a
``column-reverse`` flex container, which keeps it scrolled to the newest line without JavaScript.

>>> from imagebuild_nb.notebook.viewstate import ViewState
>>> "missing" in badge(ViewState(status="missing"))
True
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from imagebuild_nb.notebook.viewstate import ViewState

_COLOURS = {
    "unknown": "#6b7280", "checking": "#2563eb", "exists": "#15803d", "missing": "#c2410c",
    "building": "#2563eb", "built": "#15803d", "failed": "#b91c1c", "cancelled": "#6b7280",
    "dry-run": "#7c3aed",
}
_MONO = "font-family: var(--jp-code-font-family, monospace); font-size: 12px;"


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
    label = state.status
    if state.status in ("exists", "built") and state.digest:
        label = f"{state.status} · {short_digest(state.digest)}"
    if state.cancelling:
        label = "building · cancelling…"
    colour = _COLOURS.get(state.status, "#6b7280")
    return (f'<span class="imagebuild-badge" data-status="{state.status}" style="background:'
            f'{colour}; color: white; border-radius: 4px; padding: 1px 8px; {_MONO}">'
            f"{html.escape(label)}</span>")


def progress_line(state: ViewState, now: float) -> str:
    parts: list[str] = []
    if state.step is not None:
        total = f"/{state.total}" if state.total else ""
        bar = ""
        if state.total:
            bar = (f'<progress value="{state.step}" max="{state.total}" '
                   'style="width: 8em; vertical-align: middle"></progress> ')
        parts.append(f'{bar}<span class="imagebuild-step">step {state.step}{total}</span>'
                     f" {html.escape(_clip(state.instruction, 100))}")
    if state.push:
        parts.append(html.escape(state.push))
    elapsed = format_elapsed(state.elapsed(now))
    if elapsed:
        parts.append(f'<span class="imagebuild-elapsed">{elapsed}</span>')
    return " · ".join(parts)


def details(state: ViewState) -> str:
    out: list[str] = []
    if state.detail and state.status not in ("failed",):
        out.append(f'<div class="imagebuild-detail">{html.escape(state.detail)}</div>')
    if state.problem:
        out.append(f'<pre class="imagebuild-problem" style="color: #b91c1c; white-space: '
                   f'pre-wrap; margin: 2px 0; {_MONO}">{html.escape(state.problem)}</pre>')
    if state.failure is not None:
        failure = state.failure
        where = f" at step {html.escape(failure.step)}" if failure.step else ""
        code = f" (exit code {failure.exit_code})" if failure.exit_code is not None else ""
        out.append(f'<div class="imagebuild-failure" style="color: #b91c1c"><b>failed{where}'
                   f"{code}</b>: {html.escape(failure.message)}</div>")
        if failure.lines:
            out.append(_pre("\n".join(failure.lines[-20:]), "imagebuild-failure-tail"))
    if state.dockerfile is not None:
        summary = f" ({html.escape(state.dry_run_summary)})" if state.dry_run_summary else ""
        out.append(f"<div>Dockerfile (dry run, nothing built){summary}:</div>")
        out.append(_pre(state.dockerfile, "imagebuild-dockerfile"))
    if state.clipped:
        out.append('<div style="color: #c2410c">the builder clipped part of the output '
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
    return (f'<div class="imagebuild-loghead" style="color: #6b7280; {_MONO}">'
            f"{html.escape(head)}</div>"
            '<div class="imagebuild-log" style="max-height: 18em; overflow-y: auto; display: '
            "flex; flex-direction: column-reverse; border: 1px solid #d1d5db; "
            'border-radius: 3px; background: var(--jp-layout-color1, #fff)">'
            # flex: none, or the flex item shrinks to the box and column-reverse cannot anchor
            f'<pre style="flex: none; margin: 0; padding: 4px; white-space: pre-wrap; {_MONO}">'
            f"{body}</pre>"
            "</div>")


def panel(state: ViewState, *, uri: str, now: float, log_lines: Sequence[str],
          lines_total: int, log_note: str = "") -> str:
    """The whole live panel as one HTML string."""
    head = (f'<div class="imagebuild-head"><code class="imagebuild-uri">{html.escape(uri)}</code>'
            f" {badge(state)}</div>")
    progress = progress_line(state, now)
    if progress:
        progress = f'<div class="imagebuild-progress">{progress}</div>'
    return (f'<div class="imagebuild-panel">{head}{progress}{details(state)}'
            f"{log_box(log_lines, lines_total=lines_total, note=log_note)}</div>")


def _pre(text: str, css_class: str) -> str:
    return (f'<pre class="{css_class}" style="margin: 2px 0; padding: 4px; background: '
            f'rgba(127,127,127,0.08); white-space: pre-wrap; {_MONO}">{html.escape(text)}</pre>')


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain_summary(state: ViewState, *, uri: str, now: float, log_lines: Sequence[str]) -> str:
    """The widget as plain text, for frontends that do not render widgets."""
    lines = [f"ImageBuildWidget {uri}", f"status: {state.status}"]
    if state.digest:
        lines.append(f"digest: {state.digest}")
    if state.step is not None:
        lines.append(f"step {state.step}/{state.total or '?'}: {state.instruction}")
    elapsed = format_elapsed(state.elapsed(now))
    if elapsed:
        lines.append(f"elapsed: {elapsed}")
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
