"""The human page of one build: the same step view as the notebook, live while it runs.

The page is rendered on the server from the stored events with the shared progress model and
HTML renderer (:mod:`imagebuild_nb.progress`), so it shows the same steps, numbers, states and
durations as the magic and the command, and works without JavaScript. While the build runs, a
small script listens to the SSE endpoint only as a "something changed" signal and re-fetches
the server-rendered view (``?view=fragment``) at most twice a second: no second copy of the
event-to-text logic in JavaScript. The full log is the ``/log`` endpoint, a click away.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Iterator
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from imagebuild_nb.events import BuildEvent
from imagebuild_nb.progress import html as views
from imagebuild_nb.progress import text
from imagebuild_nb.progress.model import Progress
from imagebuild_nb.service.access import Caller
from imagebuild_nb.service.backend import BuildBackend
from imagebuild_nb.wire import BuildInfo

AUTH_RESOURCE = "imagebuild"

# JupyterLab's theme values for the variables the shared renderer uses: the page looks like the
# notebook's view, light or dark as the reader's system prefers.
_THEME = """
:root { --jp-content-font-color0: #000; --jp-content-font-color1: rgba(0,0,0,.87);
  --jp-content-font-color2: rgba(0,0,0,.54); --jp-layout-color0: #fff; --jp-layout-color2: #eee;
  --jp-border-color2: #e0e0e0; --jp-brand-color1: #1976d2; --jp-success-color1: #388e3c;
  --jp-error-color1: #d32f2f; --jp-warn-color1: #f57c00; --jp-ui-font-color1: rgba(0,0,0,.87);
  --jp-cell-editor-background: #f5f5f5; }
@media (prefers-color-scheme: dark) { :root { --jp-content-font-color0: #fff;
  --jp-content-font-color1: #fff; --jp-content-font-color2: rgba(255,255,255,.7);
  --jp-layout-color0: #111; --jp-layout-color2: #424242; --jp-border-color2: #424242;
  --jp-brand-color1: #2196f3; --jp-success-color1: #4caf50; --jp-error-color1: #f44336;
  --jp-warn-color1: #ff9800; --jp-ui-font-color1: rgba(255,255,255,.87);
  --jp-cell-editor-background: #212121; } }
body { background: var(--jp-layout-color0); color: var(--jp-content-font-color1);
  font-family: sans-serif; margin: 1.5em; max-width: 70em; }
a { color: var(--jp-brand-color1); }
"""

_SCRIPT = """
const view = document.getElementById("view");
// Behind JupyterHub, a script's requests with the login cookie must carry the XSRF token.
const xsrf = %(xsrf)s;
const source = new EventSource(%(events)s + "?after=" + %(after)d
                               + "&_xsrf=" + encodeURIComponent(xsrf), {withCredentials: true});
let pending = false;
async function refresh() {
  pending = false;
  const response = await fetch(location.pathname + "?view=fragment",
                               {credentials: "same-origin", headers: {"X-XSRFToken": xsrf}});
  if (response.ok) { view.innerHTML = await response.text(); }
}
source.onmessage = (message) => {
  const kind = JSON.parse(message.data).kind;
  if (["finished", "failed", "cancelled"].includes(kind)) { source.close(); refresh(); return; }
  if (!pending) { pending = true; setTimeout(refresh, 500); }
};
"""


def parse(events: Iterable[str]) -> Iterator[BuildEvent]:
    for raw in events:
        yield BuildEvent.from_dict(json.loads(raw))


def log_lines(events: Iterable[str]) -> Iterator[str]:
    """The build's log, with a header per step numbered as the views number them."""
    return text.log_lines(parse(events))


def log_line(event: dict[str, Any]) -> str | None:
    """One event's line of the log, out of context (steps keep the builder's numbers)."""
    return next(iter(text.log_lines([BuildEvent.from_dict(event)])), None)


def fragment(record: BuildInfo, events: Iterable[str]) -> str:
    """The live part of the page: the status card rows and the step view (events are fed one
    at a time: a long log is never in memory whole)."""
    progress = Progress()
    for event in parse(events):
        progress.feed(event)
    view = progress.view(tail=8)
    rows = [("Image", f"<code>{html.escape(record.uri)}</code>"),
            ("Build id", f"<code>{html.escape(record.id)}</code>")]
    if record.platform:
        rows.append(("Platform", html.escape(record.platform.replace(",", ", "))))
    if record.owner:
        joined = f" (joined by {html.escape(', '.join(record.joined_by))})" \
            if record.joined_by else ""
        rows.append(("Owner", html.escape(record.owner) + joined))
    if record.digest:
        rows.append(("Digest", f"<code>{html.escape(record.digest)}</code>"
                               + views.copy_button(record.digest, "digest")))
    if record.error and view.failure is None:
        rows.append(("Error", html.escape(record.error)))
    table = "".join(f'<tr><th style="text-align: left; padding-right: 1em; font-weight: normal; '
                    f'color: {views.states.muted()}">{name}</th><td>{value}</td></tr>'
                    for name, value in rows)
    status = views.badge(_state(record.status), record.status)
    return (f'<div id="status" data-status="{html.escape(record.status)}">{status}</div>'
            f"<table>{table}</table>{views.progress_html(view, tail=8)}")


def render_page(record: BuildInfo, events: Iterable[str], events_url: str,
                log_url: str = "", xsrf: str = "") -> str:
    seen = 0

    def counted() -> Iterator[str]:
        nonlocal seen
        for raw in events:
            seen += 1
            yield raw

    view = fragment(record, counted())
    script = ""
    if not record.terminal:
        script = "<script>" + _SCRIPT % {
            "events": json.dumps(events_url),
            "after": seen,
            "xsrf": json.dumps(xsrf),
        } + "</script>"
    full_log = (f'<p><a href="{html.escape(log_url, quote=True)}">full log</a></p>'
                if log_url else "")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta name='color-scheme' content='light dark'>"
        f"<title>Build {html.escape(record.id)}: {html.escape(record.uri)}</title>"
        f"<style>{_THEME}</style></head><body>"
        f"<h1 style='font-size: 1.4em'>imagebuild: {html.escape(record.uri)}</h1>"
        f'<div id="view">{view}</div>{full_log}{script}</body></html>'
    )


def _state(status: str) -> str:
    return {"succeeded": "built", "running": "building", "queued": "waiting"}.get(status, status)


class BuildPageHandler(ExtensionHandlerMixin, JupyterHandler):
    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self, build_id: str) -> None:
        backend: BuildBackend = self.settings["imagebuild_backend"]  # local or a farm replica
        caller = Caller.of(self.current_user, self.settings["imagebuild_admin_scope"])
        record = await caller.find(backend, build_id)  # another user's: as if unknown
        if record is None:
            raise web.HTTPError(404, f"no build with id {build_id}")
        events = await backend.read_events(build_id)  # lazy: read as the view is fed
        self.set_header("Content-Type", "text/html; charset=utf-8")
        if self.get_argument("view", None) == "fragment":
            self.finish(fragment(record, events))
            return
        base = self.base_url.rstrip("/")
        api = f"{base}/imagebuild/api/builds/{build_id}"
        self.finish(render_page(record, events, f"{api}/events", f"{api}/log",
                                xsrf=self.xsrf_token.decode()))
