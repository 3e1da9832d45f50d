"""ImageBuildEngine: the build() rules (fast tier, fake builder and checker) and the real tier
(both drivers, real engine and registries, a spec with every common layer)."""

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
from imagebuild_nb.builders.base import BuildRequest
from imagebuild_nb.builders.context import InMemoryContext
from imagebuild_nb.builders.target import BuildTarget
from imagebuild_nb.checkers import ExistenceResult
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.errors import BuilderUnavailableError, BuildFailedError, ImageBuildError
from imagebuild_nb.events import BuildEvent, BuildFinished, BuildStarted, LogLine, StepStarted
from imagebuild_nb.labels import SPEC_HASH_LABEL
from imagebuild_nb.settings import Settings
from imagebuild_nb.spec.reference import ImageReference
from tests.support.services import containers_with

# -- fast tier -----------------------------------------------------------------------------------


class FakeBuilder:
    name, driver = "local", "fake"

    def __init__(self, delay: float = 0.0) -> None:
        self.requests: list[BuildRequest] = []
        self.delay = delay

    def ensure_available(self) -> None:
        pass

    def describe(self, request: BuildRequest) -> str:
        return f"fake build {request.primary_tag}"

    def build(self, request: BuildRequest, cancel: threading.Event) -> Iterator[BuildEvent]:
        self.requests.append(request)
        yield StepStarted(number=1, total=1, instruction="RUN true")
        if cancel.wait(self.delay):
            return
        yield BuildFinished(uri=request.primary_tag, digest="sha256:" + "1" * 64, pushed=True)


class FakeChecker:
    def __init__(self, state: str, reason: str | None = None) -> None:
        self.state, self.reason, self.calls = state, reason, 0

    def check(self, ref: str, **_: Any) -> ExistenceResult:
        self.calls += 1
        digest = "sha256:" + "2" * 64 if self.state == "exists" else None
        return ExistenceResult(ref, self.state, digest, (), self.reason, "fake", 0.0)  # type: ignore[arg-type]

    def invalidate(self, ref: Any = None) -> int:
        return 0


def _engine(monkeypatch: pytest.MonkeyPatch, state: str, *, reason: str | None = None,
            delay: float = 0.0, **settings: Any) -> tuple[ImageBuildEngine, FakeBuilder, FakeChecker]:
    builder, checker = FakeBuilder(delay), FakeChecker(state, reason)
    # The engine's parts are injected: no module global is patched.
    engine = ImageBuildEngine(Settings(**settings), builders={"local": builder},
                              checker=checker)  # type: ignore[arg-type]
    return engine, builder, checker


def _target(tag: str = "1") -> BuildTarget:
    return BuildTarget(uri=f"localhost:5001/fast/demo:{tag}",
                       dockerfiles={"plain": "FROM busybox\n"}, context=InMemoryContext({}))


