"""Credential helpers that fail never have their output echoed: it may hold secrets (a token in
a debug line, a password in a usage message). The error names the helper, its exit status and
how to look into it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from imagebuild_nb.errors import RegistryAuthError
from imagebuild_nb.registry import DockerConfigKeychain
from imagebuild_nb.registry.helpers import run_credential_helper
from tests.support.cred_helpers import install_helper

SECRET = "hunter2-s3cr3t-token"


@pytest.fixture
def helper_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory


def _everything(error: RegistryAuthError) -> str:
    return " ".join(str(part) for part in (error, error.message, error.hint, repr(error)))


def test_a_failing_helper_is_named_with_its_exit_status_never_its_output(helper_dir: Path):
    install_helper(helper_dir, "leaky",
                   f'echo "debug: refreshing token {SECRET}"\n'
                   f'echo "error: keyring locked (password {SECRET})" >&2\nexit 3\n')
    with pytest.raises(RegistryAuthError) as caught:
        run_credential_helper("leaky", "registry.example.com", timeout=5)
    text = _everything(caught.value)
    assert SECRET not in text
    assert "docker-credential-leaky" in caught.value.message
    assert "exit status 3" in caught.value.message
    assert caught.value.hint
    assert "echo registry.example.com | docker-credential-leaky get" in caught.value.hint


def test_a_helper_answering_garbage_is_not_echoed_either(helper_dir: Path):
    install_helper(helper_dir, "garbage", f'echo "Secret={SECRET} (not json)"\n')
    with pytest.raises(RegistryAuthError) as caught:
        run_credential_helper("garbage", "registry.example.com", timeout=5)
    assert SECRET not in _everything(caught.value)
    assert "docker-credential-garbage" in caught.value.message


def test_credentials_not_found_is_still_anonymous(helper_dir: Path, tmp_path: Path):
    install_helper(helper_dir, "empty",
                   'echo "credentials not found in native keychain" >&2; exit 1\n')
    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {"reg.example.com": "empty"}}))
    keychain = DockerConfigKeychain(tmp_path / "config.json", helper_timeout=5)
    assert keychain.resolve("reg.example.com") is None
