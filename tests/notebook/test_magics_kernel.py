"""%imagebuild in real kernels (nbclient) against the real engine and registry."""

from __future__ import annotations

import os
import signal
import threading
import time

import docker
import nbformat
import pytest
from nbclient import NotebookClient

from tests.notebook.conftest import cell_html, cell_text
from tests.support.services import containers_with

pytestmark = [pytest.mark.kernel, pytest.mark.engine, pytest.mark.registry]

SETUP = """\
%load_ext imagebuild_nb
from imagebuild_nb import Image, ImageBuildEngine
%config ImageBuildMagics.local_driver = {driver!r}
"""


def test_check_build_check_dry_run_force_and_dockerfile_cell(
    run_notebook, busybox_base, plain_registry, unique_name, remove_images, docker_client, tmp_path
):
    registry = plain_registry.host
    (tmp_path / "payload.txt").write_text(f"from the notebook folder {unique_name}\n")
    cells = [
        SETUP.format(driver="auto"),
        f"img = Image.from_base({busybox_base!r}, name={unique_name!r}, registry={registry!r})"
        ".with_commands(['echo hello from a magic > /hello'])",
        "%imagebuild exists img",
        "dry = %imagebuild build img --dry-run\ndry",
        "r = %imagebuild build img\nprint('RESULT', r.status, r.digest)",
        "%imagebuild exists img",
        "again = %imagebuild build img\nprint('AGAIN', again.status, again.built)",
        "forced = %imagebuild build img --force;\n"
        "print('FORCED', forced.status, forced.built, forced.digest)",
        f"%%imagebuild build --name {unique_name}-cell --registry {registry}\n"
        f"FROM {busybox_base}\nCOPY payload.txt /payload.txt\nRUN cat /payload.txt\n",
        f"%%imagebuild exists --name {unique_name}-cell --registry {registry}\n"
        f"FROM {busybox_base}\nCOPY payload.txt /payload.txt\nRUN cat /payload.txt\n",
        "print(img.uri)",
    ]
    notebook = run_notebook(cells, cwd=tmp_path)
    text = [cell_text(cell) for cell in notebook.cells]
    uri = text[10].strip()
    remove_images.extend([uri])
    repository, tag = uri.split("/", 1)[1].rsplit(":", 1)

    assert "missing" in text[2]
    # Dry run: the Dockerfile is shown and nothing was built or pushed.
    assert f"FROM {busybox_base}" in text[3] and "echo hello from a magic" in text[3]
    # The build streamed its log into the cell, then the result.
    assert "echo hello from a magic" in text[4]
    status, digest = text[4].split("RESULT ")[1].split()
    assert status == "built"
    # The check after the build saw the pushed digest.
    assert "exists" in text[5] and digest[:19] in text[5] + cell_html(notebook.cells[5])
    assert "AGAIN exists False" in text[6]
    forced_status, forced_built, forced_digest = text[7].split("FORCED ")[1].split()
    assert (forced_status, forced_built) == ("built", "True")
    assert plain_registry.manifest_digest(repository, tag) == forced_digest
    # RUN output (not cached), folded under its step in the cell's view
    assert f"from the notebook folder {unique_name}" in cell_html(notebook.cells[8])
    assert "exists" in text[9]
    output = docker_client.containers.run(uri, ["cat", "/hello"], remove=True)
    assert output == b"hello from a magic\n"


def test_dry_run_touches_nothing(run_notebook, busybox_base, plain_registry, unique_name,
                                 docker_client):
    cells = [
        SETUP.format(driver="auto"),
        f"img = Image.from_base({busybox_base!r}, name={unique_name!r}, "
        f"registry={plain_registry.host!r})"
        ".with_commands(['echo never built'])",
        "%imagebuild build img --dry-run",
        "print(img.uri)",
    ]
    notebook = run_notebook(cells)
    uri = cell_text(notebook.cells[3]).strip()
    assert "echo never built" in cell_text(notebook.cells[2])
    assert plain_registry.manifest_digest(*uri.split("/", 1)[1].rsplit(":", 1)) is None
    # Other tests share the engine: look for this spec's image, not at the whole image list.
    assert not docker_client.images.list(name=unique_name)


def test_failing_build_shows_step_and_log_tail_without_a_traceback(run_notebook, busybox_base,
                                                                   unique_name):
    cells = [
        SETUP.format(driver="auto"),
        f"img = Image.from_base({busybox_base!r}, name={unique_name!r})"
        ".with_commands(['echo about to fail && exit 7'])",
        "%imagebuild build img",
    ]
    notebook = run_notebook(cells)
    text = cell_text(notebook.cells[2])
    assert "Traceback" not in text and "UsageError" not in text
    assert text.startswith("Failed at step 2/2 after ") and "about to fail" in text
    assert "(exit code 7)" in cell_html(notebook.cells[2])  # the returned build's card


def _sleeping_build_container(client: docker.DockerClient, marker: str) -> bool:
    return bool(containers_with(client, marker, running_only=True))


def test_kernel_interrupt_cancels_the_build_and_leaves_no_container(
    jupyter_env, tmp_path, busybox_base, unique_name, docker_client
):
    containers_before = set(containers_with(docker_client, ''))
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(SETUP.format(driver="docker-api")),
        nbformat.v4.new_code_cell(
            f"img = Image.from_base({busybox_base!r}, name={unique_name!r})"
            f".with_commands(['sleep 120 && echo {unique_name}'])"),
        nbformat.v4.new_code_cell("%imagebuild build img"),
    ]
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    interrupted = threading.Event()

    def interrupt_once_sleeping() -> None:
        deadline = time.monotonic() + 60
        while (time.monotonic() < deadline
               and not _sleeping_build_container(docker_client, unique_name)):
            time.sleep(0.2)
        # What the frontend's interrupt does for a local kernel: SIGINT to its process.
        os.kill(client.km.provisioner.pid, signal.SIGINT)
        interrupted.set()

    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells[:2]):
            client.execute_cell(cell, index)
        threading.Thread(target=interrupt_once_sleeping, daemon=True).start()
        started = time.monotonic()
        client.execute_cell(notebook.cells[2], 2)
    assert interrupted.is_set()
    assert time.monotonic() - started < 60  # not the 120 s the RUN step would take
    assert "cancelled" in cell_text(notebook.cells[2])
    deadline = time.monotonic() + 20
    while set(containers_with(docker_client, '')) - containers_before:
        assert time.monotonic() < deadline, "the build left a container behind"
        time.sleep(0.2)
