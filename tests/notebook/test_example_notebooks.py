"""Every notebook in notebooks/ runs end to end in a real kernel against the real engine."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.notebook.conftest import cell_text

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
pytestmark = [pytest.mark.kernel, pytest.mark.engine, pytest.mark.registry, pytest.mark.slow]


def execute(name: str, env: dict[str, str]) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute(env={**os.environ, **env})
    return notebook


@pytest.fixture
def embedded_env(jupyter_env, plain_registry, ca_bundle) -> dict[str, str]:
    """What scripts/embedded-env.sh sets for the README's first command."""
    return {"IMAGEBUILD_NB_BASE_IMAGE_MIRROR": plain_registry.host,
            "IMAGEBUILD_NB_NETWORK_MODE": "host",
            "IMAGEBUILD_NB_EXTRA_CA_FILES": str(ca_bundle)}


def test_quickstart_builds_checks_and_runs_an_image(embedded_env, make_registry, docker_client, remove_images):
    registry = make_registry()  # empty: the notebook must really build and push
    notebook = execute("quickstart.ipynb", {**embedded_env, "QUICKSTART_REGISTRY": registry.host})
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    texts = [cell_text(cell) for cell in code]
    assert "missing" in texts[2]
    assert "Dry run of" in texts[3] and "FROM " in texts[3] and "apt-get install" in texts[3]
    assert "Building" in texts[4] and "status='built'" in texts[4]
    assert "ExistenceResult exists" in texts[5]
    final = texts[6]
    assert "analysis ready: MODE=demo run, six" in final
    uri = final.split("URI:")[1].split()[0]
    digest = final.split("DIGEST:")[1].split()[0]
    remove_images.append(uri)
    repository, tag = uri.split("/", 1)[1].rsplit(":", 1)
    assert registry.manifest_digest(repository, tag) == digest
