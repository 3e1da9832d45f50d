"""Import probes and commands in containers of real images on the real engine; every
container is gone afterwards, also when the caller is interrupted mid-stream."""

from __future__ import annotations

import uuid
from pathlib import Path

import docker
import pytest

from imagebuild_nb import Image, ImageBuildEngine
from imagebuild_nb.errors import ImageBuildError
from imagebuild_nb.settings import Settings
from imagebuild_nb.verify import LABEL, run, verify

pytestmark = [pytest.mark.engine, pytest.mark.registry]


def _mine(client: docker.DockerClient, key: str) -> list[object]:
    return client.containers.list(all=True, filters={"label": f"test.verify={key}"})


@pytest.fixture
def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture(scope="module")
def six_115(python_base: str, ca_bundle: Path) -> str:
    """A Debian/Python image with six 1.15.0 (this test process has another six)."""
    settings = Settings.from_env().replace(base_image_mirror="localhost:5001",
                                           network_mode="host", extra_ca_files=(str(ca_bundle),))
    image = Image.from_debian_base(python_version="3.11", name=f"test/verify-{uuid.uuid4().hex[:8]}"
                                   ).with_pip_packages("six==1.15.0")
    ImageBuildEngine(settings).build(image)
    yield image.uri
    docker.from_env().images.remove(image.uri, force=True)


def test_verify_reports_same_different_imports_and_fails_per_module(
        six_115: str, docker_client: docker.DockerClient, key: str) -> None:
    import six
    import yaml  # noqa: F401  (in this environment, not in the image)

    result = verify(six_115, ["six", "yaml", "json"], labels={"test.verify": key})
    checks = result.by_module()
    assert checks["six"].state == "different"
    assert (checks["six"].expected, checks["six"].found) == (six.__version__, "1.15.0")
    assert checks["yaml"].state == "fails"
    assert "ModuleNotFoundError: No module named 'yaml'" in checks["yaml"].error
    assert checks["json"].state == "imports"  # the standard library: no version to compare
    assert not result.ok
    assert "six" in str(result) and "<table>" in result._repr_html_()
    assert _mine(docker_client, key) == []


def test_run_streams_output_returns_exit_code_with_the_folder_read_only(
        python_base: str, docker_client: docker.DockerClient, key: str, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("notebook data\n")
    seen: list[str] = []
    code = run(python_base, "cat data.txt; touch new.txt || echo read-only; exit 7",
               mount=tmp_path, output=seen.append, labels={"test.verify": key})
    assert code == 7
    text = "".join(seen)
    assert "notebook data" in text and "read-only" in text
    assert not (tmp_path / "new.txt").exists()
    assert run(python_base, ["python3", "-c", "print('list form')"], mount=tmp_path,
               output=seen.append, labels={"test.verify": key}) == 0
    assert "list form" in "".join(seen)
    assert _mine(docker_client, key) == []


def test_an_interrupt_while_streaming_removes_the_container(
        python_base: str, docker_client: docker.DockerClient, key: str, tmp_path: Path) -> None:
    def interrupted(_: str) -> None:
        assert len(_mine(docker_client, key)) == 1  # it runs while we stream
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(python_base, "echo started; sleep 120", mount=tmp_path, output=interrupted,
            labels={"test.verify": key})
    assert _mine(docker_client, key) == []


def test_an_image_that_is_not_there_says_build_it_first(key: str) -> None:
    missing = f"localhost:5001/test/not-built-{key[:8]}:1"
    with pytest.raises(ImageBuildError, match="build it first"):
        verify(missing, ["json"], labels={"test.verify": key})


def test_containers_carry_the_verify_label(python_base: str,
                                           docker_client: docker.DockerClient, key: str,
                                           tmp_path: Path) -> None:
    labels: list[str] = []

    def look(_: str) -> None:
        (container,) = _mine(docker_client, key)
        labels.extend(container.labels)

    run(python_base, "echo hi", mount=tmp_path, output=look, labels={"test.verify": key})
    assert LABEL in labels


def test_the_engine_verifies_through_the_same_probe(six_115: str,
                                                     docker_client: docker.DockerClient) -> None:
    result = ImageBuildEngine.verify(six_115, ["six"])
    assert [(c.module, c.state, c.found) for c in result.checks] == [("six", "different",
                                                                      "1.15.0")]
