"""A tiny threaded HTTP/1.1 server whose answers a test scripts: faults a real registry cannot
make (endless bodies, lying headers) over a real socket, so the client's own transport runs.

>>> def answer(request: ScriptedRequest) -> None:
...     request.reply(200, {"Content-Type": "text/plain"}, b"hello")
>>> with scripted_server(answer) as server:  # doctest: +SKIP
...     httpx.get(server.url + "/x").text
'hello'
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class ScriptedRequest:
    method: str
    path: str
    headers: dict[str, str]
    handler: BaseHTTPRequestHandler = field(repr=False)
    sent: int = 0  # body bytes written so far

    def reply(self, status: int, headers: dict[str, str],
              body: bytes | Iterable[bytes] = b"") -> None:
        """Send ``body`` (bytes, or chunks sent with chunked encoding unless a length is set)."""
        handler = self.handler
        handler.send_response(status)
        chunked = not isinstance(body, bytes) and "Content-Length" not in headers
        if isinstance(body, bytes) and "Content-Length" not in headers:
            headers = {**headers, "Content-Length": str(len(body))}
        if chunked:
            headers = {**headers, "Transfer-Encoding": "chunked"}
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if self.method == "HEAD":
            return
        try:
            for chunk in [body] if isinstance(body, bytes) else body:
                if chunked:
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    handler.wfile.write(chunk)
                self.sent += len(chunk)
            if chunked:
                handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client hung up: exactly what some tests want


Script = Callable[[ScriptedRequest], None]


@dataclass
class ScriptedServer:
    host: str
    port: int
    requests: list[ScriptedRequest]

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"


@contextmanager
def scripted_server(script: Script, *, address: str = "127.0.0.1") -> Iterator[ScriptedServer]:
    """Serve ``script`` on a free port of ``address`` until the block ends."""
    seen: list[ScriptedRequest] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            request = ScriptedRequest(self.command, self.path, dict(self.headers.items()), self)
            seen.append(request)
            script(request)

        do_GET = do_HEAD = do_POST = do_PUT = _any

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((address, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ScriptedServer(address, server.server_address[1], seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
