"""Fast tier: picking the local driver by capability, and builders by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagebuild_nb.builders import buildkit_cli
from imagebuild_nb.builders.buildkit_cli import BuildKitCliBuilder, find_cli
from imagebuild_nb.builders.docker_api import DockerApiBuilder
from imagebuild_nb.builders.select import get_builder, local_builder
from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.settings import Settings


def _fake_cli(folder: Path, *, buildx: bool = False, classic: bool = False) -> Path:
    folder.mkdir(parents=True)
    script = folder / "docker"
    help_text = "  --secret stringArray  --progress string" if classic else ""
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = buildx ]; then {"exit 0" if buildx else "exit 1"}; fi\n'
        f'if [ "$1" = build ]; then echo "{help_text}"; {"exit 0" if classic else "exit 1"}; fi\n'
        "exit 1\n")
    script.chmod(0o755)
    return script


@pytest.fixture(autouse=True)
def fresh_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(buildkit_cli, "_probed", {})


def test_a_cli_without_buildkit_is_skipped_for_one_that_has_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    newer = _fake_cli(tmp_path / "newer")  # like docker 28 without the buildx plug-in
    older = _fake_cli(tmp_path / "older", classic=True)
    monkeypatch.setenv("PATH", f"{newer.parent}{os.pathsep}{older.parent}")
    found = find_cli("docker")
    assert found is not None and (found.path, found.mode) == (str(older), "classic")
    assert isinstance(local_builder(Settings()), BuildKitCliBuilder)


def test_buildx_is_preferred_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = _fake_cli(tmp_path / "bx", buildx=True, classic=True)
    monkeypatch.setenv("PATH", str(cli.parent))
    found = find_cli("docker")
    assert found is not None and found.mode == "buildx"


def test_auto_falls_back_to_the_engine_api_and_buildkit_says_what_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cli(tmp_path / "none")
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    assert isinstance(local_builder(Settings()), DockerApiBuilder)
    strict = local_builder(Settings(local_driver="buildkit"))
    with pytest.raises(BuilderUnavailableError, match="BuildKit") as caught:
        _ = strict.cli  # type: ignore[attr-defined]
    assert "docker-api" in str(caught.value)


def test_unknown_builder_names_list_the_known_ones() -> None:
    with pytest.raises(BuilderUnavailableError) as caught:
        get_builder("no-such-builder", Settings())
    assert "local" in str(caught.value) and "imagebuild_nb.builders" in str(caught.value)
