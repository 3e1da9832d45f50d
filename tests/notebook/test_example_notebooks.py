"""Every notebook in notebooks/ runs end to end in a real kernel against the real engine.

Each notebook pushes to ``IMAGEBUILD_NB_EXAMPLES_REGISTRY`` (the quickstart to
``QUICKSTART_REGISTRY``); the tests point it at an empty throwaway registry, so the notebooks
really build, and then assert on what their cells showed and on what the registry holds.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import nbformat
import pytest
from nbclient import NotebookClient

from tests.notebook.conftest import cell_html, cell_text
from tests.support.services import Registry

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
EXAMPLES_REGISTRY = "IMAGEBUILD_NB_EXAMPLES_REGISTRY"
pytestmark = [pytest.mark.kernel, pytest.mark.engine, pytest.mark.registry, pytest.mark.slow]


def execute(name: str, env: dict[str, str]) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    run(notebook, env)
    return notebook


def run(notebook: nbformat.NotebookNode, env: dict[str, str]) -> None:
    """Execute in place (outputs stay on ``notebook`` even when a cell fails)."""
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute(env={**os.environ, **env})


def output(notebook: nbformat.NotebookNode, fragment: str, *, nth: int = 0) -> str:
    """The text shown by the ``nth`` code cell whose source contains ``fragment``."""
    cells = [cell for cell in notebook.cells
             if cell.cell_type == "code" and fragment in cell.source]
    assert len(cells) > nth, f"no code cell #{nth} containing {fragment!r}"
    return cell_text(cells[nth])


@pytest.fixture
def embedded_env(jupyter_env, plain_registry, ca_bundle) -> dict[str, str]:
    """What scripts/embedded-env.sh sets for the README's first command."""
    return {"IMAGEBUILD_NB_BASE_IMAGE_MIRROR": plain_registry.host,
            "IMAGEBUILD_NB_NETWORK_MODE": "host",
            "IMAGEBUILD_NB_EXTRA_CA_FILES": str(ca_bundle)}


@pytest.fixture
def examples_registry(make_registry, docker_client: docker.DockerClient,
                      busybox_base: str) -> Iterator[Registry]:
    """An empty registry for the example notebooks; their images leave the engine afterwards."""
    registry = make_registry()
    yield registry
    for image in docker_client.images.list():
        for tag in image.tags:
            if tag.startswith(f"{registry.host}/"):
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    docker_client.images.remove(tag, force=True)


@pytest.fixture
def examples_env(embedded_env, examples_registry: Registry) -> dict[str, str]:
    env = {**embedded_env, EXAMPLES_REGISTRY: examples_registry.host}
    for name in ("IMAGEBUILD_NB_REMOTE_URL", "IMAGEBUILD_NB_REMOTE_TOKEN"):
        env[name] = ""  # the remote notebook starts its own service
    return env


def tags(registry: Registry, repository: str) -> list[str]:
    response = httpx.get(f"{registry.url}/v2/{repository}/tags/list", timeout=10)
    response.raise_for_status()
    return sorted(response.json().get("tags") or [])


def test_quickstart_builds_checks_and_runs_an_image(embedded_env, make_registry, docker_client,
                                                    remove_images):
    registry = make_registry()  # empty: the notebook must really build and push
    notebook = execute("quickstart.ipynb", {**embedded_env, "QUICKSTART_REGISTRY": registry.host})
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    texts = [cell_text(cell) for cell in code]
    assert "missing" in texts[2]
    assert "Dry run of" in texts[3] and "FROM " in texts[3] and "apt-get install" in texts[3]
    assert texts[4].startswith("Built in ") and "status='built'" in texts[4]  # steps, result
    assert "ExistenceResult exists" in texts[5]
    final = texts[6]
    assert "analysis ready: MODE=demo run, six" in final
    uri = final.split("URI:")[1].split()[0]
    digest = final.split("DIGEST:")[1].split()[0]
    remove_images.append(uri)
    repository, tag = uri.split("/", 1)[1].rsplit(":", 1)
    assert registry.manifest_digest(repository, tag) == digest


def test_widget_tour_goes_missing_built_exists_and_cancels(examples_env, examples_registry):
    notebook = execute("widget_tour.ipynb", examples_env)
    uri = output(notebook, "img.uri").strip().strip("'")
    assert uri.startswith(f"{examples_registry.host}/examples/widget-tour:")
    shown = output(notebook, "w = %imagebuild widget img")
    assert uri in shown and "not-checked" in shown  # the widget's plain text before any click
    assert "after Check: missing" in output(notebook, "w.check_button.click()")
    assert "after a dry-run Build: dry-run" in output(notebook, "w.dry_run.value = True")
    built = output(notebook, "w.build_button.click()", nth=1)
    digest = re.search(r"after Build: built (sha256:[0-9a-f]{64})", built)
    assert digest, built
    assert "last log lines:" in built
    assert f"after Check: exists {digest[1]}" in output(notebook, "w.check_button.click()", nth=1)
    assert "after Cancel: cancelled" in output(notebook, "w2.cancel_button.click()")
    repository, tag = uri.split("/", 1)[1].rsplit(":", 1)
    assert examples_registry.manifest_digest(repository, tag) == digest[1]
    assert tags(examples_registry, repository) == [tag]  # the cancelled build pushed nothing
    final = output(notebook, "print(repr(w))")
    assert f"<ImageBuildWidget {uri} [exists" in final and "[cancelled]" in final


