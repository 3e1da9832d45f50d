"""A real flyte.Image converted to ours: same files, packages, env, workdir; or a clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import flyte
import pytest

from imagebuild_nb import SpecError
from imagebuild_nb.spec import layers as L
from imagebuild_nb.spec.convert import as_image


def test_unmodified_flyte_image_is_its_base_and_never_built() -> None:
    img = as_image(flyte.Image.from_base("alpine:3.18"))
    assert img.is_default_base and img.uri == "alpine:3.18"
    assert img.origin == "flyte.Image alpine:3.18"


def test_layers_keep_their_meaning(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text("X = 1\n")
    (tmp_path / "requirements.txt").write_text("six\n")
    fimg = (flyte.Image.from_debian_base(install_flyte=False, name="conv",
                                         registry="localhost:5001")
            .with_apt_packages("git", secret_mounts=["GITHUB_PAT"])
            .with_requirements(tmp_path / "requirements.txt", extra_args="--no-deps")
            .with_source_folder(tmp_path / "src")
            .with_source_folder(tmp_path / "src", dst="/app", copy_contents_only=True)
            .with_env_vars({"PATH": "/opt/tools/bin:$PATH"}))
    img = as_image(fimg)
    assert img.uri.startswith("localhost:5001/conv:")
    assert img.base.reference.endswith("-slim-bookworm")  # type: ignore[union-attr]
    assert isinstance(img.layers[0], L.Labels)
    envs = [layer.env for layer in img.layers if isinstance(layer, L.EnvVars)]
    assert ("PYTHONPATH", "/root") in envs[0]
    apt = [layer for layer in img.layers if layer.kind == "apt_packages"][-1]
    assert apt.secrets[0].source == "GITHUB_PAT" and apt.secrets[0].env == "GITHUB_PAT"
    folders = [layer.dst for layer in img.layers if layer.kind == "source_folder"]  # type: ignore[attr-defined]
    assert folders == ["src", "/app"]
    assert img.layers[-1].env == (("PATH", "/opt/tools/bin:$PATH"),)  # type: ignore[attr-defined]
    assert "USER flyte" in (img.origin or "")


def test_a_layer_without_counterpart_names_the_layer_and_the_fix() -> None:
    fimg = flyte.Image.from_debian_base(install_flyte=False).with_code_bundle()
    with pytest.raises(SpecError, match=r"flyte layer \d+ \(CodeBundleLayer\)") as info:
        as_image(fimg)
    assert "with_source_folder" in (info.value.hint or "")


def test_from_ref_name_says_to_pass_the_uri() -> None:
    with pytest.raises(SpecError, match="from_ref_name") as info:
        as_image(flyte.Image.from_ref_name("training"))
    assert "from_base" in (info.value.hint or "")


def test_not_an_image_is_named_with_its_module() -> None:
    class Image:  # the magic used to say "'img' is a Image, not an Image"
        pass

    with pytest.raises(SpecError, match=r"test_flyte\..*Image is not an image spec"):
        as_image(Image())  # type: ignore[arg-type]


def test_flyte_stays_unimported_for_our_own_images() -> None:
    code = ("import sys; from imagebuild_nb import Image, as_image; "
            "as_image(Image.from_base('busybox:1.36', name='x').with_commands('true')).uri; "
            "print('flyte' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
