"""uv projects, Poetry projects and uv scripts: what counts for the tag, what errors say."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagebuild_nb import Image, SpecError

SCRIPT = '''#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["six", "attrs>=23"]
# ///
print("hello")
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\nversion = '0'\n")
    (tmp_path / "uv.lock").write_text("version = 1\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "p.py").write_text("X = 1\n")
    return tmp_path


def test_uv_script_counts_by_its_metadata_not_its_code(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    img = Image.from_uv_script(script, name="job", python_version="3.11")
    assert img.layers[0].dependencies == ("six", "attrs>=23")  # type: ignore[attr-defined]
    tag = img.tag
    script.write_text(SCRIPT.replace('print("hello")', 'print("changed")'))
    assert img.tag == tag
    script.write_text(SCRIPT.replace('"six", ', ""))
    assert Image.from_uv_script(script, name="job", python_version="3.11").tag != tag


def test_uv_script_without_metadata_says_what_to_add(tmp_path: Path) -> None:
    script = tmp_path / "plain.py"
    script.write_text("print(1)\n")
    with pytest.raises(SpecError, match="# /// script") as info:
        Image.from_uv_script(script, name="x")
    assert info.value.argument == "script" and info.value.hint


def test_uv_project_dependencies_only_counts_pyproject_and_lock_only(project: Path) -> None:
    img = Image.from_debian_base(name="x").with_uv_project(project / "pyproject.toml")
    tag = img.tag
    (project / "src" / "p.py").write_text("X = 2\n")
    assert img.tag == tag
    (project / "uv.lock").write_text("version = 1\n# changed\n")
    assert img.tag != tag


def test_uv_project_install_project_counts_the_source(project: Path) -> None:
    img = Image.from_debian_base(name="x").with_uv_project(
        project / "pyproject.toml", project_install_mode="install_project")
    tag = img.tag
    (project / "src" / "p.py").write_text("X = 2\n")
    assert img.tag != tag
    with pytest.raises(SpecError, match="project_install_mode"):
        Image.from_debian_base().with_uv_project(project / "pyproject.toml",
                                                 project_install_mode="everything")


def test_poetry_project_needs_its_lock(project: Path) -> None:
    with pytest.raises(SpecError) as info:
        Image.from_debian_base().with_poetry_project(project / "pyproject.toml")
    assert info.value.argument == "poetry_lock"
    (project / "poetry.lock").write_text("# lock\n")
    layer = Image.from_debian_base().with_poetry_project(project / "pyproject.toml").layers[0]
    assert layer.poetry_lock == str(project / "poetry.lock")  # type: ignore[attr-defined]
