"""The Server-Sent Events codec now lives in :mod:`imagebuild_nb.wire`, shared by the service and
the remote client; these names stay for code that imported them from here."""

from __future__ import annotations

from imagebuild_nb.wire import KEEPALIVE, RETRY, format_event, parse_sse

__all__ = ["KEEPALIVE", "RETRY", "format_event", "parse_sse"]
