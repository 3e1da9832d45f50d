"""Real tier: build-time CAs (``extra_ca_files``) are trusted by RUN steps and stay honest.

BuildKit mounts them: the image holds no byte of them (``docker save`` is searched) and keeps
its content tag. The legacy builder cannot mount: the CA is then in the image and in its tag,
and the engine's check, build and result all name that tag.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from imagebuild_nb import Image
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.settings import Settings
from tests.support.tls import make_ca

pytestmark = [pytest.mark.engine]


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path, _ = make_ca(f"imagebuild-nb build CA {uuid.uuid4().hex[:8]}").write(tmp_path, "ca")
    return path


def _body(pem: Path) -> bytes:
    """A line from the middle of the certificate: unique to it, found in any copy of it."""
    lines = pem.read_bytes().splitlines()
    return lines[len(lines) // 2]


def _saved_bytes(client: docker.DockerClient, uri: str) -> Iterator[bytes]:
    """Every file of ``docker save``, layers unpacked (uncompressed tars)."""
    raw = b"".join(client.images.get(uri).save())
    with tarfile.open(fileobj=io.BytesIO(raw)) as outer:
        for member in outer.getmembers():
            data = outer.extractfile(member)
            if data is None:
                continue
            content = data.read()
            yield content
            if member.name.endswith(".tar"):
                with tarfile.open(fileobj=io.BytesIO(content)) as layer:
                    for item in layer.getmembers():
                        handle = layer.extractfile(item)
                        if handle is not None:
                            yield item.name.encode() + b"\0" + handle.read()


def _run(uri: str, script: str) -> str:
    return subprocess.run(["docker", "run", "--rm", "--network", "none", uri, "sh", "-c", script],
                          capture_output=True, text=True, timeout=120, check=True).stdout


COUNT = "grep -c 'BEGIN CERTIFICATE' \"$SSL_CERT_FILE\" > /ca-count"


def _spec(busybox_base: str, command: str = COUNT) -> Image:
    # The RUN step proves the CA was there for it; what it writes is only a count.
    return Image.from_base(busybox_base, name=f"test/build-ca-{uuid.uuid4().hex[:8]}") \
        .with_commands([command])


def test_buildkit_mounts_the_ca_and_the_image_holds_none_of_it(
        busybox_base: str, ca_file: Path, docker_client: docker.DockerClient) -> None:
    image = _spec(busybox_base, f"{COUNT} && test -s \"$PIP_CERT\" && "
                                "grep -q CaInfo \"$APT_CONFIG\"")
    engine = ImageBuildEngine(Settings(local_driver="buildkit", extra_ca_files=(str(ca_file),)))
    try:
        build = engine.build(image)
        assert build.status == "built" and build.uri == image.uri  # the tag is the spec's
        counted = int(_run(build.uri, "cat /ca-count"))
        assert counted > 100  # certifi's roots and ours were there for the RUN step
        leftovers = _run(build.uri, "ls /etc; env")
        assert "imagebuild-nb" not in leftovers and "SSL_CERT_FILE" not in leftovers
        config = docker_client.images.get(build.uri).attrs["Config"]
        assert not any("SSL_CERT_FILE" in entry for entry in config.get("Env") or [])
        marker = _body(ca_file)
        assert not any(marker in blob for blob in _saved_bytes(docker_client, build.uri))
    finally:
        engine.close()
        docker_client.images.remove(image.uri, force=True)


def test_the_legacy_builder_puts_the_ca_in_the_image_and_in_the_tag(
        busybox_base: str, ca_file: Path, docker_client: docker.DockerClient) -> None:
    image = _spec(busybox_base)
    with_ca = image.with_ca_certificates(ca_file)
    layered = Image.from_base(busybox_base, name=image.name).with_ca_certificates(ca_file)
    layered = layered.with_commands(list(image.layers[0].commands))  # type: ignore[attr-defined]
    engine = ImageBuildEngine(Settings(local_driver="docker-api", extra_ca_files=(str(ca_file),)))
    try:
        assert engine.image_exists(image) is None
        build = engine.build(image)
        assert build.status == "built" and build.uri == layered.uri != image.uri
        assert with_ca.uri != build.uri  # the CA comes first, as a proxy needs
        assert engine.image_exists(image) == build.uri  # check and build name one tag
        assert engine.build(image).status == "exists"
        marker = _body(ca_file)
        assert any(marker in blob for blob in _saved_bytes(docker_client, build.uri))
    finally:
        engine.close()
        docker_client.images.remove(layered.uri, force=True)
