"""Real tier: the rendered Dockerfiles build on the real engine and do what the spec says.

One spec uses every layer type; it is built once with docker-py (legacy builder, plain form)
and once with the BuildKit CLI (cache-mount form), on the local Debian/python base reached
through the base-image mirror setting, with host networking and the host CA. A second spec
carries hostile input and proves it rendered inertly.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from imagebuild_nb import Image
from imagebuild_nb.labels import SPEC_HASH_LABEL
from imagebuild_nb.render import BuildContext
from imagebuild_nb.settings import Settings

pytestmark = [pytest.mark.engine, pytest.mark.slow]

BUILDKIT_CLI = "/usr/bin/docker"  # Debian's 20.10 CLI: BuildKit without buildx
TRICKY = {
    "SPACES": "two  words ",
    "QUOTES": "it's \"quoted\"",
    # As in a Dockerfile ENV line, $NAME expands (HOME is not in the image's config: empty);
    # \\$ keeps a dollar, and command substitution stays inert text.
    "SUBST": "$(touch /tmp/pwned-subst) \\${HOME} \\$HOME $HOME",
    "TICKS": "`touch /tmp/pwned-ticks`",
    "SEMI": "a; touch /tmp/pwned-semi",
    "BACKSLASH": "back\\slash\\",
}
EXPECTED = {**TRICKY, "SUBST": "$(touch /tmp/pwned-subst) ${HOME} $HOME "}
HOSTILE_NAME = 'a;b $(touch pwned) `x` "q" \'s\'.txt'


def build_api(client: docker.DockerClient, ctx: BuildContext) -> str:
    log = []
    for event in client.api.build(fileobj=ctx.tar_stream(), custom_context=True,
                                  dockerfile=ctx.dockerfile_path, tag=ctx.uri,
                                  network_mode="host", decode=True, rm=True, forcerm=True,
                                  buildargs=ctx.build_args):
        log.append(event.get("stream") or event.get("status") or "")
        if "error" in event:
            pytest.fail(f"build failed: {event['error']}\n{''.join(log)[-3000:]}")
    return "".join(log)


def build_cli(ctx: BuildContext) -> str:
    if not Path(BUILDKIT_CLI).exists():
        pytest.fail(f"{BUILDKIT_CLI} (BuildKit-capable docker CLI) is missing; "
                    "run scripts/setup.sh")
    feeder = tempfile.TemporaryFile()
    with feeder:
        ctx.write_tar(feeder)  # type: ignore[arg-type]
        feeder.seek(0)
        result = subprocess.run(
            [BUILDKIT_CLI, "build", "--progress=plain", "--network", "host",
             "-f", ctx.dockerfile_path, "-t", ctx.uri, "-"],
            stdin=feeder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
            env={**os.environ, "DOCKER_BUILDKIT": "1"})
    output = result.stdout.decode(errors="replace")
    if result.returncode != 0:
        pytest.fail(f"BuildKit build failed:\n{output[-3000:]}")
    return output


def run(client: docker.DockerClient, image: str, script: str) -> str:
    return client.containers.run(image, ["sh", "-c", script], remove=True,
                                 network_mode="none").decode()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    (root / "src" / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "src" / "pkg" / "hello.py").write_text("print('hello from src')\n")
    (root / "src" / "pkg" / "__pycache__" / "hello.cpython-311.pyc").write_bytes(b"junk")
    (root / "src" / "notes.md").write_text("ignored by .dockerignore\n")
    (root / "src" / "hostile").mkdir()
    (root / "src" / "hostile" / HOSTILE_NAME).write_text("inert\n")
    (root / "requirements.txt").write_text("six\n")
    (root / ".dockerignore").write_text("*.md\n")
    (root / "config.ini").write_text("[x]\n")
    return root


@pytest.fixture(scope="module")
def settings(python_base: str) -> Settings:
    mirror = python_base.split("/library/", 1)[0]
    return Settings(base_image_mirror=mirror)


@pytest.fixture(scope="module")
def spec(project: Path, ca_bundle: Path) -> Image:
    return (Image.from_debian_base(python_version="3.11", name="test/render-every-layer")
            .with_ca_certificates(ca_bundle)
            .with_apt_packages("jq")
            .with_pip_packages("six", 'wheel; python_version >= "3"')
            .with_requirements(project / "requirements.txt")
            .with_dockerignore(project / ".dockerignore")
            .with_source_folder(project / "src", dst="/app/src")
            .with_source_file(project / "config.ini", dst="/etc/app/")
            .with_env_vars(TRICKY)
            .with_workdir("/app")
            .with_commands(["python -c 'import six, wheel' && touch /tmp/commands-ran",
                            "echo one\necho two > /tmp/two.txt"]))


@pytest.fixture(scope="module")
def built(docker_client: docker.DockerClient, spec: Image, settings: Settings) -> Iterator[str]:
    ctx = spec.build_context(buildkit=False, settings=settings)
    build_api(docker_client, ctx)
    yield ctx.uri
    docker_client.images.remove(ctx.uri, force=True)


def test_pip_and_apt_packages_work(docker_client: docker.DockerClient, built: str) -> None:
    out = run(docker_client, built, "python -c 'import six; print(six.__version__)' && "
              "echo '{\"a\": 1}' | jq .a && which python && ls /tmp")
    lines = out.split()
    assert "1" in lines and "/opt/venv/bin/python" in lines and "commands-ran" in lines
    assert "two.txt" in lines


def test_env_vars_have_exact_values(docker_client: docker.DockerClient, built: str) -> None:
    code = f"import json, os; print(json.dumps({{k: os.environ.get(k) for k in {sorted(TRICKY)}}}))"
    out = docker_client.containers.run(built, ["python", "-c", code], remove=True).decode()
    assert json.loads(out) == EXPECTED
    assert "pwned" not in run(docker_client, built, "ls /tmp")


def test_workdir_sources_and_label(docker_client: docker.DockerClient, built: str,
                                   spec: Image) -> None:
    out = run(docker_client, built, "pwd; find /app/src /etc/app -type f | sort; "
              "python /app/src/pkg/hello.py")
    assert out.splitlines() == [
        "/app", "/app/src/hostile/" + HOSTILE_NAME, "/app/src/pkg/hello.py",
        "/etc/app/config.ini", "hello from src"]
    labels = docker_client.images.get(built).labels
    assert labels[SPEC_HASH_LABEL] == spec.spec_hash
    assert built == spec.uri


def test_ca_is_trusted_by_python_in_the_image(docker_client: docker.DockerClient,
                                              built: str) -> None:
    out = run(docker_client, built, "echo $SSL_CERT_FILE $PIP_CERT; "
              "grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt")
    bundle, _, count = out.split()
    assert bundle == "/etc/ssl/certs/ca-certificates.crt" and int(count) > 0


def test_buildkit_form_builds_the_same_spec(docker_client: docker.DockerClient, spec: Image,
                                            settings: Settings) -> None:
    ctx = spec.build_context(buildkit=True, settings=settings)
    assert "--mount=type=cache" in ctx.dockerfile
    uri = ctx.uri.rsplit(":", 1)[0] + ":buildkit-" + ctx.spec_hash[:12]
    ctx = BuildContext(**{**ctx.__dict__, "uri": uri})
    try:
        build_cli(ctx)
        out = run(docker_client, uri, "python -c 'import six' && jq --version && echo \"$SUBST\" "
                  "&& ls /var/lib/apt/lists | wc -l")
        version, subst, lists = out.splitlines()
        assert version.startswith("jq-") and subst == EXPECTED["SUBST"]
        assert lists == "0"  # apt lists lived in a cache mount, not in the image
        assert docker_client.images.get(uri).labels[SPEC_HASH_LABEL] == spec.spec_hash
    finally:
        docker_client.images.remove(uri, force=True)


def test_dockerfile_image_builds_with_label_and_args(docker_client: docker.DockerClient,
                                                     tmp_path: Path, busybox_base: str) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM {busybox_base}\nARG GREETING\nCOPY . /ctx\nRUN echo \"$GREETING\" > /greeting\n")
    (tmp_path / "data.txt").write_text("d\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref\n")
    img = Image.from_dockerfile(tmp_path / "Dockerfile", name="test/render-dockerfile",
                                build_args={"GREETING": "hi $(id)"})
    ctx = img.build_context(buildkit=False)
    try:
        build_api(docker_client, ctx)
        out = run(docker_client, ctx.uri, "cat /greeting; ls -a /ctx")
        assert out.split() == ["hi", "$(id)", ".", "..", ".imagebuild-nb", "Dockerfile",
                               "data.txt"]
        assert docker_client.images.get(ctx.uri).labels[SPEC_HASH_LABEL] == img.spec_hash
    finally:
        docker_client.images.remove(ctx.uri, force=True)
