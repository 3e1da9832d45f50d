"""Credentials for the engine come from the project's keychain: a failing helper is named, its
output never echoed, and it only affects the registry it serves."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from imagebuild_nb.builders.engine_auth import build_auth, push_auth
from imagebuild_nb.errors import RegistryAuthError
from tests.support.cred_helpers import install_helper

SECRET = "engine-auth-secret-in-helper-output"


def test_a_failing_helper_is_named_for_its_registry_and_skipped_for_the_others(
    docker_config: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    install_helper(tmp_path / "bin", "leaky", f'echo "{SECRET}"; echo "{SECRET}" >&2; exit 4\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    directory = docker_config({"localhost:5002": ("user", "pw")})
    config = json.loads((directory / "config.json").read_text())
    config["credHelpers"] = {"vault.example:5000": "leaky"}
    (directory / "config.json").write_text(json.dumps(config))

    with caplog.at_level(logging.WARNING):
        auths = build_auth()
    assert auths["localhost:5002"]["username"] == "user"
    assert "vault.example:5000" not in auths
    assert push_auth("localhost:5002") == {
        "username": "user", "password": "pw", "serveraddress": "localhost:5002"}
    with pytest.raises(RegistryAuthError, match="docker-credential-leaky") as caught:
        push_auth("vault.example:5000")
    captured = capfd.readouterr()
    for text in (str(caught.value), caplog.text, captured.out, captured.err):
        assert SECRET not in text
    assert "vault.example:5000" in caplog.text
