"""Flyte's own image definitions (flyte-sdk examples/ and docstrings), as real flyte.Image objects,
checked, dry-run and built by the real engine, each image's content verified with ``docker run``.

Each case names its source in flyte-sdk. Two substitutions, because this machine reaches PyPI
and Debian but no container registry: a base on ghcr.io/Docker Hub is the Docker Hub name our
mirror serves (``busybox:latest``, ``python:3.11-slim`` and ``python:3.11-slim-bookworm``, all
through IMAGEBUILD_NB_BASE_IMAGE_MIRROR); and heavy packages (litellm, pandas, torch, flyte
itself) are swapped for small ones where only the install path matters. Everything else (the
calls, their arguments, env values with ``$PATH``, folders, scripts, projects) is as written.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import flyte
import pytest

from imagebuild_nb import ImageBuildEngine, as_image
from imagebuild_nb.settings import Settings
from tests.support.services import DEBIAN_PYTHON_IMAGE, PLAIN_REGISTRY

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.slow]

BB = "busybox:latest"  # served by the mirror as localhost:5001/library/busybox:latest
PY = "python:3.11-slim"  # the Debian/python base, served the same way
REG = PLAIN_REGISTRY
RUN_ID = uuid.uuid4().hex[:8]
SCRIPT = """# /// script
# requires-python = ">=3.11"
# dependencies = ["six"]
# ///
import six
print(six.__name__)
"""


@dataclass(frozen=True)
class Case:
    source: str  # where in flyte-sdk the definition comes from
    make: Callable[[Path], flyte.Image]
    checks: tuple[tuple[str, str], ...]  # (shell command in the image, expected in its output)


def _named(base: str, name: str) -> flyte.Image:
    return flyte.Image.from_base(base).clone(name=f"flyte-ex/{name}-{RUN_ID}", registry=REG,
                                             extendable=True)


CASES = [
    Case("examples/advanced/container_task.py: Image.from_base('alpine:3.18')",
         lambda d: flyte.Image.from_base(BB), (("echo ok", "ok"),)),
    Case("examples/image/clone_existing_image.py: from_base(...).clone(registry=, name=)",
         lambda d: flyte.Image.from_base(BB).clone(registry=REG, name=f"flyte-ex/clone-{RUN_ID}"),
         (("echo ok", "ok"),)),
    Case("examples/image/reuse_venv.py: .with_env_vars({'UV_PYTHON': ...})",
         lambda d: _named(BB, "reuse-venv").with_env_vars({"UV_PYTHON": "/app/venv/bin/python"}),
         (("echo $UV_PYTHON", "/app/venv/bin/python"),)),
    Case("examples/byoi_guide/GUIDE.md: "
         ".with_commands([...]).with_env_vars({'PYTHONPATH': '/app'})",
         lambda d: _named(BB, "byoi").with_commands(["mkdir -p /opt/venv/bin"])
         .with_env_vars({"PYTHONPATH": "/app"}),
         (("echo $PYTHONPATH; ls -d /opt/venv/bin", "/app\n/opt/venv/bin"),)),
    Case("examples/connectors/databricks_example.py: two with_env_vars layers",
         lambda d: _named(BB, "databricks")
         .with_env_vars({"UV_PYTHON": "/databricks/python3/bin/python"})
         .with_env_vars({"AWS_REGION": "us-west-1", "LOG_LEVEL": "10"}),
         (("echo $UV_PYTHON $AWS_REGION $LOG_LEVEL",
           "/databricks/python3/bin/python us-west-1 10"),)),
    Case("examples/genai/sglang/sglang_app.py: PATH with $PATH (expanded, not literal)",
         lambda d: _named(BB, "sglang").with_env_vars(
             {"CUDA_HOME": "/usr/local/cuda-12.8",
              "PATH": "/root/.cargo/bin:/usr/local/cuda-12.8/bin:$PATH"}),
         (("echo $PATH; echo $CUDA_HOME", "/root/.cargo/bin:/usr/local/cuda-12.8/bin:/bin\n"
                                          "/usr/local/cuda-12.8"),)),
    Case("flyte docs: with_workdir('/app') then with_source_folder(src) lands as ./src",
         lambda d: _named(BB, "workdir").with_workdir("/app").with_source_folder(d / "src"),
         (("pwd; cat src/app.py", "/app\nprint('hello from src')"),)),
    Case("examples/deploy_patterns/full_build/README.md option A: copy_contents_only=False",
         lambda d: _named(BB, "full-a").with_workdir("/root").with_source_folder(
             d / "project", copy_contents_only=False),
         (("cat /root/project/dep.py", "def foo"),)),
    Case("examples/deploy_patterns/full_build/README.md option B: copy_contents_only=True",
         lambda d: _named(BB, "full-b").with_workdir("/root").with_source_folder(
             d / "project", copy_contents_only=True),
         (("cat /root/dep.py; ls /root/project 2>&1 || true", "def foo"),)),
    Case("examples/image/multi_image.py image4: with_source_file(Makefile).with_env_vars(...)",
         lambda d: _named(BB, "multi4").with_workdir("/w").with_source_file(d / "Makefile")
         .with_env_vars({"hello": "world3"}),
         (("cat /w/Makefile; echo $hello", "all:\n\techo hi\nworld3"),)),
    Case("flyte docstring with_source_file(list of files, dst)",
         lambda d: _named(BB, "files").with_source_file([d / "Makefile", d / "notes.txt"],
                                                        dst="/etc/app/"),
         (("ls /etc/app", "Makefile\nnotes.txt"),)),
    Case("examples/image/multi_image.py image3: with_commands(['pwd', 'ls -al'])",
         lambda d: _named(BB, "multi3").with_workdir("/srv")
         .with_commands(["pwd", "ls -al"]).with_commands("touch /srv/ran"),
         (("ls /srv", "ran"),)),
    Case("examples/basics/using_dockerfiles.py: from_dockerfile(file, name, registry, 2 platforms)",
         lambda d: flyte.Image.from_dockerfile(d / "docker" / "Dockerfile.example", registry=REG,
                                               name=f"flyte-ex/dockerfile-{RUN_ID}",
                                               platform=("linux/amd64", "linux/arm64")),
         (("cat /greeting", "hello from a Dockerfile"),)),
    Case("examples/image/base_image.py: with_env_vars + with_dockerignore(path)",
         lambda d: _named(BB, "dockerignore").with_env_vars({"hello": "world1"})
         .with_dockerignore(d / "ignore" / ".dockerignore")
         .with_source_folder(d / "ignore", dst="/data"),
         (("echo $hello; ls /data", "world1\nkeep.txt"),)),
    Case("flyte docstring: Image.from_debian_base().with_pip_packages('requests', 'numpy')",
         lambda d: _named(PY, "pip").with_pip_packages("six", "attrs"),
         (("python -c 'import six, attrs; print(six.__name__, attrs.__name__)'", "six attrs"),)),
    Case("examples/image/multi_image.py image3: with_requirements(requirements.txt)",
         lambda d: _named(PY, "requirements").with_requirements(d / "requirements.txt"),
         (("python -c 'import six; print(six.__file__)'", "/opt/venv/"),)),
    Case("examples/image/uv_image.py: from_uv_script(__file__, name=, registry=)",
         lambda d: flyte.Image.from_uv_script(d / "job.py", name=f"flyte-ex/uv-script-{RUN_ID}",
                                              registry=REG).clone(base_image=PY),
         (("python -c 'import six; print(six.__name__)'; pwd; echo $PYTHONPATH",
           "six\n/home/flyte\n/root"),)),
    Case("examples/image/uv_project.py: with_uv_project(pyproject_file=...)",
         lambda d: _named(PY, "uv-project").with_uv_project(pyproject_file=d / "uvproj" /
                                                            "pyproject.toml"),
         (("python -c 'import six; print(six.__name__)'", "six"),)),
    Case("flyte _image.py with_poetry_project(pyproject_file) docstring (poetry.lock beside it)",
         lambda d: _named(PY, "poetry").with_poetry_project(pyproject_file=d / "poetry" /
                                                            "pyproject.toml"),
         (("python -c 'import six; print(six.__file__)'", "/opt/venv/"),)),
    Case("examples/ml/rfe.py: .with_apt_packages('ca-certificates')",
         lambda d: _named(PY, "apt").with_apt_packages("ca-certificates"),
         (("dpkg -s ca-certificates | grep Status", "install ok installed"),)),
    Case("examples/image/private_base_image.py: clone(registry, name, registry_secret, "
         "extendable).with_apt_packages(...)",
         lambda d: flyte.Image.from_base(PY).clone(registry=REG, name=f"flyte-ex/private-{RUN_ID}",
                                                   registry_secret="pingsutw", extendable=True)
         .with_apt_packages("ca-certificates"),
         (("echo ok", "ok"),)),
    Case("flyte _image.py from_debian_base(install_flyte=False): user, workdir, venv env",
         lambda d: flyte.Image.from_debian_base(install_flyte=False, name=f"flyte-ex/debian-"
                                                f"{RUN_ID}", registry=REG)
         .with_pip_packages("six"),
         (("id flyte; pwd; echo $VIRTUAL_ENV $PYTHONPATH; which python; "
           "python -c 'import six; print(six.__name__)'",
           "/home/flyte\n/opt/venv /root\n/opt/venv/bin/python\nsix"),)),
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("flyte-examples")
    (d / "src").mkdir()
    (d / "src" / "app.py").write_text("print('hello from src')\n")
    (d / "project").mkdir()
    (d / "project" / "dep.py").write_text("def foo():\n    return 2\n")
    (d / "Makefile").write_text("all:\n\techo hi\n")
    (d / "notes.txt").write_text("notes\n")
    (d / "requirements.txt").write_text("six\n")
    (d / "job.py").write_text(SCRIPT)
    (d / "docker").mkdir()
    (d / "docker" / "Dockerfile.example").write_text(
        f"FROM {REG}/library/busybox:latest\nRUN echo 'hello from a Dockerfile' > /greeting\n")
    (d / "ignore").mkdir()
    (d / "ignore" / "keep.txt").write_text("keep\n")
    (d / "ignore" / "drop.log").write_text("drop\n")
    (d / "ignore" / ".dockerignore").write_text("*.log\n.dockerignore\n")
    shutil.copytree(Path(__file__).parent / "data" / "poetry-project", d / "poetry")
    (d / "uvproj").mkdir()
    (d / "uvproj" / "pyproject.toml").write_text(
        "[project]\nname = 'uvproj'\nversion = '0.1.0'\nrequires-python = '>=3.11'\n"
        "dependencies = ['six']\n")
    return d


@pytest.fixture(scope="module")
def engine(ca_bundle: Path) -> Iterator[ImageBuildEngine]:
    """The real engine with this machine's settings (mirror, host network, the proxy's CA)."""
    engine = ImageBuildEngine(Settings.from_env(extra_ca_files=(str(ca_bundle),),
                                                network_mode="host",
                                                base_image_mirror=REG))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def bookworm_alias(docker_client: docker.DockerClient, plain_registry: object) -> str:
    """Flyte's from_debian_base(install_flyte=False) starts from python:3.11-slim-bookworm: the
    mirror serves our Debian/python image under that name too."""
    name = f"{REG}/library/python:3.11-slim-bookworm"
    docker_client.images.get(DEBIAN_PYTHON_IMAGE).tag(name)
    for line in docker_client.api.push(name, stream=True, decode=True):
        assert "error" not in line, line
    return name


def test_at_least_twenty_flyte_definitions() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES, ids=[c.source.split(":")[0] + f"#{i}"
                                             for i, c in enumerate(CASES)])
def test_flyte_definition_checks_dry_runs_builds_and_runs(
        case: Case, tree: Path, engine: ImageBuildEngine, bookworm_alias: str,
        docker_client: docker.DockerClient) -> None:
    fimg = case.make(tree)
    converted = as_image(fimg)
    if converted.is_default_base:
        assert engine.image_exists(fimg) == fimg.uri  # Flyte: an unmodified image exists
    else:
        assert engine.check(fimg).state == "missing"
        assert engine.image_exists(fimg) is None
    dry = engine.build(fimg, dry_run=True)
    assert dry.status == "dry-run" and dry.dry_run is not None
    assert dry.dry_run.origin and dry.dry_run.origin.startswith("flyte.Image")
    build = engine.build(fimg)
    assert build.status in ("built", "exists"), build
    assert build.uri == converted.uri
    if build.built:
        assert engine.image_exists(fimg) == converted.uri
    image = converted.uri if not converted.is_default_base else \
        f"{REG}/library/{converted.uri}"
    for command, expected in case.checks:
        out = subprocess.run(["docker", "run", "--rm", "--entrypoint", "/bin/sh", image, "-c",
                              command], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert expected in out.stdout, (command, out.stdout)
    if build.built:
        docker_client.images.remove(converted.uri, force=True)
