"""Install steps (uv by default, pip kept), tool stages, secret mounts, ENV values and labels."""

from __future__ import annotations

import pytest

from imagebuild_nb.render import installers as I
from imagebuild_nb.spec.secrets import SecretMount


@pytest.mark.parametrize(("value", "rendered"), [
    ("/opt/tools/bin:$PATH", '"/opt/tools/bin:$PATH"'),
    ("${HOME}/x", '"${HOME}/x"'),
    ("${NOPE:-dflt}", '"${NOPE:-dflt}"'),
    ("\\$HOME", '"\\$HOME"'),  # \$ keeps a literal dollar
    ("$(id) `id` $1 $", '"\\$(id) `id` \\$1 \\$"'),  # inert: ENV runs no shell
    ('say "hi" a\\b', '"say \\"hi\\" a\\\\b"'),
])
def test_env_values_expand_like_a_dockerfile_env_line_and_nothing_else(value: str,
                                                                        rendered: str) -> None:
    assert I.env_value(value) == rendered


def test_uv_installs_into_the_venv_with_the_stage_mounted_and_a_cache() -> None:
    line = I.install(["--", "six"], installer="uv", buildkit=True)
    assert line.startswith("RUN --mount=type=cache,target=/var/cache/imagebuild-nb/uv")
    assert f"--mount=type=bind,from={I.UV_STAGE}" in line
    assert line.endswith("uv pip install --python /opt/venv/bin/python -- six")


def test_pip_is_kept_as_the_alternative() -> None:
    line = I.install(["--", "six"], installer="pip", buildkit=True)
    assert "/opt/venv/bin/python -m pip install -- six" in line and "uv" not in line
    assert I.pip_options(None, (), True, (), "pip") == ["--pre"]
    assert I.pip_options(None, (), True, (), "uv") == ["--prerelease", "allow"]


def test_secret_reaches_its_step_as_a_mount_and_a_variable_read_from_it() -> None:
    mount = SecretMount.parse("GITHUB_PAT")
    line = I.run("pip download private", [], [mount])
    assert f"--mount=type=secret,id={mount.id},target={mount.mount_path}" in line
    assert f'GITHUB_PAT=\\"$(cat {mount.mount_path})\\"; export GITHUB_PAT' in line
    assert "private" in line


def test_tool_stages_fetch_uv_and_poetry_from_pypi_pinned() -> None:
    stages = I.tool_stages("localhost:5001/library/python:3.11-slim", poetry=True,
                           installer="uv", buildkit=True, ca_dirs=["layers/0"])
    text = "\n".join(stages)
    assert f"AS {I.UV_STAGE}" in text and f"uv=={I.UV_VERSION}" in text
    assert f"AS {I.POETRY_STAGE}" in text and f"poetry=={I.POETRY_VERSION}" in text
    assert 'COPY ["layers/0/", "/tmp/imagebuild-nb-ca/0/"]' in text
    assert I.tool_copies(poetry=True, buildkit=True) == []
    assert len(I.tool_copies(poetry=True, buildkit=False)) == 2


def test_default_installer_is_uv_from_its_own_cached_stage() -> None:
    from imagebuild_nb import Image

    img = Image.from_debian_base(python_version="3.11", name="x").with_pip_packages("six")
    text = img.dockerfile()
    lines = text.splitlines()
    assert lines[1] == f"FROM python:3.11-slim AS {I.UV_STAGE}"
    assert lines[3] == "FROM python:3.11-slim"  # the image itself: no uv inside
    assert lines[-2].endswith("uv pip install --python /opt/venv/bin/python -- six")
    legacy = img.dockerfile(buildkit=False)
    assert f"COPY --from={I.UV_STAGE} {I.UV_HOME} {I.UV_HOME}" in legacy


def test_projects_scripts_labels_and_secrets_render(tmp_path) -> None:
    from imagebuild_nb import Image

    (tmp_path / "pyproject.toml").write_text("[project]\nname='p'\nversion='0'\n")
    (tmp_path / "poetry.lock").write_text("# lock\n")
    script = tmp_path / "job.py"
    script.write_text("# /// script\n# dependencies = ['six']\n# ///\n")
    img = (Image.from_uv_script(script, name="x", python_version="3.11")
           .with_uv_project(tmp_path / "pyproject.toml")
           .with_poetry_project(tmp_path / "pyproject.toml")
           .with_labels({"team": "ml"})
           .with_commands("make", secret_mounts=["TOKEN"]))
    ctx = img.build_context()
    text = ctx.dockerfile
    assert f"AS {I.POETRY_STAGE}" in text
    assert "-- six" in text
    assert 'COPY ["layers/1/", "/opt/imagebuild-nb/projects/1/"]' in text
    assert "uv sync --active --inexact --no-install-project" in text
    assert "poetry install --no-interaction --no-root" in text
    assert 'LABEL "team"="ml"' in text
    assert "--mount=type=secret,id=env-TOKEN-" in text and "export TOKEN" in text
    names = {entry.path for entry in ctx.entries}
    assert {"layers/1/pyproject.toml", "layers/2/pyproject.toml", "layers/2/poetry.lock"} <= names
