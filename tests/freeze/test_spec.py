"""A freeze is an ordinary Image: pinned as a lock, local folders shipped or refused by name,
VCS installs kept with their commit, and a content tag that follows the environment."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from imagebuild_nb import Image
from imagebuild_nb.errors import FreezeError, SpecError
from imagebuild_nb.spec import layers as L
from imagebuild_nb.spec.base import DebianBase
from tests.freeze.conftest import write_dist


def test_pins_every_distribution_as_a_lock_on_the_same_python(site: Path) -> None:
    write_dist(site, "PyYAML", "6.0.2", requested=True, top_level=["yaml"])
    write_dist(site, "six", "1.16.0", requested=True)
    image = Image.from_environment(name="frozen", path=[str(site)])
    assert image.base == DebianBase(f"{sys.version_info.major}.{sys.version_info.minor}")
    (layer,) = image.layers
    assert isinstance(layer, L.PipPackages)
    assert layer.packages == ("PyYAML==6.0.2", "six==1.16.0")
    assert layer.extra_args == ("--no-deps",)
    assert "--no-deps -- PyYAML==6.0.2 six==1.16.0" in image.dockerfile()
    # An ordinary Image: extendable like any other.
    assert image.with_env_vars({"MODE": "prod"}).layers[-1] == L.EnvVars((("MODE", "prod"),))


def test_editable_folder_is_shipped_as_a_source_layer(site: Path, tmp_path: Path) -> None:
    project = tmp_path / "mypkg"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname='mypkg'\nversion='0.1'\n")
    write_dist(site, "mypkg", "0.1", requested=True, direct_url={
        "url": project.as_uri(), "dir_info": {"editable": True}})
    image = Image.from_environment(name="frozen", path=[str(site)])
    folder, install = image.layers
    assert folder == L.SourceFolder(str(project), "/opt/imagebuild-nb/sources/mypkg")
    assert install.packages == ("mypkg @ file:///opt/imagebuild-nb/sources/mypkg",)


def test_local_installs_are_refused_with_their_names_and_the_fix(site: Path,
                                                                  tmp_path: Path) -> None:
    project = tmp_path / "mypkg"
    project.mkdir()
    write_dist(site, "mypkg", "0.1", requested=True, direct_url={
        "url": project.as_uri(), "dir_info": {"editable": True}})
    write_dist(site, "gone", "2.0", requested=True, direct_url={
        "url": (tmp_path / "deleted").as_uri(), "dir_info": {}})
    write_dist(site, "wheelfile", "3.0", requested=True, direct_url={
        "url": (tmp_path / "w.whl").as_uri(), "archive_info": {}})
    with pytest.raises(FreezeError) as refused:
        Image.from_environment(name="frozen", path=[str(site)], on_local="error")
    assert refused.value.distributions == ("gone", "mypkg", "wheelfile")
    assert f"mypkg 0.1 (editable folder {project})" in str(refused.value)
    assert "exclude=" in str(refused.value)
    # Shipping what can be shipped still names the rest (a folder gone, a local wheel).
    with pytest.raises(FreezeError) as partly:
        Image.from_environment(name="frozen", path=[str(site)])
    assert partly.value.distributions == ("gone", "wheelfile")
    assert "missing" in str(partly.value)
    image = Image.from_environment(name="frozen", path=[str(site)], exclude=["gone", "wheelfile"])
    assert isinstance(image.layers[0], L.SourceFolder)


def test_vcs_installs_keep_url_and_commit(site: Path) -> None:
    write_dist(site, "tool", "0.9", requested=True, direct_url={
        "url": "https://github.com/o/tool.git",
        "vcs_info": {"vcs": "git", "commit_id": "a" * 40}})
    image = Image.from_environment(name="frozen", path=[str(site)])
    apt, pip = image.layers
    assert apt == L.AptPackages(("git",))
    assert pip.packages == (f"tool @ git+https://github.com/o/tool.git@{'a' * 40}",)


def test_bad_option_names_the_argument(site: Path) -> None:
    with pytest.raises(SpecError, match="on_local"):
        Image.from_environment(path=[str(site)], on_local="skip")  # type: ignore[arg-type]


def test_same_environment_same_tag_one_more_package_new_tag(
        pip_target: Callable[..., Path]) -> None:
    target = pip_target("six==1.16.0", "PyYAML==6.0.2")
    first = Image.from_environment(name="frozen", path=[str(target)])
    second = Image.from_environment(name="frozen", path=[str(target)])
    assert first.uri == second.uri and first.tag == second.tag
    pip_target("idna==3.10")
    third = Image.from_environment(name="frozen", path=[str(target)])
    assert third.tag != first.tag
    assert "idna==3.10" in third.layers[0].packages


def test_another_environments_python_version_can_be_given(site: Path) -> None:
    write_dist(site, "six", "1.16.0", requested=True)
    image = Image.from_environment(name="frozen", path=[str(site)], python_version="3.12")
    assert image.base == DebianBase("3.12")
    with pytest.raises(SpecError, match="python_version"):
        Image.from_environment(name="frozen", path=[str(site)], python_version="twelve")
