"""A small token server for distribution's ``auth: token:`` mode, run inside the test suite.

It issues RS256 JWTs signed by a key whose self-signed certificate is the registry's
``rootcertbundle`` (the ``x5c`` header carries it; distribution verifies the chain against
the bundle, see registry/auth/token/token.go). Users with the right Basic credentials get the
actions they ask for; anonymous requests get a token with no access (like Docker Hub) or a
401, as configured. Every request is recorded for assertions (scope asked, who asked).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.support.tls import KeyPair, make_ca


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenRequest:
    method: str
    service: str | None
    scopes: list[str]
    user: str | None
    authorization: str | None
    form: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class TokenServer:
    signer: KeyPair
    issuer: str = "imagebuild-nb-test-issuer"
    service: str = "imagebuild-nb-test-registry"
    users: dict[str, str] = field(default_factory=dict)
    anonymous: str = "empty"  # "empty": token without access; "refuse": 401
    expires_in: int = 300
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # identity token -> user
    requests: list[TokenRequest] = field(default_factory=list)
    url: str = ""

    def registry_config(self, bundle: Path) -> str:
        """The ``auth:`` line for the registry config (append it with ``extra_config``)."""
        return (f"auth: {{token: {{realm: '{self.url}/token', service: {self.service}, "
                f"issuer: {self.issuer}, rootcertbundle: {bundle}}}}}")

    def issue(self, user: str | None, scopes: list[str]) -> str:
        access = []
        for scope in scopes if user else []:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.signer.cert_der()).decode()]}
        claims = {"iss": self.issuer, "sub": user or "", "aud": self.service,
                  "exp": now + self.expires_in, "nbf": now - 10, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self.signer.key.sign(signing_input.encode(), padding.PKCS1v15(),
                                         hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def answer(self, request: TokenRequest) -> tuple[int, dict[str, object]]:
        self.requests.append(request)
        user = None
        if request.form:
            refresh = (request.form.get("refresh_token") or [""])[0]
            user = self.refresh_tokens.get(refresh)
            if user is None:
                return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad refresh token"}]}
        elif request.authorization:
            decoded = base64.b64decode(request.authorization.removeprefix("Basic ")).decode()
            name, _, password = decoded.partition(":")
            if self.users.get(name) != password:
                return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
            user = name
        elif self.anonymous == "refuse":
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
        request.user = user
        token = self.issue(user, request.scopes)
        return 200, {"token": token, "access_token": token, "expires_in": self.expires_in,
                     "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, form: dict[str, list[str]]) -> None:
            query = parse_qs(urlsplit(self.path).query)
            merged = {**query, **form}
            scopes = [s for value in merged.get("scope", []) for s in value.split(" ") if s]
            request = TokenRequest(self.command, (merged.get("service") or [None])[0], scopes,
                                   None, self.headers.get("Authorization"), form)
            status, body = server.answer(request)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._reply({})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            self._reply(parse_qs(self.rfile.read(length).decode()))

        def log_message(self, format: str, *args: object) -> None:  # silence stderr
            pass

    return Handler


@contextmanager
def running_token_server(directory: Path, **options: object) -> Iterator[tuple[TokenServer, Path]]:
    """Start a token server; yields it and the path of its certificate bundle."""
    signer = make_ca("imagebuild-nb token signer")
    bundle, _ = signer.write(directory, "token-signer")
    server = TokenServer(signer, **options)  # type: ignore[arg-type]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, bundle
    finally:
        httpd.shutdown()
        httpd.server_close()
