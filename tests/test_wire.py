"""The wire module is the one place client and service agree on: paths, statuses, records, SSE."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagebuild_nb import wire
from imagebuild_nb.events import BuildFailed, LogLine
from imagebuild_nb.service import store
from imagebuild_nb.service.store import BuildRecord
from imagebuild_nb.wire import BuildInfo, BuildStatus


def _routes() -> list[re.Pattern[str]]:
    from imagebuild_nb.service.app import ImageBuildServiceApp

    app = ImageBuildServiceApp()
    app.handlers = []
    app.initialize_handlers()
    return [re.compile(pattern + "$") for pattern, *_ in app.handlers]


def test_every_wire_path_is_a_route_the_service_serves():
    routes = _routes()
    digest = "sha256:" + "a" * 64
    every = [wire.paths.health, wire.paths.builds, wire.paths.existence, wire.paths.openapi,
             wire.paths.context(digest), wire.paths.build("b1"), wire.paths.events("b1"),
             wire.paths.cancel("b1"), wire.paths.log("b1"), wire.paths.page("b1")]
    for path in every:
        assert any(route.match(path) for route in routes), path


def test_the_store_speaks_the_wire_status_names():
    assert wire.ALL_STATUSES == store.ALL_STATUSES
    assert wire.TERMINAL_STATUSES == store.TERMINAL_STATUSES
    assert {status.value for status in BuildStatus if status.terminal} == store.TERMINAL_STATUSES
    assert str(BuildStatus.SUCCEEDED) == "succeeded"


def test_a_store_record_round_trips_as_build_info():
    record = BuildRecord.new(uri="localhost:5001/x:1", context="sha256:" + "0" * 64,
                             status="failed", step="RUN false", exit_code=1, log_tail=("a", "b"))
    info = BuildInfo.from_dict(json.loads(json.dumps(record.to_dict())))
    assert (info.id, info.status, info.step, info.exit_code, info.log_tail) == (
        record.id, BuildStatus.FAILED, "RUN false", 1, ("a", "b"))
    assert info.terminal
    again = info.to_dict()
    assert {key: again[key] for key in record.to_dict()} == json.loads(
        json.dumps(record.to_dict()))


def test_a_newer_service_field_is_kept_not_refused():
    info = BuildInfo.from_dict({"id": "b", "uri": "r/x:1", "status": "queued", "colour": "red"})
    assert info.extra == {"colour": "red"}
    assert info.to_dict()["colour"] == "red"


def test_an_unknown_status_is_refused():
    with pytest.raises(ValueError):
        BuildInfo.from_dict({"id": "b", "uri": "r/x:1", "status": "built"})


def test_links_name_the_served_paths():
    assert wire.links("http://h/base/", "b1") == {
        "self": "http://h/base/imagebuild/api/builds/b1",
        "events": "http://h/base/imagebuild/api/builds/b1/events",
        "page": "http://h/base/imagebuild/builds/b1",
    }


@given(st.lists(st.text(max_size=50), max_size=8))
def test_sse_round_trip_keeps_text_and_ids(texts: list[str]):
    frames = [wire.RETRY]
    for seq, text in enumerate(texts, start=1):
        data = json.dumps(LogLine(text=text).to_dict())
        frames.append(wire.format_event(seq, data))
        frames.append(wire.KEEPALIVE)
    frames.append(wire.format_event(len(texts) + 1, json.dumps(BuildFailed(message="x").to_dict())))
    events = list(wire.parse_sse(iter("".join(frames).split("\n"))))
    assert [event.seq for event in events] == list(range(1, len(texts) + 2))
    assert [getattr(event, "text", None) for event in events[:-1]] == texts


def test_last_event_id():
    assert wire.last_event_id(None, 4) == 4
    assert wire.last_event_id("9", 4) == 9
    assert wire.last_event_id("2", 4) == 4
    with pytest.raises(ValueError, match="non-negative integer"):
        wire.last_event_id("-1")


def test_the_wire_module_imports_neither_service_nor_database():
    import subprocess
    import sys

    code = ("import sys, imagebuild_nb.wire; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('jupyter_server', 'tornado', 'psycopg') or m.startswith('imagebuild_nb.service')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
