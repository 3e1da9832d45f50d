"""An HTTP gate that holds builds in their RUN step until the test opens it.

A build's ``RUN`` line (:meth:`Gate.run_line`) polls ``http://127.0.0.1:PORT/KEY`` with busybox
wget until it answers 200. The gate records the order in which keys first arrive: the order
in which the builds actually started running (RUN steps use host networking on this machine,
so loopback is the test process's).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Gate:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._open: set[str] = set()
        self._all_open = False
        self.arrivals: list[str] = []  # keys in the order they first knocked
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                key = self.path.strip("/")
                with gate._lock:
                    if key not in gate.arrivals:
                        gate.arrivals.append(key)
                        gate._lock.notify_all()
                    passing = gate._all_open or key in gate._open
                self.send_response(200 if passing else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def run_line(self, key: str) -> str:
        """A shell command that waits until ``key`` (or the whole gate) is open."""
        return (f"until wget -q -O /dev/null http://127.0.0.1:{self.port}/{key}; "
                f"do sleep 0.2; done; echo gate {key} passed")

    def open(self, key: str | None = None) -> None:
        """Let ``key`` through, or every key (now and later) when none is given."""
        with self._lock:
            if key is None:
                self._all_open = True
            else:
                self._open.add(key)

    def wait_arrived(self, *keys: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not set(keys) <= set(self.arrivals):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"builds {keys} never reached the gate "
                                       f"(arrived: {self.arrivals})")
                self._lock.wait(remaining)

    def wait_count(self, count: int, *, timeout: float = 180) -> None:
        """Until ``count`` keys have arrived."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.arrivals) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"only {self.arrivals} reached the gate, not {count}")
                self._lock.wait(remaining)

    def close(self) -> None:
        self.open()
        self._server.shutdown()
        self._server.server_close()
