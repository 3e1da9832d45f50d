"""Handles on the real services the project's scripts start, and throwaway registries for tests.

The session services (engine, plain registry, Basic-auth registry, base images) are started by
``scripts/services.sh`` and ``scripts/base-images.sh``; tests never silently skip when they are
missing: they fail with the command to run.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx

from tests.support.processes import stop_process

PLAIN_REGISTRY = os.environ.get("IMAGEBUILD_NB_PLAIN_REGISTRY", "localhost:5001")
AUTH_REGISTRY = os.environ.get("IMAGEBUILD_NB_AUTH_REGISTRY", "localhost:5002")
AUTH_USER = os.environ.get("IMAGEBUILD_NB_AUTH_REGISTRY_USER", "imagebuild")
AUTH_PASSWORD = os.environ.get("IMAGEBUILD_NB_AUTH_REGISTRY_PASSWORD", "imagebuild-secret")

BUSYBOX_IMAGE = "imagebuild-nb/busybox:latest"
DEBIAN_PYTHON_IMAGE = "imagebuild-nb/debian-python:bookworm"
MIRRORED_PYTHON_BASE = f"{PLAIN_REGISTRY}/library/python:3.11-slim"
MIRRORED_BUSYBOX = f"{PLAIN_REGISTRY}/library/busybox:latest"

# Accept all four manifest types, or the registry answers with schema1 / "missing" for an index.
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)

SETUP_HINT = "start the services with: bash scripts/setup.sh (or scripts/services.sh start)"


@dataclass(frozen=True)
class Registry:
    """A running registry: ``host`` is ``host:port`` as used in image references."""

    host: str
    username: str | None = None
    password: str | None = None
    storage: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def auth(self) -> tuple[str, str] | None:
        return (self.username, self.password) if self.username and self.password else None

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """HEAD the manifest; the digest when it exists, None when it does not."""
        headers = [("Accept", media_type) for media_type in MANIFEST_TYPES]
        response = httpx.head(
            f"{self.url}/v2/{repository}/manifests/{reference}",
            headers=headers,
            auth=self.auth,
            timeout=10,
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]

    def answers(self) -> bool:
        try:
            response = httpx.get(f"{self.url}/v2/", timeout=2)
        except httpx.HTTPError:
            return False
        return response.status_code in (200, 401)


def write_docker_config(directory: Path, auths: dict[str, tuple[str, str]]) -> Path:
    """Write a ``config.json`` with Basic credentials per registry host; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = {
        host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        for host, (user, password) in auths.items()
    }
    (directory / "config.json").write_text(json.dumps({"auths": entries}))
    return directory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def throwaway_registry(
    workdir: Path, *, credentials: tuple[str, str] | None = None, extra_config: str = ""
) -> Iterator[Registry]:
    """Start a private ``docker-registry`` on a free loopback port with its own storage."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError(f"docker-registry is not installed; {SETUP_HINT}")
    port = free_port()
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    lines = [
        "version: 0.1",
        "log: {level: warn}",
        f"storage: {{filesystem: {{rootdirectory: {storage}}}, delete: {{enabled: true}}}}",
        f"http: {{addr: 127.0.0.1:{port}, secret: throwaway}}",
    ]
    if credentials:
        hashed = subprocess.run(
            ["htpasswd", "-Bbn", *credentials], check=True, capture_output=True, text=True
        ).stdout
        (workdir / "htpasswd").write_text(hashed)
        lines.append(f"auth: {{htpasswd: {{realm: throwaway, path: {workdir / 'htpasswd'}}}}}")
    if extra_config:
        lines.append(extra_config)
    config = workdir / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log = (workdir / "registry.log").open("wb")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    user, password = credentials or (None, None)
    registry = Registry(f"localhost:{port}", user, password, storage)
    try:
        deadline = time.monotonic() + 20
        while not registry.answers():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"throwaway registry did not start: {(workdir / 'registry.log').read_text()}"
                )
            time.sleep(0.05)
        yield registry
    finally:
        stop_process(process, 10)
        log.close()


def remove_images_tagged(client: docker.DockerClient, matches: Callable[[str], bool]) -> None:
    """Remove from the engine every image tag ``matches`` accepts (a test package's own
    images, named so that nothing else matches)."""
    for image in client.images.list():
        for tag in image.tags:
            if matches(tag):
                client.images.remove(tag, force=True)


def containers_with(client: docker.DockerClient, marker: str, *,
                    running_only: bool = False) -> list[str]:
    """Ids of containers whose command mentions ``marker``.

    The list call alone (no inspect per container): a container removed meanwhile (a build's
    RUN container being cleaned up) cannot make it fail.
    """
    return [entry["Id"] for entry in client.api.containers(all=not running_only)
            if marker in entry.get("Command", "")]
