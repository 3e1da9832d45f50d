"""Is an engine answering on a unix socket? A raw socket closed on every path: an HTTP client's
failed connect to a socket that is not listening yet can leave its socket for the garbage
collector, whose ResourceWarning then fails whatever test runs at that moment."""

from __future__ import annotations

import socket
from pathlib import Path


def engine_answers(path: Path, *, timeout: float = 5.0) -> bool:
    """True when ``GET /_ping`` on the Docker-API socket ``path`` answers ``OK``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: engine\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
    except OSError:
        return False
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n", 1)[0] and body == b"OK"
