"""The services the project's scripts start are real: engine, registries, base images."""

from __future__ import annotations

import io
from pathlib import Path

import docker
import httpx
import pytest

from tests.support.services import Registry

pytestmark = [pytest.mark.engine, pytest.mark.registry]


def _build(client: docker.DockerClient, dockerfile: str, tag: str) -> str:
    records = list(
        client.api.build(
            fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True, decode=True
        )
    )
    errors = [record["error"] for record in records if "error" in record]
    assert not errors, errors
    return tag


def _push(client: docker.DockerClient, name: str, tag: str,
          auth: dict[str, str] | None = None) -> list[dict]:
    return list(client.api.push(name, tag=tag, stream=True, decode=True, auth_config=auth))


def test_engine_builds_an_image(docker_client, busybox_base, unique_name, remove_images):
    tag = f"{unique_name}:1"
    remove_images.append(tag)
    _build(docker_client, f"FROM {busybox_base}\nRUN echo built > /proof\n", tag)
    output = docker_client.containers.run(tag, ["cat", "/proof"], remove=True)
    assert output == b"built\n"


def test_push_to_plain_registry_is_found_by_manifest_head(
    docker_client, busybox_base, plain_registry: Registry, unique_name, remove_images
):
    name = f"{plain_registry.host}/{unique_name}"
    remove_images.append(f"{name}:v1")
    assert plain_registry.manifest_digest(unique_name, "v1") is None
    _build(docker_client, f"FROM {busybox_base}\nRUN echo plain > /proof\n", f"{name}:v1")
    records = _push(docker_client, name, "v1")
    pushed = next(r["aux"]["Digest"] for r in records if "aux" in r)
    assert plain_registry.manifest_digest(unique_name, "v1") == pushed


def test_basic_auth_registry_refuses_anonymous_push_and_accepts_credentials(
    docker_client, busybox_base, auth_registry: Registry, unique_name, remove_images, docker_config
):
    docker_config({})  # no stored credentials anywhere
    name = f"{auth_registry.host}/{unique_name}"
    remove_images.append(f"{name}:v1")
    _build(docker_client, f"FROM {busybox_base}\nRUN echo auth > /proof\n", f"{name}:v1")

    anonymous = _push(docker_client, name, "v1")
    assert any("error" in r for r in anonymous), anonymous
    assert "basic auth" in str(anonymous).lower() or "unauthorized" in str(anonymous).lower()
    anonymous_head = httpx.head(f"{auth_registry.url}/v2/{unique_name}/manifests/v1")
    assert anonymous_head.status_code == 401
    assert anonymous_head.headers["WWW-Authenticate"].startswith("Basic ")

    credentials = {"username": auth_registry.username, "password": auth_registry.password}
    records = _push(docker_client, name, "v1", auth=credentials)
    assert not any("error" in r for r in records), records
    pushed = next(r["aux"]["Digest"] for r in records if "aux" in r)
    assert auth_registry.manifest_digest(unique_name, "v1") == pushed


def test_python_base_runs_python3(docker_client, python_base):
    output = docker_client.containers.run(python_base, ["python3", "-c", "print(1)"], remove=True)
    assert output == b"1\n"


def test_throwaway_registry_has_its_own_storage(
    docker_client, busybox_base, make_registry, unique_name, remove_images, plain_registry
):
    registry = make_registry()
    assert registry.host != plain_registry.host
    name = f"{registry.host}/{unique_name}"
    remove_images.append(f"{name}:v1")
    docker_client.images.get(busybox_base).tag(name, "v1")
    records = _push(docker_client, name, "v1")
    pushed = next(r["aux"]["Digest"] for r in records if "aux" in r)
    assert registry.manifest_digest(unique_name, "v1") == pushed
    assert plain_registry.manifest_digest(unique_name, "v1") is None
    assert any(Path(registry.storage).rglob("link"))
