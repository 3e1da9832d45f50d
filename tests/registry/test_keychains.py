"""Keychains: explicit credentials, docker config.json (auths, identity tokens, credHelpers,
credsStore) and credential helpers run as real processes with a timeout."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from imagebuild_nb.errors import RegistryAuthError
from imagebuild_nb.registry import (
    AnonymousKeychain,
    ChainKeychain,
    Credential,
    DockerConfigKeychain,
    StaticKeychain,
)
from imagebuild_nb.registry.challenge import parse_challenge
from imagebuild_nb.registry.credentials import normalize_host


def _config(directory: Path, data: dict) -> DockerConfigKeychain:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(data))
    return DockerConfigKeychain(directory / "config.json", helper_timeout=2)


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def helper_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on PATH for fake docker-credential-* programs."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory


def _helper(directory: Path, name: str, script: str) -> None:
    path = directory / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_auths_entry_is_decoded_and_keys_in_any_shape_match(tmp_path: Path):
    keychain = _config(tmp_path / "c", {"auths": {
        "https://registry.example.com:5000/v1/": {"auth": _auth("alice", "pw:with:colons")},
    }})
    found = keychain.resolve("registry.example.com:5000")
    assert found == Credential("alice", "pw:with:colons")
    assert keychain.resolve("other.example.com") is None
    assert "pw" not in repr(found)


def test_docker_hub_credentials_live_under_the_legacy_index_url(tmp_path: Path):
    keychain = _config(tmp_path / "c",
                       {"auths": {"https://index.docker.io/v1/": {"auth": _auth("hub", "tok")}}})
    assert keychain.resolve("registry-1.docker.io") == Credential("hub", "tok")


def test_identity_token_entry(tmp_path: Path):
    keychain = _config(tmp_path / "c",
                       {"auths": {"myregistry.azurecr.io": {"identitytoken": "refresh-me"}}})
    found = keychain.resolve("myregistry.azurecr.io")
    assert found is not None and found.identity_token == "refresh-me" and not found.has_basic


def test_docker_config_env_var_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    directory = tmp_path / "from-env"
    _config(directory, {"auths": {"localhost:5002": {"auth": _auth("u", "p")}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    assert DockerConfigKeychain().resolve("localhost:5002") == Credential("u", "p")


def test_missing_config_means_anonymous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nowhere"))
    assert DockerConfigKeychain().resolve("ghcr.io") is None


def test_cred_helper_wins_over_auths_and_gets_the_server_url(tmp_path: Path, helper_dir: Path):
    log = tmp_path / "helper-stdin"
    _helper(helper_dir, "fake", f'cat > {log}\necho \'{{"ServerURL":"x","Username":"helper-user",'
                                '"Secret":"helper-secret"}\'\n')
    keychain = _config(tmp_path / "c", {
        "auths": {"https://gcr.example.com": {"auth": _auth("stale", "stale")}},
        "credHelpers": {"gcr.example.com": "fake"},
    })
    assert keychain.resolve("gcr.example.com") == Credential("helper-user", "helper-secret")
    assert log.read_text() == "https://gcr.example.com"


def test_helper_token_username_means_identity_token(tmp_path: Path, helper_dir: Path):
    _helper(helper_dir, "tok",
            'echo \'{"ServerURL":"x","Username":"<token>","Secret":"refresh"}\'\n')
    keychain = _config(tmp_path / "c", {"credHelpers": {"acr.example.com": "tok"}})
    found = keychain.resolve("acr.example.com")
    assert found is not None and found.identity_token == "refresh"


def test_creds_store_not_found_falls_back_to_auths(tmp_path: Path, helper_dir: Path):
    _helper(helper_dir, "store", 'echo "credentials not found in native keychain"; exit 1\n')
    keychain = _config(tmp_path / "c", {"credsStore": "store",
                                        "auths": {"reg.example.com": {"auth": _auth("a", "b")}}})
    assert keychain.resolve("reg.example.com") == Credential("a", "b")


def test_hanging_helper_times_out_with_a_hint(tmp_path: Path, helper_dir: Path):
    _helper(helper_dir, "hang", "exec sleep 30\n")
    keychain = _config(tmp_path / "c", {"credHelpers": {"slow.example.com": "hang"}})
    keychain.helper_timeout = 0.3
    with pytest.raises(RegistryAuthError, match="did not answer within 0.3s") as caught:
        keychain.resolve("slow.example.com")
    assert "prompt" in (caught.value.hint or "")


def test_missing_helper_program_is_reported(tmp_path: Path, helper_dir: Path):
    keychain = _config(tmp_path / "c", {"credHelpers": {"x.example.com": "not-installed-anywhere"}})
    with pytest.raises(RegistryAuthError, match="not installed"):
        keychain.resolve("x.example.com")


def test_chain_first_non_anonymous_wins():
    chain = ChainKeychain(AnonymousKeychain(), StaticKeychain({"a.example": ("1", "1")}),
                          StaticKeychain({"a.example": ("2", "2"), "b.example": ("3", "3")}))
    assert chain.resolve("a.example") == Credential("1", "1")
    assert chain.resolve("b.example") == Credential("3", "3")
    assert chain.resolve("c.example") is None


@pytest.mark.parametrize("key, host", [
    ("https://localhost:5002", "localhost:5002"),
    ("http://Registry.Example.com/v1/", "registry.example.com"),
    ("docker.io", "registry-1.docker.io"),
])
def test_normalize_host(key: str, host: str):
    assert normalize_host(key) == host


def test_parse_challenges():
    bearer = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                             'scope="repository:library/busybox:pull",error="insufficient_scope"')
    assert bearer is not None and bearer.scheme == "bearer"
    assert bearer.scope == "repository:library/busybox:pull"
    assert bearer.error == "insufficient_scope"
    basic = parse_challenge('Basic realm="https://123.dkr.ecr.us-east-1.amazonaws.com/",'
                            'service="ecr.amazonaws.com"')
    assert basic is not None and basic.scheme == "basic" and basic.service == "ecr.amazonaws.com"
    assert parse_challenge('Negotiate, Basic realm="x"') == parse_challenge('Basic realm="x"')
    assert parse_challenge("") is None and parse_challenge("Negotiate") is None