def test_existing_image_is_returned_without_a_build(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, builder, _ = _engine(monkeypatch, "exists")
    build = engine.build(_target())
    assert build.found and not build.built and build.digest == "sha256:" + "2" * 64
    assert builder.requests == []


def test_missing_image_is_built_and_events_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, builder, _ = _engine(monkeypatch, "missing")
    build = engine.build(_target())
    assert build.built and len(builder.requests) == 1 and not builder.requests[0].no_cache
    started = build.events[0]
    assert isinstance(started, BuildStarted) and started.reason == "missing"
    assert [e.seq for e in build.events] == list(range(1, len(build.events) + 1))


def test_latest_is_always_built_and_force_skips_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, builder, checker = _engine(monkeypatch, "exists")
    assert engine.build(_target("latest")).built
    forced = engine.build(_target(), force=True)
    assert forced.built and builder.requests[-1].no_cache and checker.calls == 0


def test_unknown_existence_builds_and_says_why_or_fails_when_strict(
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine, builder, _ = _engine(monkeypatch, "unknown", reason="unreachable: refused")
    build = engine.build(_target())
    assert build.built and "unreachable: refused" in build.reason
    strict, builder, _ = _engine(monkeypatch, "unknown", reason="denied: 403",
                                 unknown_existence_policy="fail")
    with pytest.raises(ImageBuildError, match="denied: 403"):
        strict.build(_target())
    assert builder.requests == []


def test_image_exists_keeps_the_seed_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for state, expected in (("exists", True), ("missing", False), ("unknown", True)):
        engine, _, _ = _engine(monkeypatch, state, reason="timed out")
        assert (engine.image_exists(_target()) is not None) is expected
    engine, _, checker = _engine(monkeypatch, "missing")
    assert engine.image_exists(_target("latest")) == "localhost:5001/fast/demo:latest"
    assert checker.calls == 0


def test_identical_concurrent_builds_run_once(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, builder, _ = _engine(monkeypatch, "missing", delay=0.5)
    handles = [engine.build(_target("sf"), wait=False) for _ in range(3)]
    threads = [threading.Thread(target=engine.build, args=(_target("sf"),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(h) for h in handles}) == 1 and len(builder.requests) == 1
    assert engine.build(_target("sf")).built and len(builder.requests) == 2  # later: new build


class GatedChecker(FakeChecker):
    """Holds every existence check until released, so other calls can join the first."""

    def __init__(self, state: str, reason: str | None = None) -> None:
        super().__init__(state, reason)
        self.entered, self.release = threading.Event(), threading.Event()

    def check(self, ref: str, **kwargs: Any) -> ExistenceResult:
        self.entered.set()
        self.release.wait(30)
        return super().check(ref, **kwargs)


def _joined(key: tuple[str, str], count: int) -> None:
    from imagebuild_nb.engine import _flights

    deadline = time.monotonic() + 30
    while _flights.joiners(key) < count:
        assert time.monotonic() < deadline, "the calls never joined the first one"
        time.sleep(0.01)


def test_calls_joining_a_failed_decision_each_make_it_themselves(
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine, builder, _ = _engine(monkeypatch, "unknown", unknown_existence_policy="fail")
    checker = engine._checker = GatedChecker("unknown", reason="denied: 403")
    errors: list[BaseException] = []

    def call() -> None:
        try:
            engine.build(_target("decide"))
        except ImageBuildError as error:
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    _joined(("local", _target("decide").uri), 3)
    checker.release.set()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 4 and all("denied: 403" in str(e) for e in errors)
    assert builder.requests == [] and checker.calls == 4


def test_a_forced_call_rebuilds_what_the_call_it_joined_found(
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine, builder, _ = _engine(monkeypatch, "exists")
    checker = engine._checker = GatedChecker("exists")
    found: list[Any] = []
    plain = threading.Thread(target=lambda: found.append(engine.build(_target("forced"))))
    forced = threading.Thread(target=lambda: found.append(engine.build(_target("forced"),
                                                                       force=True)))
    plain.start()
    assert checker.entered.wait(10)  # the plain call leads and is checking
    forced.start()
    _joined(("local", _target("forced").uri), 1)
    checker.release.set()
    plain.join(10)
    forced.join(10)
    assert sorted(b.status for b in found) == ["built", "exists"]
    assert len(builder.requests) == 1 and builder.requests[0].no_cache


def test_wait_false_returns_at_once_even_inside_a_running_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    engine, _, _ = _engine(monkeypatch, "missing", delay=0.3)

    async def cell() -> tuple[float, str]:
        started = time.monotonic()
        build = engine.build(_target("async"), wait=False)
        elapsed = time.monotonic() - started
        await build
        return elapsed, build.status

    elapsed, status = asyncio.run(cell())
    assert elapsed < 0.2 and status == "built"


def test_dry_run_renders_without_touching_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, builder, checker = _engine(monkeypatch, "missing")
    build = engine.build(_target(), dry_run=True)
    assert build.status == "dry-run" and build.dry_run is not None
    assert build.dry_run.command == "fake build localhost:5001/fast/demo:1"
    assert build.dry_run.context_files == ("Dockerfile",) and build.dry_run.push
    assert builder.requests == [] and checker.calls == 0


def test_class_level_calls_use_the_configured_default(monkeypatch: pytest.MonkeyPatch) -> None:
    builder = FakeBuilder()
    monkeypatch.setattr("imagebuild_nb.engine.get_builder", lambda name, s: builder)
    monkeypatch.setattr(ImageBuildEngine, "_default", None)
    engine = ImageBuildEngine.configure(network_mode="host")
    engine._checker = FakeChecker("missing")
    assert ImageBuildEngine.build(_target()).built
    assert builder.requests[0].network_mode == "host"


def test_images_without_a_registry_go_to_the_configured_one(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, builder, checker = _engine(monkeypatch, "missing", registry="localhost:5001")
    image = Image.from_base("localhost:5001/library/busybox:latest", name="fast/placed"
                            ).with_commands(["true"])
    assert image.registry is None
    build = engine.build(image)
    assert build.uri == f"localhost:5001/fast/placed:{image.tag}"
    assert builder.requests[0].push and builder.requests[0].primary_tag == build.uri
    elsewhere = engine.build(image.with_registry("localhost:5002"), dry_run=True)
    assert elsewhere.uri.startswith("localhost:5002/")  # an image's own registry wins


# -- real tier -----------------------------------------------------------------------------------

DRIVERS = ("docker-api", "buildkit")


def _settings(driver: str, ca_bundle: Path, mirror: str) -> Settings:
    return Settings(local_driver=driver, network_mode="host",  # type: ignore[arg-type]
                    extra_ca_files=(str(ca_bundle),), base_image_mirror=mirror)


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
    engine = ImageBuildEngine(_settings(driver, ca_bundle, plain_registry.host))
    image = _spec(project, plain_registry.host, f"test/engine-{driver}")
    yield Built(engine, image, engine.build(image), project)
    engine.close()


@pytest.fixture
def make_engine(ca_bundle: Path) -> Iterator[Any]:
    """Engines for one test, closed afterwards (their checkers hold registry connections)."""
    engines: list[ImageBuildEngine] = []

    def make(driver: str) -> ImageBuildEngine:
        engines.append(ImageBuildEngine(_settings(driver, ca_bundle, "localhost:5001")))
        return engines[-1]

    yield make
    for engine in engines:
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


@pytest.mark.parametrize("driver", DRIVERS)
def test_stopped_engine_gives_the_clear_error_first(
        driver: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    engine = ImageBuildEngine(Settings(local_driver=driver))  # type: ignore[arg-type]
    checker = FakeChecker("missing")
    engine._checker = checker
    with pytest.raises(BuilderUnavailableError) as caught:
        engine.build(_target())
    text = str(caught.value)
    assert "does not answer" in text and "DOCKER_HOST" in text and "remote" in text
    assert checker.calls == 0


class _Gate:
    """An HTTP endpoint on loopback that answers only once opened. A RUN step that fetches it
    (host network) holds its build until the test opens the gate; it counts the fetches."""

    def __init__(self) -> None:
        import http.server

        self.opened = threading.Event()
        self.hits = 0
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                gate.hits += 1
                gate.opened.wait(300)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.opened.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.engine
def test_fifty_identical_concurrent_builds_are_one_engine_build_and_block_nobody(
        busybox_base: str, make_engine: Any, monkeypatch: pytest.MonkeyPatch,
        remove_images: list[str]) -> None:
    marker = uuid.uuid4().hex[:8]
    engine = make_engine("docker-api")  # host network: the RUN step reaches the gate
    existing = Image.from_base(busybox_base, name=f"test/existing-{marker}").with_commands(
        ["echo there > /there"])
    remove_images.append(engine.plan(existing).uri)  # docker-api: the build CA is in the tag
    assert engine.build(existing).built
    gate = _Gate()
    shared = Image.from_base(busybox_base, name=f"test/once-{marker}").with_commands(
        [f"wget -q -O /dev/null http://127.0.0.1:{gate.port}/{marker}"])
    remove_images.append(engine.plan(shared).uri)
    builder = __import__("imagebuild_nb.engine", fromlist=["get_builder"]).get_builder(
        "local", engine.settings)
    engine_builds: list[str] = []
    real_build = builder.build

    def counting_build(request: BuildRequest, cancel: threading.Event) -> Iterator[BuildEvent]:
        engine_builds.append(request.primary_tag)
        return real_build(request, cancel)

    monkeypatch.setattr(builder, "build", counting_build)
    results: list[Any] = []

    def build_shared() -> None:
        try:
            results.append(engine.build(shared))
        except BaseException as error:  # reported by the assertion below
            results.append(error)

    threads = [threading.Thread(target=build_shared, daemon=True) for _ in range(50)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 120
        while gate.hits == 0:  # the shared build is in its RUN step, held by the gate
            assert time.monotonic() < deadline, "the shared build never reached its RUN step"
            time.sleep(0.05)
        answered: list[Any] = []
        other = threading.Thread(target=lambda: answered.append(engine.build(existing)),
                                 daemon=True)
        other.start()
        other.join(30)  # generous; it needs milliseconds unless something blocks it
        assert answered and answered[0].found, "an unrelated build waited on the shared one"
        assert not gate.opened.is_set() and gate.hits == 1  # the shared build still runs
    finally:
        gate.close()
    for thread in threads:
        thread.join(120)
    # Every caller joined the one build (or, arriving after it ended, found its image).
    assert len(results) == 50, results
    assert all(getattr(r, "built", False) or getattr(r, "found", False) for r in results), results
    assert engine_builds == [engine.plan(shared).uri] and gate.hits == 1
    assert len({id(r) for r in results if r.built}) == 1