def test_dockerfile_cell_builds_checks_and_derives_the_tag_from_the_context(
        examples_env, examples_registry):
    notebook = execute("dockerfile_cell.ipynb", examples_env)
    listing = output(notebook, 'Path("greeter").iterdir()')
    assert "greeter/greeting.txt: Hello from a Dockerfile cell!" in listing
    built = output(notebook, "%%imagebuild build --name examples/greeter")
    assert "status='built'" in built and "COPY greeting.txt greet.sh /app/" in built
    ran = output(notebook, "built = _")
    assert "says: Hello from a Dockerfile cell!" in ran
    uri = ran.split("URI:")[1].split()[0]
    assert uri.startswith(f"{examples_registry.host}/examples/greeter:")
    exists = output(notebook, "%%imagebuild exists --name examples/greeter")
    assert f"ExistenceResult exists {uri}" in exists
    edited = output(notebook, "%%imagebuild exists --name examples/greeter", nth=1)
    assert "ExistenceResult missing" in edited and uri not in edited
    assert "new tag: True" in output(notebook, "edited = _")
    identity = output(notebook, "Image.from_dockerfile(")
    assert "same image as the edited cell's: True" in identity
    assert "notes.md edited, same tag: True" in identity
    assert "greet.sh edited, new tag:  True" in identity
    repository, tag = uri.split("/", 1)[1].rsplit(":", 1)
    assert tags(examples_registry, repository) == [tag]


def _kill_started_service(notebook: nbformat.NotebookNode) -> bool:
    """Kill the service the notebook started, if it still runs; True when one had to be killed."""
    text = "".join(cell_text(cell) for cell in notebook.cells if cell.cell_type == "code")
    found = re.search(r"started the build service \(pid (\d+)\)", text)
    if not found:
        return False
    pid = int(found[1])
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if b"imagebuild" not in cmdline:
        return False  # gone, and the pid reused
    os.kill(pid, signal.SIGKILL)
    return True


def test_remote_builds_notebook_builds_follows_cancels_and_stops_its_service(
        examples_env, examples_registry):
    notebook = nbformat.read(NOTEBOOKS / "remote_builds.ipynb", as_version=4)
    try:
        run(notebook, examples_env)
    finally:
        leaked = _kill_started_service(notebook)
    assert not leaked, "the notebook left its build service running"
    started = output(notebook, "atexit.register(stop_service)")
    assert re.search(r"started the build service \(pid \d+\) at http://127\.0\.0\.1:\d+", started)
    assert "it answers:" in started
    configured = output(notebook, "ImageBuildEngine.configure(")
    assert "remote builds go to http://127.0.0.1:" in configured
    submitted = output(notebook, "run_id, run_url = build.remote_run")
    run_id = re.search(r"run id: (\S+)", submitted)
    assert run_id and "status: running" in submitted, submitted
    assert re.search(rf"page:   http://127\.0\.0\.1:\d+/imagebuild/builds/{run_id[1]}", submitted)
    followed = output(notebook, "for event in build.follow():")
    assert re.search(r"step 1/\d+: FROM ", followed) and "finished" in followed, followed
    digest = re.search(r"built (sha256:[0-9a-f]{64})", followed)
    assert digest, followed
    assert "page: 200 shows the digest: True" in followed
    again = output(notebook, "ImageBuildEngine.check(img)")
    assert again.startswith("exists\n") and "ExistenceResult exists" in again, again
    cancelled = output(notebook, "slow_build = ")
    assert "ticking; cancelling" in cancelled and "status: cancelled" in cancelled, cancelled
    assert "the service says: cancelled" in output(notebook, "client.get(slow_id)")
    widget = output(notebook, "widget = ImageBuildWidget(img, engine=engine)")
    page = r"http://127\.0\.0\.1:\d+/imagebuild/builds/\w+"
    assert re.search(rf"widget: built on {page}", widget), widget
    assert "build service stopped" in output(notebook, "stop_service()\nprint")
    # The cancelled build pushed nothing.
    assert len(tags(examples_registry, "examples/remote")) == 1


def test_remote_builds_notebook_uses_a_given_service_and_leaves_it_running(
        examples_env, examples_registry, tmp_path):
    from tests.service.conftest import running_services

    with running_services(tmp_path) as start:
        service = start(options=("--ImageBuildServiceApp.network_mode=host",))
        env = {**examples_env, "IMAGEBUILD_NB_REMOTE_URL": service.url,
               "IMAGEBUILD_NB_REMOTE_TOKEN": service.token}
        notebook = execute("remote_builds.ipynb", env)
        assert f"using the build service at {service.url}" in output(
            notebook, "atexit.register(stop_service)")
        assert "status: cancelled" in output(notebook, "slow_build = ")
        assert "the external service keeps running" in output(notebook, "stop_service()\nprint")
        assert service.process is not None and service.process.poll() is None
        with service.http() as http:
            assert http.get("/imagebuild/api/health").status_code == 200


def test_many_environments_checks_a_dozen_and_builds_only_the_missing(
        examples_env, examples_registry):
    notebook = execute("many_environments.ipynb", examples_env)
    assert "12 environments" in output(notebook, "environments = {}")
    prebuilt = output(notebook, '("data-prod", "ml-prod", "web-prod")')
    assert prebuilt.count(" built") == 3, prebuilt
    first = output(notebook, "results = checker.check_many(")
    assert "checked 12 images" in first
    assert first.count(" exists ") == 3 and first.count(" missing ") == 9, first
    html = cell_html(next(c for c in notebook.cells if "results = checker.check_many(" in c.source))
    assert html.count("<tr>") == 13 and "ml-prod" in html
    built = output(notebook, "builds = {name:")
    assert "built 9 of 12" in built and "data-prod" not in built
    again = output(notebook, "again = checker.check_many(")
    assert "all exist: True" in again and again.count(" exists ") == 12
    assert "data-dev: exists" in output(notebook, 'environments["data-dev"]')
    for team in ("data", "ml", "web"):
        assert len(tags(examples_registry, f"examples/env-{team}")) == 4
