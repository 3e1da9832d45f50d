"""ImageBuildEngine on the real engine and registry, through both local drivers: a spec with
every common layer is built, pushed and runs, is found again without a build, gets a new tag
when a file changes; a dry run changes nothing; cancel, Ctrl-C, a failing step, a local-only
image."""

from __future__ import annotations

import _thread
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from imagebuild_nb import Image
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.errors import BuildFailedError
from imagebuild_nb.events import LogLine
from imagebuild_nb.labels import SPEC_HASH_LABEL
from imagebuild_nb.spec.reference import ImageReference
from tests.support.engine_parts import DRIVERS, real_settings
from tests.support.services import containers_with


class Built:
    def __init__(self, engine: ImageBuildEngine, image: Image, build: Any, project: Path) -> None:
        self.engine, self.image, self.build, self.project = engine, image, build, project


def _spec(project: Path, registry: str, name: str) -> Image:
    return (Image.from_debian_base(python_version="3.11", name=name, registry=registry)
            .with_apt_packages("jq")
            .with_pip_packages("six")
            .with_requirements(project / "requirements.txt")
            .with_source_folder(project / "src", dst="/app/src")
            .with_env_vars({"MODE": "prod 'quoted'"})
            .with_workdir("/app"))


@pytest.fixture(scope="module", params=DRIVERS)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          python_base: str, plain_registry: Any, ca_bundle: Path) -> Iterator[Built]:
    driver = request.param
    project = tmp_path_factory.mktemp(f"project-{driver}")
    (project / "src").mkdir()
    (project / "src" / "app.py").write_text(f"MARK = {uuid.uuid4().hex!r}\n")
    (project / "requirements.txt").write_text("six\n")
    engine = ImageBuildEngine(real_settings(driver, ca_bundle, plain_registry.host))
    image = _spec(project, plain_registry.host, f"test/engine-{driver}")
    yield Built(engine, image, engine.build(image), project)
    engine.close()


def _run(uri: str, command: str) -> str:
    return subprocess.run(["docker", "run", "--rm", uri, "sh", "-c", command], check=True,
                          capture_output=True, text=True, timeout=120).stdout


@pytest.mark.engine
@pytest.mark.registry
def test_spec_is_built_pushed_and_runs(built: Built, plain_registry: Any) -> None:
    build = built.build
    assert build.built and build.driver in DRIVERS
    # The docker-api driver puts the build CA into the image, so into the tag: read the built one.
    reference = ImageReference.parse(build.uri)
    assert build.digest == plain_registry.manifest_digest(reference.repository, reference.tag)
    mark = (built.project / "src" / "app.py").read_text().split("=")[1].strip()
    out = _run(build.uri, "python -c 'import six, sys; sys.path.insert(0, \"src\"); import app; "
                          "print(app.MARK)'; jq --version; echo \"$MODE\"; pwd")
    assert out.split("\n")[:4] == [mark.strip("'"), "jq-1.6", "prod 'quoted'", "/app"]


@pytest.mark.engine
@pytest.mark.registry
def test_second_build_is_found_existing_without_an_engine_build(
        built: Built, monkeypatch: pytest.MonkeyPatch, docker_client: docker.DockerClient) -> None:
    calls: list[str] = []
    builder = __import__("imagebuild_nb.engine", fromlist=["get_builder"]).get_builder(
        "local", built.engine.settings)
    monkeypatch.setattr(builder, "build", lambda *a, **k: calls.append("build") or iter(()))
    since = time.time()
    again = built.engine.build(built.image)
    assert again.found and again.digest == built.build.digest and calls == []
    events = docker_client.events(since=int(since) - 1, until=int(time.time()) + 1,
                                      decode=True, filters={"type": "image"})
    repository = built.image.reference.name
    assert not [e for e in events if e.get("Action") in ("tag", "push", "build")
                and e.get("timeNano", 0) >= since * 1e9 and repository in str(e)]


@pytest.mark.engine
@pytest.mark.registry
def test_editing_requirements_builds_a_new_tag(built: Built) -> None:
    requirements = built.project / "requirements.txt"
    original = requirements.read_text()
    try:
        requirements.write_text(original + "# pinned again\n")
        rebuilt = built.engine.build(built.image)
        assert rebuilt.built and rebuilt.uri != built.build.uri
    finally:
        requirements.write_text(original)


