"""The service's /existence answer never carries a credential helper's output (it may hold a
secret): the reason names the helper and its exit status only."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.service.conftest import ServiceProcess
from tests.support.cred_helpers import install_helper
from tests.support.services import Registry

pytestmark = pytest.mark.registry

SECRET = "s3cr3t-in-helper-stderr"


def test_existence_reason_names_a_failing_helper_without_its_output(
    start_service: Callable[..., ServiceProcess], auth_registry: Registry, tmp_path: Path,
) -> None:
    install_helper(tmp_path / "bin", "leaky", f'echo "refresh token {SECRET}" >&2; exit 4\n')
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"credHelpers": {auth_registry.host: "leaky"}}))
    service = start_service(env={"DOCKER_CONFIG": str(config),
                                 "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"})
    with service.http() as http:
        response = http.get("/imagebuild/api/existence",
                            params={"reference": f"{auth_registry.host}/library/busybox:latest"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "unknown"
    assert SECRET not in response.text and SECRET not in service.log_path.read_text()
    assert "docker-credential-leaky" in body["reason"] and "exit status 4" in body["reason"]
