"""A small HTTP proxy on loopback, as a corporate one would be: ``CONNECT host:port`` tunnels
(HTTPS) and absolute-form requests (``GET http://host:port/path``, plain HTTP). It records every
request's target, so tests can count what went through it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class ForwardProxy:
    port: int
    connects: list[str] = field(default_factory=list)  # CONNECT targets
    forwards: list[str] = field(default_factory=list)  # absolute URLs forwarded

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def total(self) -> int:
        return len(self.connects) + len(self.forwards)


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _serve(client: socket.socket, proxy: ForwardProxy, lock: threading.Lock) -> None:
    with client:
        head, rest = _read_head(client)
        if not head:
            return
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        if method == "CONNECT":
            with lock:
                proxy.connects.append(target)
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            with lock:
                proxy.forwards.append(target)
            parts = urlsplit(target)
            upstream = socket.create_connection((parts.hostname, parts.port or 80), timeout=10)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            headers = [h for h in header_lines
                       if not h.lower().startswith(("connection:", "proxy-connection:"))]
            # One request per connection: the upstream closes after answering, and so do we.
            upstream.sendall("\r\n".join([f"{method} {path} {version}", *headers,
                                          "Connection: close", "", ""]).encode("latin-1") + rest)
        with upstream:
            back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            back.start()
            _pipe(client, upstream)
            back.join(timeout=30)


@contextmanager
def forward_proxy() -> Iterator[ForwardProxy]:
    listener = socket.create_server(("127.0.0.1", 0))
    proxy = ForwardProxy(listener.getsockname()[1])
    lock = threading.Lock()
    stopping = threading.Event()

    listener.settimeout(0.1)  # so that the accept loop sees `stopping`

    def accept() -> None:
        while not stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            threading.Thread(target=_serve, args=(client, proxy, lock), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        stopping.set()
        thread.join(timeout=10)
        listener.close()