@pytest.mark.engine
@pytest.mark.registry
def test_dry_run_changes_nothing(built: Built, plain_registry: Any,
                                 docker_client: docker.DockerClient) -> None:
    image = built.image.with_env_vars({"DRY": uuid.uuid4().hex})
    # Other suites build in parallel: look at what this dry run could have made, not at all.
    ours = {"label": f"{SPEC_HASH_LABEL}={image.spec_hash}"}
    images_before = sorted(i.id for i in docker_client.images.list(name=image.reference.name))
    tags_url = f"{plain_registry.url}/v2/{image.reference.repository}/tags/list"
    tags_before = httpx.get(tags_url).json()
    plan = built.engine.build(image, dry_run=True)
    assert plan.status == "dry-run" and plan.dry_run is not None
    assert "DRY" in plan.dry_run.dockerfile
    assert any(name.endswith("requirements.txt") for name in plan.dry_run.context_files)
    assert any(name.endswith("src/app.py") or name.endswith("/app.py")
               for name in plan.dry_run.context_files)
    assert plan.dry_run.driver == built.build.driver and plan.uri in plan.dry_run.command
    assert sorted(i.id for i in docker_client.images.list(name=image.reference.name)) \
        == images_before
    assert not docker_client.images.list(all=True, filters=ours)
    assert httpx.get(tags_url).json() == tags_before


@pytest.mark.engine
@pytest.mark.parametrize("driver", DRIVERS)
def test_cancel_without_waiting_leaves_no_containers(
        driver: str, busybox_base: str, make_engine: Any, docker_client: docker.DockerClient
) -> None:
    marker = uuid.uuid4().hex
    engine = make_engine(driver)
    image = Image.from_base(busybox_base, name=f"test/cancel-{marker[:8]}").with_commands(
        [f"echo started-{marker} && sleep 60"])
    build = engine.build(image, wait=False)
    started = threading.Event()
    build.subscribe(lambda e: isinstance(e, LogLine) and f"started-{marker}" in e.text
                    and started.set())
    assert started.wait(60), build.logs
    began = time.monotonic()
    build.cancel()
    build.wait(timeout=30, raise_on_error=False)
    assert build.status == "cancelled" and time.monotonic() - began < 10
    assert not containers_with(docker.from_env(), marker)
    assert not docker_client.images.list(name=image.reference.name)


@pytest.mark.engine
def test_keyboard_interrupt_while_waiting_cancels_and_cleans_up(
        busybox_base: str, make_engine: Any) -> None:
    marker = uuid.uuid4().hex
    engine = make_engine("docker-api")
    image = Image.from_base(busybox_base, name=f"test/interrupt-{marker[:8]}").with_commands(
        [f"echo started-{marker} && sleep 60"])
    build = engine.build(image, wait=False)
    build.subscribe(lambda e: isinstance(e, LogLine) and f"started-{marker}" in e.text
                    and threading.Timer(0.2, _thread.interrupt_main).start())
    with pytest.raises(KeyboardInterrupt):
        build.wait(timeout=60)
    assert build.status == "cancelled" and not containers_with(docker.from_env(), marker)


@pytest.mark.engine
@pytest.mark.parametrize("driver", DRIVERS)
def test_failing_run_raises_with_step_exit_code_and_tail(
        driver: str, busybox_base: str, make_engine: Any) -> None:
    engine = make_engine(driver)
    image = Image.from_base(busybox_base, name=f"test/fail-{uuid.uuid4().hex[:8]}").with_commands(
        ["echo about-to-fail && exit 4"])
    with pytest.raises(BuildFailedError) as caught:
        engine.build(image)
    error = caught.value
    assert error.exit_code == 4 and "echo about-to-fail && exit 4" in (error.step or "")
    assert "about-to-fail" in error.log_tail
    assert "about-to-fail" in str(error)


@pytest.mark.engine
def test_local_only_image_stays_in_the_engine(busybox_base: str, make_engine: Any,
                                              remove_images: list[str]) -> None:
    engine = make_engine("docker-api")
    image = Image.from_base(busybox_base, name=f"test/local-{uuid.uuid4().hex[:8]}").with_commands(
        ["echo local > /where"])
    remove_images.append(image.uri)
    first = engine.build(image)
    remove_images.append(first.uri)  # the docker-api driver's build CA is part of the tag
    assert first.built and first.image_id and first.digest is None
    assert _run(first.uri, "cat /where").strip() == "local"
    assert engine.build(image).found

