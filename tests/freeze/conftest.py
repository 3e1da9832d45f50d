"""Site-packages folders for freeze tests: hand-written dist-info (the format importlib.metadata
reads, for selection rules) and real installs (pip --target, for tags)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import pytest

from tests.support.pip_target import pip_install_target


def write_dist(site: Path, name: str, version: str, *, requires: Sequence[str] = (),
               requested: bool = False, top_level: Sequence[str] = (),
               direct_url: dict[str, object] | None = None) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
             *(f"Requires-Dist: {req}" for req in requires)]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    (info / "top_level.txt").write_text("\n".join(top_level or [name.replace("-", "_")]) + "\n")
    if requested:
        (info / "REQUESTED").write_text("")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site-packages"
    folder.mkdir()
    return folder


@pytest.fixture
def pip_target(tmp_path: Path) -> Callable[..., Path]:
    """``pip install --target`` real wheels from PyPI into a folder of the test's."""
    return partial(pip_install_target, tmp_path / "target")
