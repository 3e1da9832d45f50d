"""From a kernel's environment to a proven image, in real kernels (nbclient) on the real engine.

The kernel runs in a throwaway venv (tests/support/kernel_venv.py): PyYAML (imported as
``yaml``), six, an editable local package, ipykernel and this project.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import docker
import nbformat
import pytest
from nbclient import NotebookClient

from tests.notebook.conftest import cell_text
from tests.support.kernel_venv import EDITABLE_NAME, KernelVenv, kernel_venv
from tests.support.services import containers_with

pytestmark = [pytest.mark.kernel, pytest.mark.engine, pytest.mark.slow]


@pytest.fixture(scope="session")
def venv() -> KernelVenv:
    return kernel_venv()


@pytest.fixture
def kernel(venv: KernelVenv, jupyter_env: Path) -> str:
    return venv.install_kernelspec(jupyter_env / "data", "frozen-venv")


def _client(cells: list[str], kernel: str, cwd: Path) -> NotebookClient:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    return NotebookClient(notebook, timeout=300, kernel_name=kernel, allow_errors=True,
                          resources={"metadata": {"path": str(cwd)}})


def _marked(text: str, mark: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith(mark)]
    assert lines, f"no {mark!r} line in:\n{text}"
    return lines[-1][len(mark):].strip()


def test_freeze_build_verify_and_run_in_a_real_kernel(
        kernel: str, tmp_path: Path, unique_name: str, remove_images: list[str],
        docker_client: docker.DockerClient) -> None:
    (tmp_path / "input.txt").write_text("from the notebook folder\n")
    marker = uuid.uuid4().hex
    cells = [
        "%load_ext imagebuild_nb\nimport sys\nprint('PY', sys.version_info[:2])",
        # requests came only as a dependency of this project (docker-py), not by the user.
        "import yaml, six, ibnb_editable_demo, requests",
        f"%imagebuild freeze frozen --image-name {unique_name}",
        "print('URI', frozen.uri)\nprint('LAYERS', [type(l).__name__ for l in frozen.layers])\n"
        "print('UV', 'uv pip install' in frozen.dockerfile())",
        "from imagebuild_nb import Image, ImageBuildEngine\n"
        "build = ImageBuildEngine.build(frozen)\nprint('BUILT', build.status)",
        "result = %imagebuild verify frozen\nprint(result)\n"
        "print('STATES', sorted((c.module, c.state, c.found) for c in result.checks))",
        # Same environment, same tag; one more distribution changes it.
        f"again = Image.from_environment(name={unique_name!r})\n"
        "print('SAME', again.uri == frozen.uri)",
        "from imagebuild_nb.errors import FreezeError\n"
        "try:\n    Image.from_environment(name='refused', on_local='error')\n"
        "except FreezeError as error:\n    print('REFUSED', error.distributions)\n"
        "    print(error)",
        f"code = %imagebuild run frozen -- sh -c \"cat input.txt; python3 -c 'import "
        f"ibnb_editable_demo as d; print(d.hello())'; echo {marker}; exit 5\"\n"
        "print('CODE', code)",
        f"w = %imagebuild freeze frozen_w --widget --image-name {unique_name}\n"
        "w.freeze_button.click()\nprint('WIDGET', type(w).__name__, w.image.uri == frozen.uri)",
    ]
    client = _client(cells, kernel, tmp_path)
    notebook = client.execute()
    texts = [cell_text(cell) for cell in notebook.cells]
    assert _marked(texts[0], "PY") == "(3, 11)"  # the local Debian base's python3
    uri = _marked(texts[3], "URI")
    remove_images.append(uri)
    assert _marked(texts[3], "LAYERS") == "['PipPackages', 'SourceFolder', 'PipPackages']"
    note = _marked(texts[2], "Left out as kernel tooling (or only needed by it), though imported:")
    assert "requests (requests)" in note and "--include DIST" in texts[2]
    assert _marked(texts[3], "UV") == "True"
    assert _marked(texts[4], "BUILT") == "built", texts[4]
    # Every imported module of the kernel's installs, with the kernel's version.
    assert _marked(texts[5], "STATES") == str(sorted([
        ("ibnb_editable_demo", "same", "0.3.1"), ("six", "same", "1.16.0"),
        ("yaml", "same", "6.0.2")]))
    assert _marked(texts[6], "SAME") == "True"
    assert _marked(texts[7], "REFUSED") == f"('{EDITABLE_NAME}',)"
    assert "exclude=" in texts[7]
    assert "from the notebook folder" in texts[8]
    assert "hello from the editable package" in texts[8]
    assert _marked(texts[8], "CODE") == "5"
    assert containers_with(docker_client, marker) == []
    assert _marked(texts[9], "WIDGET") == "FreezeWidget True"


def test_interrupting_run_leaves_no_container(
        kernel: str, tmp_path: Path, python_base: str, docker_client: docker.DockerClient,
        remove_images: list[str]) -> None:
    marker = uuid.uuid4().hex
    cells = ["%load_ext imagebuild_nb",
             f"%imagebuild run {python_base} -- sh -c \"sleep 120; echo {marker}\"",
             "print('STILL ALIVE')"]
    client = _client(cells, kernel, tmp_path)
    interrupted = threading.Event()

    def interrupt_once_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not containers_with(docker_client, marker,
                                                                  running_only=True):
            time.sleep(0.2)
        os.kill(client.km.provisioner.pid, signal.SIGINT)  # what the frontend's interrupt does
        interrupted.set()

    with client.setup_kernel():
        client.execute_cell(client.nb.cells[0], 0)
        threading.Thread(target=interrupt_once_running, daemon=True).start()
        started = time.monotonic()
        client.execute_cell(client.nb.cells[1], 1)
        client.execute_cell(client.nb.cells[2], 2)
    assert interrupted.is_set()
    assert time.monotonic() - started < 60  # not the 120 s sleep
    assert "KeyboardInterrupt" in cell_text(client.nb.cells[1])
    assert "STILL ALIVE" in cell_text(client.nb.cells[2])
    assert containers_with(docker_client, marker) == []
