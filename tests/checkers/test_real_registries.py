"""ExistenceChecker against real registries started by the project and by the tests:
plain HTTP, Basic auth, Bearer tokens (distribution's token auth + our token server), TLS
with a custom CA, an OCI index with two platforms, a registry that stops, deletion, a failing
credential helper."""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from imagebuild_nb.checkers import ExistenceChecker
from imagebuild_nb.labels import SPEC_HASH_LABEL
from imagebuild_nb.settings import Settings
from tests.support.addresses import non_loopback_ipv4
from tests.support.cred_helpers import install_helper
from tests.support.oci_upload import Uploader
from tests.support.registry_launcher import LaunchedRegistry, launch_registry
from tests.support.services import Registry
from tests.support.tls import make_ca, make_server_cert
from tests.support.token_server import TokenServer, running_token_server

pytestmark = pytest.mark.registry

# The machine's daemon.json and certs.d stay out of it.
SETTINGS = Settings(registry_timeout=5.0, existence_cache_ttl=30.0, docker_daemon_config="",
                    docker_certs_dir="")


@pytest.fixture
def checker() -> Iterator[ExistenceChecker]:
    with ExistenceChecker(SETTINGS) as instance:
        yield instance


@pytest.fixture
def plain_uploader(plain_registry: Registry) -> Iterator[Uploader]:
    with httpx.Client(timeout=10) as client:
        yield Uploader(client, plain_registry.url)


def test_plain_registry_present_and_absent(checker, plain_registry: Registry, busybox_base: str):
    expected = plain_registry.manifest_digest("library/busybox", "latest")
    present = checker.check(busybox_base)
    absent = checker.check(f"{plain_registry.host}/library/busybox:no-such-tag")
    assert present.exists and present.digest == expected
    assert absent.missing and absent.reason is None


def test_basic_auth_registry_right_wrong_and_missing_credentials(
    auth_registry: Registry, docker_config, unique_name: str
):
    with httpx.Client(auth=auth_registry.auth, timeout=10) as client:
        digest = Uploader(client, auth_registry.url).image(unique_name, "v1")
    reference = f"{auth_registry.host}/{unique_name}:v1"

    docker_config({auth_registry.host: auth_registry.auth})
    with ExistenceChecker(SETTINGS) as checker:
        right = checker.check(reference)
        absent = checker.check(f"{auth_registry.host}/{unique_name}:v2")
    docker_config({auth_registry.host: ("imagebuild", "wrong-password")})
    with ExistenceChecker(SETTINGS) as checker:
        wrong = checker.check(reference)
    docker_config({})
    with ExistenceChecker(SETTINGS) as checker:
        anonymous = checker.check(reference)

    assert right.exists and right.digest == digest["digest"]
    assert absent.missing
    for refused in (wrong, anonymous):
        assert refused.unknown and refused.reason is not None
        assert refused.reason.startswith("denied:") and "401" in refused.reason


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[tuple[LaunchedRegistry, TokenServer]]:
    users = {"alice": "wonderland"}
    with running_token_server(tmp_path / "token", users=users) as (server, bundle):
        registry = launch_registry(tmp_path / "registry",
                                   extra_config=server.registry_config(bundle))
        try:
            yield registry, server
        finally:
            registry.stop()


def test_bearer_token_registry(token_registry, docker_config, unique_name: str):
    registry, server = token_registry
    push_token = server.issue("alice", [f"repository:{unique_name}:pull,push"])
    with httpx.Client(headers={"Authorization": f"Bearer {push_token}"}, timeout=10) as client:
        digest = Uploader(client, registry.url).image(unique_name, "v1")["digest"]
    server.requests.clear()
    reference = f"{registry.host}/{unique_name}:v1"

    docker_config({registry.host: ("alice", "wonderland")})
    with ExistenceChecker(SETTINGS) as checker:
        found = checker.check(reference)
        absent = checker.check(f"{registry.host}/{unique_name}:v2")
    asked = list(server.requests)
    docker_config({registry.host: ("alice", "not-the-password")})
    with ExistenceChecker(SETTINGS) as checker:
        wrong = checker.check(reference)
    docker_config({})
    with ExistenceChecker(SETTINGS) as checker:
        anonymous = checker.check(reference)  # gets a token without access: registry says 401

    assert found.exists and found.digest == digest
    assert absent.missing
    # One token for the repository's pull scope, reused for the second check.
    assert [(r.scopes, r.user, r.service) for r in asked] == [
        ([f"repository:{unique_name}:pull"], "alice", server.service)]
    for refused in (wrong, anonymous):
        assert (refused.unknown and refused.reason is not None
                and refused.reason.startswith("denied:"))
    assert "token service" in (wrong.reason or "")


