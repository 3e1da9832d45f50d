"""The auth handshake against an in-process registry app (httpx.MockTransport): Basic and
Bearer challenges, token caching per scope, identity tokens, and where credentials may go."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import pytest

from imagebuild_nb.errors import RegistryAuthError
from imagebuild_nb.registry import Credential, RegistryClient, StaticKeychain
from imagebuild_nb.registry.auth import TOKEN_REFUSED
from imagebuild_nb.registry.manifests import MANIFEST_TYPES
from imagebuild_nb.spec.reference import ImageReference
from tests.support.fake_registry import FakeRegistry

T = TypeVar("T")
BASIC = "Basic " + base64.b64encode(b"alice:secret").decode()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def ref(text: str) -> ImageReference:
    return ImageReference.parse(text)


class TokenService:
    """An auth host (auth.test) that hands out tokens and records what it was asked."""

    def __init__(self, registry: FakeRegistry, *, refuse: bool = False) -> None:
        self.registry = registry
        self.refuse = refuse
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response | None:
        if request.url.host != "auth.test":
            return None
        self.requests.append(request)
        if self.refuse:
            return httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED", "message": "no"}]})
        token = f"token-{len(self.requests)}"
        self.registry.valid_tokens.add(token)
        return httpx.Response(200, json={"token": token, "expires_in": 300})


def client_for(registry: FakeRegistry, *others: Any, keychain: Any = None) -> RegistryClient:
    keychain = keychain or StaticKeychain({registry.host: Credential("alice", "secret")})
    return RegistryClient(keychain=keychain, transport=registry.transport(*others),
                          insecure_hosts=[])


def test_head_sends_all_four_manifest_types_as_separate_accept_headers():
    registry = FakeRegistry()
    registry.put_image("team/app", "1")

    async def main():
        async with client_for(registry) as client:
            return await client.head_manifest(ref("registry.test/team/app:1"))

    head = run(main())
    assert head is not None and head.digest and head.digest.startswith("sha256:")
    assert registry.requests[0].headers.get_list("accept") == list(MANIFEST_TYPES)
    assert registry.requests[0].url.scheme == "https"


def test_basic_challenge_is_answered_once_then_sent_up_front():
    registry = FakeRegistry(basic=("alice", "secret"))
    registry.put_image("team/app", "1")

    async def main():
        async with client_for(registry) as client:
            first = await client.head_manifest(ref("registry.test/team/app:1"))
            second = await client.head_manifest(ref("registry.test/team/app:2"))
            return first, second

    first, second = run(main())
    assert first is not None and second is None
    sent = [r.headers.get("Authorization") for r in registry.requests]
    assert sent == [None, BASIC, BASIC]  # the 401 trip happens once per registry


def test_wrong_basic_credentials_are_refused_without_looping():
    registry = FakeRegistry(basic=("alice", "right"))

    async def main():
        async with client_for(registry) as client:
            await client.head_manifest(ref("registry.test/team/app:1"))

    with pytest.raises(RegistryAuthError) as caught:
        run(main())
    assert caught.value.status_code == 401 and len(registry.requests) == 2


def test_bearer_token_comes_from_the_realm_with_scope_and_is_cached_per_scope():
    registry = FakeRegistry(bearer_realm="https://auth.test/token", bearer_service="reg")
    registry.put_image("team/app", "1")
    tokens = TokenService(registry)

    async def main():
        async with client_for(registry, tokens) as client:
            one = await client.head_manifest(ref("registry.test/team/app:1"))
            again = await client.head_manifest(ref("registry.test/team/app:1"))
            other = await client.head_manifest(ref("registry.test/team/other:1"))
            return one, again, other

    one, again, other = run(main())
    assert one is not None and again == one and other is None
    scopes = [r.url.params.get("scope") for r in tokens.requests]
    assert scopes == ["repository:team/app:pull", "repository:team/other:pull"]
    assert all(r.url.params.get("service") == "reg" for r in tokens.requests)
    # The realm is the host the registry named: it gets this registry's Basic credential.
    assert all(r.headers.get("Authorization") == BASIC for r in tokens.requests)
    # The registry itself never sees the password, only tokens.
    registry_auth = [r.headers.get("Authorization") for r in registry.requests
                     if r.url.host == "registry.test"]
    assert BASIC not in registry_auth
    assert registry_auth.count("Bearer token-1") == 2


def test_identity_token_uses_the_oauth2_refresh_grant():
    registry = FakeRegistry(bearer_realm="https://auth.test/oauth2/token", bearer_service="reg")
    registry.put_image("team/app", "1")
    tokens = TokenService(registry)
    keychain = StaticKeychain({"registry.test": Credential(identity_token="refresh-me")})

    async def main():
        async with client_for(registry, tokens, keychain=keychain) as client:
            return await client.head_manifest(ref("registry.test/team/app:1"))

    assert run(main()) is not None
    request = tokens.requests[0]
    assert request.method == "POST" and "Authorization" not in request.headers
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form["grant_type"] == "refresh_token" and form["refresh_token"] == "refresh-me"
    assert form["scope"] == "repository:team/app:pull" and form["service"] == "reg"


def test_refused_token_is_an_auth_error_not_a_missing_image():
    registry = FakeRegistry(bearer_realm="https://auth.test/token")
    tokens = TokenService(registry, refuse=True)

    async def main():
        async with client_for(registry, tokens) as client:
            await client.head_manifest(ref("registry.test/team/app:1"))

    with pytest.raises(RegistryAuthError) as caught:
        run(main())
    assert caught.value.code == TOKEN_REFUSED and caught.value.status_code == 401


def test_redirect_to_another_host_does_not_carry_credentials():
    registry = FakeRegistry(basic=("alice", "secret"))
    config = b'{"architecture":"amd64","os":"linux"}'
    storage_requests: list[httpx.Request] = []

    def redirect_blob(request: httpx.Request) -> httpx.Response | None:
        if request.headers.get("Authorization") != BASIC:
            return None  # let the registry challenge first
        return httpx.Response(307, headers={"Location": "https://storage.test/blob?sig=1"})

    def storage(request: httpx.Request) -> httpx.Response | None:
        if request.url.host != "storage.test":
            return None
        storage_requests.append(request)
        return httpx.Response(200, content=config)

    registry.faults["/blobs/"] = redirect_blob

    async def main():
        async with client_for(registry, storage) as client:
            return await client.get_blob_json(ref("registry.test/team/app:1"), "sha256:" + "a" * 64)

    assert run(main())["architecture"] == "amd64"
    assert len(storage_requests) == 1
    assert "Authorization" not in storage_requests[0].headers


def test_a_401_from_another_host_after_a_redirect_is_not_answered_with_our_credentials():
    registry = FakeRegistry()
    registry.faults["/manifests/"] = lambda request: httpx.Response(
        302, headers={"Location": "https://elsewhere.test/v2/team/app/manifests/1"})
    elsewhere: list[httpx.Request] = []

    def other(request: httpx.Request) -> httpx.Response | None:
        if request.url.host != "elsewhere.test":
            return None
        elsewhere.append(request)
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="gimme"'})

    async def main():
        async with client_for(registry, other) as client:
            await client.head_manifest(ref("registry.test/team/app:1"))

    with pytest.raises(RegistryAuthError):
        run(main())
    assert len(elsewhere) == 1 and "Authorization" not in elsewhere[0].headers


def test_missing_digest_header_is_computed_from_the_body():
    registry = FakeRegistry(send_digest=False)
    digest = registry.put_image("team/app", "1")

    async def main():
        async with client_for(registry) as client:
            head = await client.head_manifest(ref("registry.test/team/app:1"))
            manifest = await client.get_manifest(ref("registry.test/team/app:1"))
            return head, manifest

    head, manifest = run(main())
    assert head is not None and head.digest is None
    assert manifest is not None and manifest.digest == digest
