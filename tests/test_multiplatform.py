"""Real tier: two-platform images (linux/amd64 + linux/arm64 through qemu) with the Docker engine
and with podman, pushed to the real plain registry as one index; existence of an incomplete
index. Tiny busybox images: the arm64 steps run under qemu-user-static.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator

import docker
import httpx
import pytest

from imagebuild_nb import Image, ImageBuildEngine
from imagebuild_nb.build import ImageBuild
from imagebuild_nb.builders import BuildRequest, InMemoryContext
from imagebuild_nb.builders.base import SubmittingBuilder
from imagebuild_nb.builders.docker_engine import engine_platform
from imagebuild_nb.builders.platforms import PerPlatformBuilder, for_request
from imagebuild_nb.builders.select import get_builder
from imagebuild_nb.errors import BuilderUnavailableError, RegistryError, ServiceError
from imagebuild_nb.events import BuildFailed, StepStarted
from imagebuild_nb.progress import text
from imagebuild_nb.progress.follow import follow
from imagebuild_nb.progress.model import Progress
from imagebuild_nb.progress.view import View
from imagebuild_nb.registry.client import RegistryClient
from imagebuild_nb.registry.index import describe, push_index
from imagebuild_nb.settings import Settings
from imagebuild_nb.spec.reference import ImageReference
from tests.service.conftest import (  # noqa: F401 -- fixture
    DOCKER_API_RUNNER,
    ServiceProcess,
    start_service,
)
from tests.support.services import MANIFEST_TYPES, Registry

pytestmark = [pytest.mark.engine, pytest.mark.registry]
TWO = ("linux/amd64", "linux/arm64")
ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


@pytest.fixture(scope="session")
def multiarch_base(busybox_base: str, plain_registry: Registry) -> str:
    """The busybox base, which scripts/multiarch.sh pushes as an amd64 + arm64 index."""
    platforms = _index_platforms(plain_registry, busybox_base)
    if set(TWO) - set(platforms):
        pytest.fail(f"{busybox_base} is not an amd64+arm64 index ({platforms}); run "
                    "scripts/multiarch.sh (scripts/test runs it)")
    return busybox_base


@pytest.fixture
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageBuildEngine]:
    store = tmp_path_factory.mktemp("podman")
    engine = ImageBuildEngine(Settings(network_mode="host", podman_root=str(store / "root"),
                                       podman_runroot=str(store / "run")))
    yield engine
    engine.close()
    if shutil.which("podman"):
        subprocess.run(["podman", "--root", str(store / "root"), "--runroot",
                        str(store / "run"), "system", "reset", "-f"], capture_output=True,
                       timeout=120)


def _manifest(registry: Registry, reference: str) -> tuple[str | None, dict[str, object]]:
    repository, tag = reference.split("/", 1)[1].rsplit(":", 1)
    response = httpx.get(f"{registry.url}/v2/{repository}/manifests/{tag}",
                         headers={"Accept": ", ".join(MANIFEST_TYPES)})
    assert response.status_code == 200, response.text
    return response.headers.get("Docker-Content-Digest"), response.json()


def _index_platforms(registry: Registry, reference: str) -> list[str]:
    _, data = _manifest(registry, reference)
    manifests = data.get("manifests") or []
    assert isinstance(manifests, list)
    return sorted(f"{m['platform']['os']}/{m['platform']['architecture']}" for m in manifests)


def _image(base: str, registry: Registry, what: str) -> Image:
    marker = uuid.uuid4().hex
    return (Image.from_base(base, name=f"test/multi-{what}-{marker[:8]}", registry=registry.host,
                            platform=TWO)
            .with_commands([f"echo {marker} && uname -m > /built-on"]))


def _run(image: str, platform: str, *command: str) -> str:
    done = subprocess.run(["docker", "run", "--rm", "--pull", "always", "--platform", platform,
                           "--network", "none", image, *command],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _remove_repository(image: Image) -> None:
    """Every local image of the test's repository, untagged ones too (a pull of the other
    platform leaves the first one untagged)."""
    name = image.uri.rsplit(":", 1)[0]
    listed = subprocess.run(["docker", "images", "-q", name], capture_output=True, text=True,
                            timeout=60).stdout.split()
    if listed:
        subprocess.run(["docker", "rmi", "-f", *set(listed)], capture_output=True, timeout=120)


def test_docker_engine_builds_one_index_with_both_platforms(
        engine: ImageBuildEngine, multiarch_base: str, plain_registry: Registry,
        docker_client: docker.DockerClient) -> None:
    image = _image(multiarch_base, plain_registry, "docker")
    dry = engine.build(image, dry_run=True).dry_run
    assert dry is not None
    assert "linux/amd64: " in dry.command and "linux/arm64: " in dry.command
    assert "index of linux/amd64, linux/arm64" in dry.command

    result = engine.build(image)
    digest, data = _manifest(plain_registry, image.uri)
    assert result.digest == digest
    assert _index_platforms(plain_registry, image.uri) == list(TWO)
    assert set(result.platform_digests) == set(TWO)
    listed = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
              for m in data["manifests"]}  # type: ignore[union-attr]
    assert listed == result.platform_digests
    stages = {e.stage for e in result.events if isinstance(e, StepStarted)}
    assert set(TWO) <= stages  # per-platform progress
    try:
        for platform, machine in ARCH.items():
            # The binaries run are the platform's own (arm64 under qemu), at build and run time.
            assert _run(image.uri, platform, "uname", "-m") == machine
            assert _run(image.uri, platform, "cat", "/built-on") == machine
    finally:
        _remove_repository(image)
    # Found as a whole afterwards: nothing to build.
    assert engine.check(image).exists
    assert engine.build(image).status == "exists"


class _Frames:
    """A follow() sink keeping every text frame drawn while the build runs."""

    def __init__(self) -> None:
        self.frames: list[list[str]] = []

    def event(self, event: object, progress: object) -> None:
        pass

    def draw(self, view: View) -> None:
        self.frames.append(text.frame(view, width=200))

    def note(self, message: str) -> None:
        pass


def test_the_build_view_shows_each_platforms_own_progress(
        engine: ImageBuildEngine, multiarch_base: str, plain_registry: Registry) -> None:
    image = _image(multiarch_base, plain_registry, "progress").with_commands(["echo two"])
    sink = _Frames()
    build = engine.build(image, wait=False)
    try:
        view = follow(build, sink, interval=0.05).view()
    finally:
        _remove_repository(image)
    assert build.status == "built"
    assert [(p.platform, p.status, p.done, p.total) for p in view.platforms] == [
        ("linux/amd64", "built", 3, 3), ("linux/arm64", "built", 3, 3)]
    final = text.frame(view, width=200)
    for platform in TWO:
        start = next(i for i, line in enumerate(final) if line.startswith(f"{platform}  Built"))
        rows = [line.split()[1] for line in final[start + 1:start + 6]]
        assert rows == ["prepare", "[1/3]", "[2/3]", "[3/3]", "push"], final
    # While arm64 ran under qemu, amd64 already read as built, and arm64 had its own states.
    during = [frame for frame in sink.frames
              if any(line.startswith("linux/amd64  Built 3/3") for line in frame)
              and any(line.startswith("linux/arm64  Building") for line in frame)]
    assert during, sink.frames[-3:]
    arm64 = during[-1][next(i for i, line in enumerate(during[-1])
                            if line.startswith("linux/arm64"))]
    assert "/3" in arm64


def test_podman_builds_one_index_with_both_platforms(
        engine: ImageBuildEngine, multiarch_base: str, plain_registry: Registry) -> None:
    image = _image(multiarch_base, plain_registry, "podman")
    dry = engine.build(image, builder="local-podman", dry_run=True).dry_run
    assert dry is not None and "--platform linux/amd64,linux/arm64" in dry.command
    assert "--manifest" in dry.command and "manifest push --all" in dry.command
    result = engine.build(image, builder="local-podman")
    view = Progress().feed_all(result.events).view()  # podman's [platform] steps, own rows
    assert sorted((p.platform, p.status, p.done, p.total) for p in view.platforms) == [
        ("linux/amd64", "built", 2, 2), ("linux/arm64", "built", 2, 2)]
    assert (view.steps[-1].label, view.steps[-1].platform) == ("index", "")
    digest, _ = _manifest(plain_registry, image.uri)
    assert result.digest == digest
    assert _index_platforms(plain_registry, image.uri) == list(TWO)
    assert set(result.platform_digests) == set(TWO)
    try:
        assert _run(image.uri, "linux/arm64", "cat", "/built-on") == "aarch64"
        assert _run(image.uri, "linux/amd64", "cat", "/built-on") == "x86_64"
    finally:
        _remove_repository(image)


def test_an_index_missing_a_platform_is_incomplete_and_rebuilt(
        engine: ImageBuildEngine, multiarch_base: str, plain_registry: Registry) -> None:
    image = _image(multiarch_base, plain_registry, "incomplete")
    engine.build(image)
    # Replace the tag with an index holding only the amd64 image.
    reference = ImageReference.parse(image.uri)

    async def amd64_only() -> None:
        async with RegistryClient() as client:
            await push_index(client, reference, [("linux/amd64", f"{reference.tag}-linux-amd64")])

    asyncio.run(amd64_only())
    assert _index_platforms(plain_registry, image.uri) == ["linux/amd64"]
    engine.checker.invalidate()
    found = engine.check(image)
    assert found.state == "missing"
    assert found.reason.startswith("exists, incomplete: linux/arm64 missing")
    assert engine.image_exists(image) is None

    rebuilt = engine.build(image)
    assert rebuilt.status == "built" and rebuilt.reason == "missing"
    assert _index_platforms(plain_registry, image.uri) == list(TWO)
    _remove_repository(image)


def test_multi_platform_without_a_registry_says_what_to_do(multiarch_base: str) -> None:
    request = BuildRequest(dockerfile=f"FROM {multiarch_base}\n",
                           context=InMemoryContext({"Dockerfile": f"FROM {multiarch_base}\n"}),
                           tags=(f"test/no-registry:{uuid.uuid4().hex[:8]}",),
                           platform="linux/amd64,linux/arm64")
    builder = for_request(get_builder("local", Settings()), request, Settings())
    assert isinstance(builder, PerPlatformBuilder)
    events = list(builder.build(request, threading.Event()))
    assert len(events) == 1 and isinstance(events[0], BuildFailed)
    assert "needs a registry" in events[0].message and "local-podman" in events[0].lines[0]


def test_the_remote_builder_hands_every_platform_to_the_service() -> None:
    remote = get_builder("remote", Settings(remote_url="http://127.0.0.1:9"))
    assert isinstance(remote, SubmittingBuilder)
    for platform in ("linux/amd64,linux/arm64", "linux/arm64"):
        request = BuildRequest(dockerfile="FROM x\n", context=InMemoryContext({}),
                               tags=("localhost:5001/x:1",), platform=platform)
        assert for_request(remote, request, Settings()) is remote  # the service builds the index


def _record(service: ServiceProcess, build: ImageBuild) -> dict[str, object]:
    assert build.remote_run is not None
    response = httpx.get(f"{service.url}/imagebuild/api/builds/{build.remote_run.id}",
                         headers=service.headers, timeout=30)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def test_a_remote_build_for_two_platforms_is_one_index_the_service_built(
        start_service: Callable[..., ServiceProcess], multiarch_base: str,  # noqa: F811 -- fixture
        plain_registry: Registry) -> None:
    service = start_service()  # the default runner: the host's BuildKit driver
    engine = ImageBuildEngine(Settings(remote_url=service.url, remote_token=service.token))
    image = _image(multiarch_base, plain_registry, "remote")
    result = engine.build(image, builder="remote")
    assert result.status == "built" and result.builder == "remote"
    digest, _ = _manifest(plain_registry, image.uri)
    assert result.digest == digest
    assert _index_platforms(plain_registry, image.uri) == list(TWO)
    assert set(result.platform_digests) == set(TWO)
    assert _record(service, result)["platform"] == "linux/amd64,linux/arm64"
    try:
        for platform, machine in ARCH.items():
            assert _run(image.uri, platform, "cat", "/built-on") == machine
    finally:
        _remove_repository(image)
    remote_check = ImageBuildEngine(Settings(remote_url=service.url, remote_token=service.token,
                                             default_builder="remote")).check(image)
    assert remote_check.exists  # the service sees the whole index


def test_a_remote_build_for_one_foreign_platform_is_built_for_that_platform(
        start_service: Callable[..., ServiceProcess], multiarch_base: str,  # noqa: F811 -- fixture
        plain_registry: Registry) -> None:
    # Before, the service was never told the platform: an amd64 image under an arm64 tag.
    service = start_service()
    engine = ImageBuildEngine(Settings(remote_url=service.url, remote_token=service.token))
    marker = uuid.uuid4().hex
    image = (Image.from_base(multiarch_base, name=f"test/arm64-{marker[:8]}",
                             registry=plain_registry.host, platform="linux/arm64")
             .with_commands([f"echo {marker} && uname -m > /built-on"]))
    result = engine.build(image, builder="remote")
    assert result.status == "built"
    try:
        assert _run(image.uri, "linux/arm64", "cat", "/built-on") == "aarch64"
    finally:
        _remove_repository(image)
    assert _record(service, result)["platform"] == "linux/arm64"


def test_a_service_on_the_engine_api_refuses_a_two_platform_build_saying_why(
        start_service: Callable[..., ServiceProcess], multiarch_base: str,  # noqa: F811 -- fixture
        plain_registry: Registry) -> None:
    service = start_service(options=(DOCKER_API_RUNNER,))
    engine = ImageBuildEngine(Settings(remote_url=service.url, remote_token=service.token))
    image = _image(multiarch_base, plain_registry, "legacy")
    with pytest.raises(ServiceError) as refused:
        engine.build(image, builder="remote")
    assert refused.value.status_code == 400
    assert "docker-api driver (legacy builder), which cannot build several platforms " \
           "(linux/amd64,linux/arm64)" in str(refused.value)


def test_index_document_follows_its_entries() -> None:
    from imagebuild_nb.registry.index import IndexEntry, index_document

    body, media_type = index_document([
        IndexEntry("linux/amd64", "sha256:" + "a" * 64, 5,
                   "application/vnd.docker.distribution.manifest.v2+json"),
        IndexEntry("linux/arm64/v8", "sha256:" + "b" * 64, 6,
                   "application/vnd.docker.distribution.manifest.v2+json")])
    assert media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
    document = json.loads(body)
    assert document["mediaType"] == media_type
    assert document["manifests"][1]["platform"] == {"architecture": "arm64", "os": "linux",
                                                    "variant": "v8"}


def test_the_legacy_builder_is_refused_for_two_platforms() -> None:
    request = BuildRequest(dockerfile="FROM x\n", context=InMemoryContext({}),
                           tags=("localhost:5001/x:1",), platform="linux/amd64,linux/arm64")
    legacy = get_builder("local", Settings(local_driver="docker-api"))
    with pytest.raises(BuilderUnavailableError, match="legacy builder") as caught:
        for_request(legacy, request, Settings())
    assert "local_driver='buildkit'" in str(caught.value.hint)


def test_the_legacy_builder_builds_its_engines_platform_and_refuses_another(
        multiarch_base: str, docker_client: docker.DockerClient) -> None:
    # It would take the base already in the engine's store whatever its platform: before, a
    # linux/arm64 build came out amd64 under the tag.
    legacy = get_builder("local", Settings(local_driver="docker-api"))
    own = engine_platform(docker_client.api)
    foreign = "linux/amd64" if own == "linux/arm64" else "linux/arm64"
    outcomes = {}
    for platform in (own, foreign):
        dockerfile = f"FROM {multiarch_base}\nRUN echo {uuid.uuid4().hex} && uname -m\n"
        tag = f"test/legacy-platform:{uuid.uuid4().hex[:8]}"
        request = BuildRequest(dockerfile=dockerfile, tags=(tag,), platform=platform,
                               context=InMemoryContext({"Dockerfile": dockerfile}))
        outcomes[platform] = list(legacy.build(request, threading.Event()))[-1]
        if outcomes[platform].kind == "finished":
            docker_client.images.remove(tag, force=True)
    assert outcomes[own].kind == "finished"
    refused = outcomes[foreign]
    assert isinstance(refused, BuildFailed)
    assert refused.message == (f"the docker-api driver (the legacy builder) builds for the "
                               f"engine's own platform ({own}) only, so it cannot build {foreign}")
    assert "local_driver='buildkit'" in refused.lines[0]


def test_an_index_never_claims_a_platform_its_image_is_not_for(
        multiarch_base: str, plain_registry: Registry) -> None:
    # The busybox base's amd64 image, offered as arm64: refused, nothing pushed.
    amd64 = ImageReference.parse(f"{multiarch_base}-linux-amd64")
    target = amd64.with_tag(f"wrong-platform-{uuid.uuid4().hex[:8]}")  # an index names its repo's

    async def claim() -> None:
        async with RegistryClient() as client:
            entry = await describe(client, amd64, "linux/amd64", amd64.tag or "")
            assert entry.platform == "linux/amd64"
            with pytest.raises(RegistryError, match="built for linux/amd64, not linux/arm64"):
                await describe(client, amd64, "linux/arm64", amd64.tag or "")
            with pytest.raises(RegistryError, match="not linux/arm64"):
                await push_index(client, target, [("linux/arm64", amd64.tag or "")])

    asyncio.run(claim())
    repository, tag = target.repository, target.tag
    assert httpx.head(f"{plain_registry.url}/v2/{repository}/manifests/{tag}").status_code == 404