def test_tls_registry_with_a_custom_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       unique_name: str):
    # On this machine's non-loopback address: loopback registries are insecure (no
    # verification, as for the engine), so only a "remote" one shows the CA settings at work.
    address = non_loopback_ipv4()
    ca = make_ca()
    ca_file, _ = ca.write(tmp_path / "pki", "ca")
    server_cert = make_server_cert(ca, ("localhost", address))
    cert_file, key_file = server_cert.write(tmp_path / "pki", "server")
    registry = launch_registry(tmp_path / "registry", tls=(cert_file, key_file), ca_file=ca_file,
                               address=address)
    try:
        trust = ssl.create_default_context(cafile=str(ca_file))
        with httpx.Client(verify=trust, timeout=10) as client:
            digest = Uploader(client, registry.url).image(unique_name, "v1")["digest"]
        reference = f"{registry.host}/{unique_name}:v1"

        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        with ExistenceChecker(SETTINGS) as checker:
            untrusted = checker.check(reference)
        with ExistenceChecker(SETTINGS.replace(extra_ca_files=(str(ca_file),))) as checker:
            via_settings = checker.check(reference)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        with ExistenceChecker(SETTINGS) as checker:
            via_env = checker.check(reference)
    finally:
        registry.stop()

    assert (untrusted.unknown and untrusted.reason is not None
            and untrusted.reason.startswith("tls:"))
    assert via_settings.exists and via_settings.digest == digest
    assert via_env.exists and via_env.digest == digest


def test_oci_index_with_two_platforms(checker, plain_uploader: Uploader, plain_registry: Registry,
                                      unique_name: str):
    digest = plain_uploader.index(unique_name, "multi", ["amd64", "arm64"],
                                  labels={SPEC_HASH_LABEL: "spec-1"})
    reference = f"{plain_registry.host}/{unique_name}:multi"
    plain = checker.check(reference)
    arm = checker.check(reference, platform="linux/arm64")
    s390x = checker.check(reference, platform="linux/s390x")
    hashed = checker.check(reference, platform="linux/arm64", spec_hash="spec-1")
    other = checker.check(reference, spec_hash="spec-2")
    assert (plain.exists and plain.digest == digest
            and plain.platforms == ("linux/amd64", "linux/arm64"))
    assert arm.exists and arm.digest == digest
    assert s390x.missing and "linux/s390x" in (s390x.reason or "")
    assert hashed.exists and hashed.spec_hash_matches is True
    assert other.exists and other.built_from_other_spec


def test_a_stopped_registry_is_unknown_unreachable(tmp_path: Path, unique_name: str):
    registry = launch_registry(tmp_path / "registry")
    try:
        with httpx.Client(timeout=10) as client:
            Uploader(client, registry.url).image(unique_name, "v1")
        with ExistenceChecker(SETTINGS) as checker:
            reference = f"{registry.host}/{unique_name}:v1"
            assert checker.check(reference).exists
            registry.stop()
            gone = checker.check(reference, use_cache=False)
    finally:
        registry.stop()
    assert gone.unknown and gone.reason is not None and gone.reason.startswith("unreachable:")


def test_deleted_image_is_missing_after_invalidation(checker, plain_uploader: Uploader,
                                                     plain_registry: Registry, unique_name: str):
    digest = plain_uploader.image(unique_name, "v1")["digest"]
    reference = f"{plain_registry.host}/{unique_name}:v1"
    assert checker.check(reference).exists
    plain_uploader.delete(unique_name, str(digest))
    assert checker.check(reference).cached  # within the TTL the cached answer stands
    checker.invalidate(reference)
    after = checker.check(reference)
    assert after.missing and not after.cached


def test_check_many_mixes_present_absent_and_local(checker, plain_registry: Registry,
                                                  busybox_base: str):
    refs = [busybox_base, f"{plain_registry.host}/nope/nothing:1", busybox_base]
    results = checker.check_many(refs)
    assert [r.state for r in results] == ["exists", "missing", "exists"]


def test_a_failing_credential_helper_is_named_never_echoed(
    auth_registry: Registry, docker_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
):
    secret = "s3cr3t-from-the-helper"
    install_helper(tmp_path / "bin", "leaky",
                   f'echo "token={secret}"; echo "pw {secret}" >&2; exit 2\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    directory = docker_config({})
    (directory / "config.json").write_text(
        json.dumps({"credHelpers": {auth_registry.host: "leaky"}}))
    with ExistenceChecker(SETTINGS) as checker:
        result = checker.check(f"{auth_registry.host}/library/busybox:latest")
    assert result.unknown and result.reason is not None
    assert (secret not in result.reason and secret not in repr(result)
            and secret not in str(result.to_dict()))
    assert result.reason.startswith("denied:")
    assert "docker-credential-leaky" in result.reason and "exit status 2" in result.reason
