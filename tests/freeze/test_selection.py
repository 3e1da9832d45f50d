"""Which distributions a freeze keeps: the user's installs and their requirements, not the
kernel's tooling; only_imported starts from the providers of imported modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagebuild_nb.errors import FreezeError
from imagebuild_nb.freeze import left_out_imported, read_environment, select
from tests.freeze.conftest import write_dist


def _kernel_like(site: Path) -> None:
    # The user installed PyYAML and requests (by name); ipykernel and this project brought
    # tornado, pyzmq and ipython; requests brings urllib3[socks] and idna.
    write_dist(site, "PyYAML", "6.0.2", requested=True, top_level=["yaml", "_yaml"])
    write_dist(site, "requests", "2.32.3", requested=True,
               requires=["urllib3[socks]<3", "idna", "chardet; extra == 'use-chardet'"])
    write_dist(site, "urllib3", "2.2.3", requires=["PySocks; extra == 'socks'"])
    write_dist(site, "PySocks", "1.7.1", top_level=["socks", "sockshandler"])
    write_dist(site, "idna", "3.10")
    write_dist(site, "chardet", "5.2.0", requested=False)  # required only under an extra
    write_dist(site, "ipykernel", "6.29.5", requested=True,
               requires=["tornado>=6", "pyzmq", "ipython", "packaging"])
    write_dist(site, "imagebuild-nb", "0.1.0", requires=["ipython", "docker"],
               direct_url={"url": "file:///src/imagebuild-nb", "dir_info": {"editable": True}})
    for name in ("tornado", "pyzmq", "ipython", "docker", "packaging"):
        write_dist(site, name, "1.0")
    write_dist(site, "pip", "24.0", requested=True)
    write_dist(site, "jupyterlab", "4.2.5", requested=True, requires=["tornado"])


def test_full_freeze_keeps_user_installs_and_requirements_not_tooling(site: Path) -> None:
    _kernel_like(site)
    env = read_environment([str(site)])
    assert select(env) == {"pyyaml", "requests", "urllib3", "pysocks", "idna", "chardet"}


def test_include_tooling_keeps_everything_installed(site: Path) -> None:
    _kernel_like(site)
    env = read_environment([str(site)])
    assert select(env, include_tooling=True) == set(env.distributions)


def test_a_tooling_distribution_a_kept_one_requires_stays(site: Path) -> None:
    write_dist(site, "mylib", "1.0", requested=True, requires=["setuptools"])
    write_dist(site, "setuptools", "75.0", requested=True)
    env = read_environment([str(site)])
    assert select(env) == {"mylib", "setuptools"}


def test_only_imported_maps_import_names_to_distributions_and_follows_extras(site: Path) -> None:
    _kernel_like(site)
    env = read_environment([str(site)])
    # yaml is PyYAML's import name; tornado is imported by the kernel, not the user's code.
    assert select(env, only_imported=True, modules=["yaml", "tornado.ioloop", "json"]) == {
        "pyyaml"}
    assert select(env, only_imported=True, modules=["requests"]) == {
        "requests", "urllib3", "pysocks", "idna"}


def test_exclude_leaves_out_named_distributions(site: Path) -> None:
    _kernel_like(site)
    env = read_environment([str(site)])
    assert "chardet" not in select(env, exclude=["Chardet"])


def test_imported_modules_of_left_out_distributions_are_named_and_can_be_included(
        site: Path) -> None:
    _kernel_like(site)
    env = read_environment([str(site)])
    chosen = select(env)
    # tornado is the kernel's; docker came only with this project, yet the code imports it.
    assert left_out_imported(env, chosen, ["yaml", "tornado", "docker"]) == {
        "tornado": ["tornado"], "docker": ["docker"]}
    assert select(env, include=["docker"]) == chosen | {"docker"}
    assert "docker" in select(env, only_imported=True, modules=["yaml"], include=["Docker"])
    with pytest.raises(FreezeError, match="not installed") as error:
        select(env, include=["nope"])
    assert error.value.distributions == ("nope",)
