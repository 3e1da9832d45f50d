"""The Server-Sent Events wire format shared by the service (writer) and the remote client (reader).

Each build event is one SSE message: ``id: <seq>`` and ``data: <event JSON>``. Lines starting
with ``:`` are comments (keepalives), and ``retry:`` sets the browser's reconnect delay.

>>> text = format_event(1, '{"kind": "log", "text": "hi"}') + KEEPALIVE
>>> [event.text for event in parse_sse(iter(text.split("\\n")))]
['hi']
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from imagebuild_nb.events import BuildEvent

KEEPALIVE = ": keepalive\n\n"
RETRY = "retry: 2000\n\n"


def format_event(seq: int, data: str) -> str:
    """One SSE message; ``data`` is single-line JSON (json.dumps never emits raw newlines)."""
    return f"id: {seq}\ndata: {data}\n\n"


def parse_sse(lines: Iterator[str]) -> Iterator[BuildEvent]:
    """Build events from SSE lines; the ``id`` becomes the event's ``seq``."""
    data: list[str] = []
    event_id: str | None = None
    for line in lines:
        if not line:
            if data:
                values = json.loads("\n".join(data))
                if event_id is not None and event_id.isdigit():
                    values["seq"] = int(event_id)
                yield BuildEvent.from_dict(values)
            data, event_id = [], None
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "id":
                event_id = value
