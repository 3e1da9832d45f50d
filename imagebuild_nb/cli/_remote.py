"""``imagebuild status|logs|cancel BUILD_ID``: builds on the build service, by id.

Only remote builds have ids that outlive a process: a local build runs inside the
``imagebuild build`` process that started it, and ends with it.
"""

from __future__ import annotations

import time
from typing import Any

from imagebuild_nb.builders.hub_discovery import in_hub
from imagebuild_nb.builders.remote import RemoteBuildClient
from imagebuild_nb.cli._commands import settings_from
from imagebuild_nb.cli._output import ExitCode, Output
from imagebuild_nb.cli._progress import TerminalProgress
from imagebuild_nb.errors import BuilderUnavailableError, ServiceError
from imagebuild_nb.events import BuildEvent, is_terminal
from imagebuild_nb.wire import BuildStatus

LOCAL_IDS = ("local builds (--builder local) do not outlive the `imagebuild build` process "
             "that ran them, so only remote builds (--builder remote) can be looked up by id")
_GOOD = {BuildStatus.QUEUED, BuildStatus.RUNNING, BuildStatus.SUCCEEDED}
_SETTLE_WAIT = 5.0


def status(args: Any, out: Output) -> int:
    with _client(args) as client:
        record = _record(client, args.build_id)
    out.emit({"build": record}, _record_text(record, client.page_url(record)))
    return _code(record)


def logs(args: Any, out: Output) -> int:
    with _client(args) as client:
        record = _record(client, args.build_id)
        # The log goes to stdout as the result, unless stdout carries the JSON document.
        stream = out.stderr if out.json_mode else out.stdout
        tty = bool(getattr(stream, "isatty", lambda: False)())
        progress = TerminalProgress(stream, tty=tty and args.follow, show_failure=True,
                                     full_log=True)
        seen: list[BuildEvent] = []
        try:
            for event in _events(client, record, follow=args.follow):
                seen.append(event)
                progress.feed(event)
        except KeyboardInterrupt:  # stop following; the build itself goes on
            progress.close()
            out.emit({"events": [e.to_dict() for e in seen]})
            out.warn("imagebuild: stopped following; the build goes on")
            return ExitCode.INTERRUPTED
        progress.close()
        if args.follow:
            record = _settled(client, args.build_id)
    out.emit({"build": record, "events": [e.to_dict() for e in seen]})
    if not args.follow:
        return ExitCode.OK
    last = seen[-1] if seen else None
    if last is not None and is_terminal(last):  # the stream's end is the truth, not a stale record
        return ExitCode.OK if last.kind == "finished" else ExitCode.FAILED
    return _code(record)


def cancel(args: Any, out: Output) -> int:
    with _client(args) as client:
        _record(client, args.build_id)  # a clear "no such build" before anything else
        record = client.cancel(args.build_id)
    state = record.get("status", "?")
    out.emit({"build": record}, f"cancel requested for build {args.build_id} (now {state})")
    return ExitCode.OK


def _client(args: Any) -> RemoteBuildClient:
    settings = settings_from(args)
    if not settings.remote_url and not in_hub():  # inside JupyterHub: the Hub's service
        raise BuilderUnavailableError(
            f"no build service is configured, so build {args.build_id!r} cannot be looked up",
            hint=f"set IMAGEBUILD_NB_REMOTE_URL (and IMAGEBUILD_NB_REMOTE_TOKEN) or --remote-url; "
                 f"{LOCAL_IDS}")
    return RemoteBuildClient.from_settings(settings)


def _record(client: RemoteBuildClient, build_id: str) -> dict[str, Any]:
    try:
        return client.get(build_id)
    except ServiceError as error:
        if error.status_code != 404:
            raise
        raise ServiceError(f"the build service at {client.url} has no build {build_id!r}",
                           status_code=404, hint=LOCAL_IDS) from None


def _settled(client: RemoteBuildClient, build_id: str) -> dict[str, Any]:
    """The record once the service has stored the outcome its stream already announced."""
    deadline = time.monotonic() + _SETTLE_WAIT
    record = _record(client, build_id)
    while record.get("status") in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        record = _record(client, build_id)
    return record


def _events(client: RemoteBuildClient, record: dict[str, Any], *, follow: bool) -> Any:
    """The build's events; without ``follow`` only those it had when ``record`` was read."""
    known = int(record.get("events") or 0)
    if not follow and known == 0:
        return
    for event in client.events(record["id"]):
        yield event
        if is_terminal(event) or (not follow and event.seq >= known):
            return


def _record_text(record: dict[str, Any], page_url: str) -> str:
    exit_code = record.get("exit_code")
    rows = [("id", record.get("id")), ("uri", record.get("uri")),
            ("platform", record.get("platform")), ("status", record.get("status")),
            ("digest", record.get("digest")), ("error", record.get("error")),
            ("step", record.get("step")),
            ("exit code", None if exit_code is None else str(exit_code)),
            ("duration", _duration(record)),
            ("run", page_url)]
    text = "\n".join(f"{key:>9}: {value}" for key, value in rows if value)
    tail = record.get("log_tail") or []
    if tail:
        text += "\n last log lines:\n" + "\n".join(f"  {line}" for line in tail)
    return text


def _duration(record: dict[str, Any]) -> str | None:
    started = record.get("started")
    if not started:
        return None
    return f"{(record.get('finished') or time.time()) - started:.1f}s"


def _code(record: dict[str, Any]) -> ExitCode:
    return ExitCode.OK if record.get("status") in _GOOD else ExitCode.FAILED
