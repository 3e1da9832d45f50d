"""The registry auth handshake as an ``httpx.Auth`` flow.

1. Send the request (with a cached token or Basic header if this origin challenged before).
2. On 401 with ``WWW-Authenticate: Basic`` resend with the host's Basic credential.
3. On 401 with ``Bearer realm=..,service=..,scope=..`` get a token from the realm (GET with
   Basic credentials, or the OAuth2 refresh-token POST for identity tokens), cache it per
   (realm, service, scope, user) and resend with ``Authorization: Bearer``.

Credentials only ever go to the origin that challenged, or to the token realm that origin
named; a 401 coming back from another origin after a redirect is not answered.

>>> import httpx
>>> from imagebuild_nb.registry.credentials import AnonymousKeychain
>>> client = httpx.Client(auth=RegistryAuth(AnonymousKeychain()))
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from typing import Any

import httpx

from imagebuild_nb.errors import RegistryAuthError
from imagebuild_nb.registry.challenge import Challenge, parse_challenge
from imagebuild_nb.registry.credentials import Credential, Keychain
from imagebuild_nb.registry.tokens import TokenCache, TokenKey

log = logging.getLogger(__name__)

_REPOSITORY_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags)/")
CLIENT_ID = "imagebuild-nb"
# RegistryAuthError.code when the token service, not the registry, said no.
TOKEN_REFUSED = "TOKEN_REFUSED"


@dataclass(frozen=True)
class _Lookup:
    host: str


_Step = httpx.Request | _Lookup
_Flow = Generator[_Step, Any, None]


class RegistryAuth(httpx.Auth):
    """Answers registry challenges with credentials from a :class:`Keychain`.

    One instance is shared by all requests of a client: it remembers which origins asked for
    what, so later requests to the same registry authenticate up front (no extra 401 trip).
    """

    requires_response_body = True

    def __init__(
        self,
        keychain: Keychain,
        *,
        tokens: TokenCache | None = None,
        credential_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keychain = keychain
        self.tokens = tokens if tokens is not None else TokenCache(clock=clock)
        self._credential_ttl = credential_ttl
        self._clock = clock
        self._challenges: dict[str, Challenge] = {}
        self._credentials: dict[str, tuple[Credential | None, float]] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop remembered challenges, credentials and tokens (after ``docker login``, say)."""
        with self._lock:
            self._challenges.clear()
            self._credentials.clear()
        self.tokens.clear()

    # -- drivers: the same flow, with credential lookups done inline or in a worker thread ----

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self._flow(request)
        reply: Any = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration:
                return
            if isinstance(step, _Lookup):
                reply = self._credential(step.host)
            else:
                reply = yield step
                reply.read()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self._flow(request)
        reply: Any = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration:
                return
            if isinstance(step, _Lookup):
                cached = self._cached_credential(step.host)
                # Helpers are processes: keep them off the event loop.
                reply = (cached[0] if cached
                         else await asyncio.to_thread(self._credential, step.host))
            else:
                reply = yield step
                await reply.aread()

    # -- the flow ---------------------------------------------------------------------------

    def _flow(self, request: httpx.Request) -> _Flow:
        origin = _origin(request.url)
        host = request.url.netloc.decode("ascii")
        path_scope = _scope_for(request.url.path)
        known = self._challenges.get(origin)
        if known is not None:
            yield from self._authorize(request, known, host, path_scope)
        response: httpx.Response = yield request
        if response.status_code != 401:
            return
        if _origin(response.request.url) != origin:
            log.warning("not answering a 401 from %s: the request was redirected away from %s",
                        response.request.url.host, request.url.host)
            return
        challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
        if challenge is None:
            return
        answered = "Authorization" in request.headers
        if answered and challenge.scheme == "basic":
            return  # the Basic credential we sent was refused: report it, do not loop
        with self._lock:
            self._challenges[origin] = Challenge(
                challenge.scheme, {k: v for k, v in challenge.params.items() if k != "scope"}
            )
        scope = challenge.scope or path_scope
        # After a refused token, fetch a fresh one once: it may have expired server-side.
        if (yield from self._authorize(request, challenge, host, scope, fresh=answered)):
            yield request

    def _authorize(
        self,
        request: httpx.Request,
        challenge: Challenge,
        host: str,
        scope: str | None,
        *,
        fresh: bool = False,
    ) -> Generator[_Step, Any, bool]:
        credential: Credential | None = yield _Lookup(host)
        if challenge.scheme == "basic":
            if credential is None or not credential.has_basic:
                return False
            request.headers["Authorization"] = _basic(credential.username or "",
                                                      credential.password or "")
            return True
        token = yield from self._token(challenge, credential, scope, fresh=fresh)
        if token is None:
            return False
        request.headers["Authorization"] = f"Bearer {token}"
        return True

    def _token(
        self, challenge: Challenge, credential: Credential | None, scope: str | None, *,
        fresh: bool,
    ) -> Generator[_Step, Any, str | None]:
        realm = challenge.realm
        if not realm or not realm.startswith(("https://", "http://")):
            raise RegistryAuthError(
                f"the registry's Bearer challenge has no usable realm: {realm!r}")
        principal = (credential.username or "<token>") if credential else ""
        key = TokenKey(realm, challenge.service, scope, principal)
        cached = None if fresh else self.tokens.get(key)
        if cached is not None:
            return cached
        token_request = _token_request(realm, challenge.service, scope, credential)
        response: httpx.Response = yield token_request
        if response.status_code != 200:
            raise RegistryAuthError(
                f"the token service {realm} refused a token for {scope or 'the registry'} "
                f"(HTTP {response.status_code}{_detail(response)})",
                status_code=response.status_code,
                code=TOKEN_REFUSED,
                hint=("check the credentials for this registry (docker login, or DOCKER_CONFIG)"
                      if credential else "this registry needs credentials: run `docker login`"),
            )
        try:
            payload = response.json()
            token = payload.get("token") or payload.get("access_token")
            expires_in = float(payload.get("expires_in") or 0)
        except (ValueError, AttributeError, TypeError):
            token, expires_in = None, 0.0
        if not isinstance(token, str) or not token:
            raise RegistryAuthError(f"the token service {realm} answered without a token")
        self.tokens.put(key, token, expires_in=expires_in)
        return token

    # -- credentials --------------------------------------------------------------------------

    def _cached_credential(self, host: str) -> tuple[Credential | None] | None:
        with self._lock:
            entry = self._credentials.get(host)
        if entry is not None and self._clock() - entry[1] < self._credential_ttl:
            return (entry[0],)
        return None

    def _credential(self, host: str) -> Credential | None:
        cached = self._cached_credential(host)
        if cached is not None:
            return cached[0]
        credential = self.keychain.resolve(host)
        with self._lock:
            self._credentials[host] = (credential, self._clock())
        return credential


def _token_request(
    realm: str, service: str | None, scope: str | None, credential: Credential | None
) -> httpx.Request:
    if credential is not None and credential.identity_token:
        form = {"grant_type": "refresh_token", "refresh_token": credential.identity_token,
                "client_id": CLIENT_ID}
        if service:
            form["service"] = service
        if scope:
            form["scope"] = scope
        return httpx.Request("POST", realm, data=form, headers={"Accept-Encoding": "identity"})
    params = {k: v for k, v in (("service", service), ("scope", scope)) if v}
    headers = {"Accept-Encoding": "identity"}  # bodies are capped; compressed ones refused
    if credential is not None and credential.has_basic:
        headers["Authorization"] = _basic(credential.username or "", credential.password or "")
    return httpx.Request("GET", realm, params=params, headers=headers)


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _scope_for(path: str) -> str | None:
    match = _REPOSITORY_PATH.match(path)
    return f"repository:{match.group('name')}:pull" if match else None


def _detail(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        if not errors:
            return ""
        return ": " + "; ".join(str(e.get("message") or e.get("code")) for e in errors)
    except (ValueError, AttributeError, json.JSONDecodeError):
        return ""
