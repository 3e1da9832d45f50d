"""Build secrets through the real engine (BuildKit): a RUN step reads them; nothing else holds them.

The value must appear in no layer (``docker save`` of the image, grepped), not in the image
config, the build log, any event or the tag; a changed value keeps the tag.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import uuid
from pathlib import Path

import docker
import flyte
import pytest

from imagebuild_nb import ImageBuildEngine, as_image
from imagebuild_nb.settings import Settings

pytestmark = [pytest.mark.engine]


def _saved_bytes(client: docker.DockerClient, uri: str) -> bytes:
    """Every byte of the image (all layers, the config), uncompressed."""
    raw = b"".join(client.images.get(uri).save(named=True))
    out = [raw]
    with tarfile.open(fileobj=io.BytesIO(raw)) as outer:
        for member in outer.getmembers():
            if member.isfile() and member.name.endswith(".tar"):
                out.append(outer.extractfile(member).read())  # type: ignore[union-attr]
    return b"".join(out)


def test_secret_reaches_only_its_step_and_nothing_keeps_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_client: docker.DockerClient,
        busybox_base: str, remove_images: list[str]) -> None:
    env_value = f"env-secret-{uuid.uuid4().hex}"
    file_value = f"file-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("IBNB_TEST_TOKEN", env_value)
    token_file = tmp_path / "deploy_key"
    token_file.write_text(file_value)
    nonce = uuid.uuid4().hex
    name = f"test/secrets-{nonce[:8]}"
    fimg = (flyte.Image.from_base(busybox_base).clone(name=name, extendable=True)
            # Flyte's form: a bare name is Secret(key=name), the variable IBNB_TEST_TOKEN
            # A secret is not part of BuildKit's cache key either: a nonce makes the steps new.
            .with_commands([f': {nonce}; echo "$IBNB_TEST_TOKEN" | sha256sum > /proof-env',
                            'echo "printing $IBNB_TEST_TOKEN"'], secret_mounts=["ibnb_test_token"])
            # ours: a file path, seen by the step as /run/secrets/<file name>
            .with_commands([f": {nonce}; sha256sum < /run/secrets/deploy_key > /proof-file"],
                           secret_mounts=[str(token_file)]))
    engine = ImageBuildEngine(Settings(local_driver="buildkit"))
    tag_before = as_image(fimg).tag
    build = engine.build(fimg)
    remove_images.append(build.uri)
    assert build.built

    out = subprocess.run(["docker", "run", "--rm", build.uri, "cat", "/proof-env", "/proof-file"],
                         capture_output=True, text=True, check=True).stdout.split()
    # The RUN steps read both secrets (their digests match), without the image holding them.
    assert out[0] == hashlib.sha256(f"{env_value}\n".encode()).hexdigest()
    assert out[2] == hashlib.sha256(file_value.encode()).hexdigest()

    everything = _saved_bytes(docker_client, build.uri)
    assert env_value.encode() not in everything and file_value.encode() not in everything
    assert env_value not in build.logs and "printing ***" in build.logs
    for event in build.events:
        assert env_value not in str(event.to_dict()) and file_value not in str(event.to_dict())
    assert env_value not in build.uri and file_value not in build.uri

    token_file.write_text("another value")
    monkeypatch.setenv("IBNB_TEST_TOKEN", "another value")
    assert as_image(fimg).tag == tag_before  # the value is not part of the identity


def test_secret_value_is_in_no_layer_when_the_spec_does_not_name_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_client: docker.DockerClient,
        busybox_base: str, remove_images: list[str]) -> None:
    value = f"never-in-a-layer-{uuid.uuid4().hex}"
    monkeypatch.setenv("IBNB_LAYER_TOKEN", value)
    fimg = (flyte.Image.from_base(busybox_base)
            .clone(name=f"test/secret-layers-{uuid.uuid4().hex[:8]}", extendable=True)
            .with_commands([f': {uuid.uuid4().hex}; [ ${{#IBNB_LAYER_TOKEN}} -gt 10 ] && '
                            'echo "len ok" > /proof',
                            "echo $IBNB_LAYER_TOKEN; cat /proc/self/environ | tr '\\0' '\\n' "
                            "| grep -c IBNB || true"],
                           secret_mounts=[flyte.Secret(key="IBNB_LAYER_TOKEN")]))
    build = ImageBuildEngine(Settings(local_driver="buildkit")).build(fimg)
    remove_images.append(build.uri)
    everything = _saved_bytes(docker_client, build.uri)
    assert value.encode() not in everything  # no layer, no config, no history
    assert value not in build.logs and "***" in build.logs
    assert all(value not in str(event.to_dict()) for event in build.events)
    out = subprocess.run(["docker", "run", "--rm", build.uri, "sh", "-c",
                          "cat /proof; env | grep -c IBNB_LAYER_TOKEN || true"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["len", "ok", "0"]  # the step read it; the image's environment has no trace


def test_missing_secret_fails_before_building_naming_it(busybox_base: str) -> None:
    fimg = (flyte.Image.from_base(busybox_base)
            .clone(name=f"test/secret-missing-{uuid.uuid4().hex[:8]}", extendable=True)
            .with_commands(["true"], secret_mounts=["IBNB_NOT_SET_ANYWHERE"]))
    with pytest.raises(Exception, match="IBNB_NOT_SET_ANYWHERE"):
        ImageBuildEngine(Settings(local_driver="buildkit")).build(fimg)
