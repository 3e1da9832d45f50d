"""ExistenceChecker against an in-process registry app: the faults a real registry cannot be
made to produce (429, 500, no digest header, hangs), platforms, spec hashes, the cache, and
the sync API inside a running event loop (as in a Jupyter kernel)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from imagebuild_nb.checkers import ExistenceChecker, ExistenceResult
from imagebuild_nb.errors import SpecError
from imagebuild_nb.labels import SPEC_HASH_LABEL
from imagebuild_nb.registry import AnonymousKeychain, Credential, StaticKeychain
from imagebuild_nb.settings import Settings
from tests.support.fake_registry import FakeRegistry

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def make_checker(registry: FakeRegistry, *others, keychain=None, **settings) -> ExistenceChecker:
    options = {"registry_timeout": 2.0, "existence_cache_ttl": 30.0, **settings}
    return ExistenceChecker(Settings(**options), keychain=keychain or AnonymousKeychain(),
                            transport=registry.transport(*others))


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


def test_exists_and_missing(registry: FakeRegistry):
    digest = registry.put_image("team/app", "1")
    with make_checker(registry) as checker:
        found = checker.check("registry.test/team/app:1")
        absent = checker.check("registry.test/team/app:2")
    assert found.exists and found.digest == digest and found.checker == "registry"
    assert absent.missing and absent.digest is None and absent.reason is None
    assert [r.method for r in registry.requests] == ["HEAD", "HEAD"]


@pytest.mark.parametrize("status, kind", [(429, "rate limited"), (500, "registry error"),
                                          (503, "registry error"), (403, "denied")])
def test_error_statuses_are_unknown_never_exists(registry: FakeRegistry, status: int, kind: str):
    registry.put_image("team/app", "1")
    registry.faults["/manifests/"] = lambda request: httpx.Response(status)
    with make_checker(registry) as checker:
        result = checker.check("registry.test/team/app:1")
    assert result.unknown and result.reason is not None and result.reason.startswith(kind + ":")
    assert str(status) in result.reason


def test_missing_digest_header_gets_the_manifest_and_hashes_it(registry: FakeRegistry):
    registry.send_digest = False
    digest = registry.put_image("team/app", "1")
    with make_checker(registry) as checker:
        result = checker.check("registry.test/team/app:1")
    assert result.exists and result.digest == digest
    assert [r.method for r in registry.requests] == ["HEAD", "GET"]


def test_a_hung_registry_is_unknown_timed_out_within_the_bound(registry: FakeRegistry):
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200)

    registry.faults["/manifests/"] = hang
    with make_checker(registry, registry_timeout=0.3) as checker:
        started = time.monotonic()
        result = checker.check("registry.test/team/app:1")
        many = checker.check_many([f"registry.test/team/app:{i}" for i in range(5)])
        elapsed = time.monotonic() - started
    assert result.unknown and result.reason is not None and result.reason.startswith("timed out:")
    assert all(r.unknown for r in many)
    assert elapsed < 8  # 0.3 s bounds; not the 10 s default, nor the registry's 30 s


def test_connection_refused_is_unknown_unreachable(registry: FakeRegistry):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    registry.faults["/v2/"] = refuse
    with make_checker(registry) as checker:
        result = checker.check("registry.test/team/app:1")
    assert result.unknown and result.reason is not None and result.reason.startswith("unreachable:")


def test_index_reports_platforms_and_a_lacking_platform_is_missing(registry: FakeRegistry):
    amd = registry.put_image("team/app", "amd", architecture="amd64")
    arm = registry.put_image("team/app", "arm", architecture="arm64")
    index = registry.put_manifest("team/app", "1", OCI_INDEX, {
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd, "size": 1,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": 1,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd, "size": 1,
             "platform": {"os": "unknown", "architecture": "unknown"}},  # an attestation
        ]})
    with make_checker(registry) as checker:
        plain = checker.check("registry.test/team/app:1")
        arm64 = checker.check("registry.test/team/app:1", platform="linux/arm64")
        s390x = checker.check("registry.test/team/app:1", platform="linux/s390x")
        with pytest.raises(SpecError, match="platform"):
            checker.check("registry.test/team/app:1", platform="amd64")
    assert plain.exists and plain.digest == index
    assert plain.platforms == ("linux/amd64", "linux/arm64/v8")
    assert arm64.exists and arm64.digest == index
    assert s390x.missing and s390x.reason is not None and "no linux/s390x" in s390x.reason
    assert s390x.platforms == plain.platforms


def test_single_image_of_another_platform_is_missing_for_that_platform(registry: FakeRegistry):
    registry.put_image("team/app", "1", architecture="arm64")
    with make_checker(registry, platform="linux/amd64") as checker:  # the settings' default
        result = checker.check("registry.test/team/app:1")
    assert result.missing and result.platforms == ("linux/arm64",)


def test_spec_hash_label_tells_same_and_other_specs_apart(registry: FakeRegistry):
    registry.put_image("team/app", "pinned", labels={SPEC_HASH_LABEL: "abc"})
    with make_checker(registry) as checker:
        same = checker.check("registry.test/team/app:pinned", spec_hash="abc")
        other = checker.check("registry.test/team/app:pinned", spec_hash="def")
    assert same.exists and same.spec_hash_matches is True and not same.built_from_other_spec
    assert other.exists and other.spec_hash_matches is False and other.built_from_other_spec
    assert other.reason is not None and "different spec" in other.reason
    assert "different spec" in repr(other) and "other spec" in other._repr_html_()


def test_docker_hub_401_for_a_missing_repository_is_missing():
    hub = FakeRegistry(host="registry-1.docker.io", bearer_realm="https://auth.docker.io/token",
                       bearer_service="registry.docker.io")

    def auth_docker_io(request: httpx.Request) -> httpx.Response | None:
        if request.url.host != "auth.docker.io":
            return None
        return httpx.Response(200, json={"token": "anonymous-no-access"})  # never accepted

    with make_checker(hub, auth_docker_io) as checker:
        result = checker.check("docker.io/nobody/nothing-here:1")
    assert result.missing and result.reason is not None and "Docker Hub" in result.reason
    paths = [r.url.path for r in hub.requests if r.url.host == "registry-1.docker.io"]
    assert paths[0] == "/v2/nobody/nothing-here/manifests/1"


def test_library_prefix_on_docker_hub():
    hub = FakeRegistry(host="registry-1.docker.io")
    hub.put_image("library/busybox", "1")
    with make_checker(hub) as checker:
        assert checker.check("docker.io/busybox:1").exists


def test_cache_by_reference_with_ttl_and_invalidate(registry: FakeRegistry):
    registry.put_image("team/app", "1")
    with make_checker(registry) as checker:
        first = checker.check("registry.test/team/app:1")
        second = checker.check("registry.test/team/app:1")
        assert not first.cached and second.cached and second.digest == first.digest
        assert len(registry.requests) == 1
        registry.manifests.clear()  # deleted behind our back
        assert checker.check("registry.test/team/app:1").exists  # still cached
        assert checker.invalidate("registry.test/team/app:1") == 1
        assert checker.check("registry.test/team/app:1").missing
        assert checker.check("registry.test/team/app:1", use_cache=False).missing


def test_unknown_and_latest_are_not_cached(registry: FakeRegistry):
    registry.put_image("team/app", "latest")
    registry.faults["/manifests/1"] = lambda request: httpx.Response(500)
    with make_checker(registry) as checker:
        checker.check("registry.test/team/app:1")
        checker.check("registry.test/team/app:1")
        checker.check("registry.test/team/app")
        checker.check("registry.test/team/app:latest")
    assert len(registry.requests) == 4


def test_cache_expires(registry: FakeRegistry):
    registry.put_image("team/app", "1")
    with make_checker(registry, existence_cache_ttl=0.05) as checker:
        checker.check("registry.test/team/app:1")
        time.sleep(0.1)
        assert not checker.check("registry.test/team/app:1").cached


def test_sync_api_inside_a_running_loop_and_async_twins(registry: FakeRegistry):
    registry.put_image("team/app", "1")
    checker = make_checker(registry)

    async def kernel_cell() -> tuple[ExistenceResult, ExistenceResult, list[ExistenceResult]]:
        sync = checker.check("registry.test/team/app:1", use_cache=False)  # loop is running here
        awaited = await checker.acheck("registry.test/team/app:1", use_cache=False)
        many = await checker.acheck_many(["registry.test/team/app:1", "registry.test/team/app:2"])
        return sync, awaited, many

    try:
        sync, awaited, many = asyncio.run(kernel_cell())
    finally:
        checker.close()
    assert sync.exists and awaited.exists and [r.state for r in many] == ["exists", "missing"]


def test_check_many_keeps_order_and_bounds_concurrency(registry: FakeRegistry):
    in_flight = 0
    peak = 0

    async def slow(request: httpx.Request) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return None  # then answer normally

    for i in range(0, 40, 2):
        registry.put_image("team/app", str(i))
    registry.faults["/manifests/"] = slow
    with make_checker(registry, check_concurrency=4) as checker:
        results = checker.check_many([f"registry.test/team/app:{i}" for i in range(40)])
    assert [r.exists for r in results] == [i % 2 == 0 for i in range(40)]
    assert peak == 4


def test_basic_credentials_from_the_keychain(registry: FakeRegistry):
    registry.basic = ("alice", "secret")
    registry.put_image("team/app", "1")
    keychain = StaticKeychain({"registry.test": Credential("alice", "secret")})
    with make_checker(registry, keychain=keychain) as checker:
        assert checker.check("registry.test/team/app:1").exists
    with make_checker(registry) as anonymous:
        denied = anonymous.check("registry.test/team/app:1")
    assert denied.unknown and denied.reason is not None and denied.reason.startswith("denied:")


def test_first_contact_with_a_loopback_host_does_not_serialize_the_rest():
    """One request finds the loopback host's scheme; the others then run concurrently."""
    registry = FakeRegistry(host="localhost:5999")
    calls = in_flight = peak = 0
    all_in = asyncio.Event()

    async def gate(request: httpx.Request) -> None:
        # The first request (the scheme probe) passes; each later one waits until all 19 are in
        # flight: concurrent checks pass at once, queued ones each wait out the cap and leave
        # peak at 1 (no timing guess).
        nonlocal calls, in_flight, peak
        calls += 1
        if calls == 1:
            return None
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight >= 19:
            all_in.set()
        try:
            await asyncio.wait_for(all_in.wait(), timeout=1)
        except asyncio.TimeoutError:
            pass
        in_flight -= 1
        return None

    for i in range(20):
        registry.put_image("team/app", str(i))
    registry.faults["/manifests/"] = gate
    # All 20 start together and wait for the probe; then they must overlap, not queue.
    with make_checker(registry, check_concurrency=20) as checker:
        results = checker.check_many([f"localhost:5999/team/app:{i}" for i in range(20)])
    assert all(r.exists for r in results), [r.reason for r in results if not r.exists]
    assert peak == 19
