"""The human page of one build: status, target, digest and the log, live while it runs.

The log so far is rendered on the server (the page works without JavaScript); a small script
then follows the SSE endpoint from the last event shown, so nothing is missed or repeated.
"""

from __future__ import annotations

import html
import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from imagebuild_nb.service.manager import BuildManager, UnknownBuildError
from imagebuild_nb.service.store import BuildRecord

AUTH_RESOURCE = "imagebuild"

_SCRIPT = """
const log = document.getElementById("log"), status = document.getElementById("status");
const source = new EventSource(%(events)s + "?after=" + %(after)d, {withCredentials: true});
source.onmessage = (message) => {
  const event = JSON.parse(message.data);
  const line = describe(event);
  if (line !== null) { log.textContent += line + "\\n"; window.scrollTo(0, document.body.scrollHeight); }
  if (["finished", "failed", "cancelled"].includes(event.kind)) {
    status.textContent = event.kind === "finished" ? "succeeded" : event.kind;
    source.close();
  }
};
function describe(e) {
  if (e.kind === "log") return e.text;
  if (e.kind === "step") return "Step " + e.number + "/" + e.total + " : " + e.instruction;
  if (e.kind === "finished") return "[finished] " + e.uri + (e.digest ? " " + e.digest : "");
  if (e.kind === "failed" || e.kind === "cancelled") return "[" + e.kind + "] " + e.message;
  return null;
}
"""


def log_line(event: dict[str, Any]) -> str | None:
    """The page's one-line rendering of an event (None: not shown)."""
    kind = event.get("kind")
    if kind == "log":
        return str(event.get("text", ""))
    if kind == "step":
        return f"Step {event.get('number')}/{event.get('total')} : {event.get('instruction')}"
    if kind == "finished":
        return f"[finished] {event.get('uri')} {event.get('digest') or ''}".rstrip()
    if kind in ("failed", "cancelled"):
        return f"[{kind}] {event.get('message')}"
    return None


def render_page(record: BuildRecord, events: list[str], events_url: str) -> str:
    lines = [line for line in (log_line(json.loads(text)) for text in events) if line is not None]
    rows = [
        ("Status", f'<b id="status">{html.escape(record.status)}</b>'),
        ("Image", html.escape(record.uri)),
        ("Digest", html.escape(record.digest or "")),
        ("Build id", html.escape(record.id)),
        ("Error", html.escape(record.error or "")),
    ]
    table = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    script = ""
    if not record.terminal:
        script = "<script>" + _SCRIPT % {
            "events": json.dumps(events_url),
            "after": len(events),
        } + "</script>"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>Build {html.escape(record.id)}: {html.escape(record.uri)}</title>"
        "<style>body{font-family:sans-serif;margin:1.5em}th{text-align:left;padding-right:1em}"
        "pre{background:#111;color:#ddd;padding:1em;white-space:pre-wrap}</style></head><body>"
        f"<h1>imagebuild: {html.escape(record.uri)}</h1><table>{table}</table>"
        f'<pre id="log">{html.escape(chr(10).join(lines))}\n</pre>{script}</body></html>'
    )


class BuildPageHandler(ExtensionHandlerMixin, JupyterHandler):  # type: ignore[misc]
    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self, build_id: str) -> None:
        manager: BuildManager = self.settings["imagebuild_manager"]
        try:
            record = manager.get(build_id)
        except UnknownBuildError:
            raise web.HTTPError(404, f"no build with id {build_id}") from None
        events = list(manager.store.read_events(build_id))
        base = self.base_url.rstrip("/")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(render_page(record, events, f"{base}/imagebuild/api/builds/{build_id}/events"))
