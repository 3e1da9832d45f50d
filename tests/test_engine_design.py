"""The engine's shape: injected parts, one plan per call, typed input, Flyte's async forms."""

from __future__ import annotations

import asyncio
import threading
import time
import typing
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import flyte
import pytest

from imagebuild_nb import Image, SpecError
from imagebuild_nb.builders.base import BuildRequest, ExistenceCheck
from imagebuild_nb.checkers import ExistenceResult
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.events import BuildEvent, BuildFinished, LogLine
from imagebuild_nb.settings import Settings
from imagebuild_nb.spec import identity

BUSYBOX = "localhost:5001/library/busybox:latest"


class ScriptedBuilder:
    """Stands in for the engine where a test looks at what the engine hands over."""

    name, driver = "local", "buildkit"

    def __init__(self, lines: tuple[str, ...] = ()) -> None:
        self.requests: list[BuildRequest] = []
        self.lines = lines

    def ensure_available(self) -> None:
        pass

    def describe(self, request: BuildRequest) -> str:
        return f"scripted build of {request.primary_tag}"

    def build(self, request: BuildRequest, cancel: threading.Event) -> Iterator[BuildEvent]:
        self.requests.append(request)
        for line in self.lines:
            yield LogLine(text=line)
        yield BuildFinished(uri=request.primary_tag, digest=None)


class SlowChecker:
    """A registry that takes its time (a fault the local registry cannot be asked for)."""

    def __init__(self, delay: float) -> None:
        self.delay, self.calls = delay, 0

    def check(self, ref: str, *, spec_hash: str | None = None,
              platform: str | None = None) -> ExistenceResult:
        self.calls += 1
        time.sleep(self.delay)
        return ExistenceResult(ref, "missing", None, (), None, "slow", self.delay)  # type: ignore[arg-type]

    def invalidate(self, ref: str | None = None) -> int:
        return 0

    def close(self) -> None:
        pass


def _image() -> Image:
    return Image.from_base(BUSYBOX, name=f"design-{uuid.uuid4().hex[:8]}").with_commands("true")


def test_builders_and_checker_are_injected_not_patched() -> None:
    builder, checker = ScriptedBuilder(), SlowChecker(0)
    engine = ImageBuildEngine(Settings(), builders={"local": builder}, checker=checker)
    assert isinstance(checker, ExistenceCheck) and engine.checker is checker
    build = engine.build(_image())
    assert build.built and checker.calls == 1 and len(builder.requests) == 1
    engine.close()  # an injected checker belongs to the caller: still the same one
    assert engine.checker is checker


def test_one_walk_of_the_files_per_call(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("A = 1\n")
    image = Image.from_base(BUSYBOX, name="walks").with_source_folder(tmp_path / "src")
    walks = []
    real = identity.walk_tree
    monkeypatch.setattr(identity, "walk_tree", lambda *a, **k: walks.append(1) or real(*a, **k))
    engine = ImageBuildEngine(Settings(), builders={"local": ScriptedBuilder()},
                              checker=SlowChecker(0))
    engine.build(image, dry_run=True)
    assert len(walks) == 1
    walks.clear()
    engine.build(image)
    assert len(walks) == 1


def test_builder_type_names_the_builders() -> None:
    assert typing.get_args(ImageBuildEngine.ImageBuilderType) == ("local", "local-podman", "remote")


def test_flyte_image_is_accepted_by_check_exists_and_build() -> None:
    fimg = flyte.Image.from_base(BUSYBOX).clone(name=f"flyte-design-{uuid.uuid4().hex[:8]}",
                                                extendable=True).with_commands(["true"])
    builder, checker = ScriptedBuilder(), SlowChecker(0)
    engine = ImageBuildEngine(Settings(), builders={"local": builder}, checker=checker)
    assert engine.image_exists(fimg) is None  # was AttributeError: no attribute 'reference'
    assert engine.check(fimg).state == "missing"
    dry = engine.build(fimg, dry_run=True)
    assert dry.dry_run is not None and dry.origin and dry.origin.startswith("flyte.Image")
    assert "From: flyte.Image" in str(dry.dry_run)
    build = engine.build(fimg)
    assert build.built and build.origin == dry.origin
    assert "from" in dict(build._summary())


def test_aio_forms_run_off_the_event_loop() -> None:
    checker = SlowChecker(0.5)
    engine = ImageBuildEngine(Settings(), builders={"local": ScriptedBuilder()}, checker=checker)
    ticks = 0

    async def main() -> tuple[Any, Any]:
        nonlocal ticks

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        exists = await engine.image_exists.aio(_image())
        dry = await engine.build.aio(_image(), dry_run=True)
        task.cancel()
        return exists, dry

    exists, dry = asyncio.run(main())
    assert exists is None and dry.status == "dry-run"
    assert ticks >= 5  # the loop kept running while the 0.5 s check ran


def test_class_level_calls_have_aio_too() -> None:
    result = asyncio.run(ImageBuildEngine.build.aio(Image.from_base(BUSYBOX), dry_run=True))
    assert result.status == "dry-run"


def test_secret_values_are_scrubbed_from_events(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DESIGN_TOKEN", "tok-very-secret-1")
    image = _image().with_commands("cat /x", secret_mounts=["DESIGN_TOKEN"])
    builder = ScriptedBuilder(lines=("printed tok-very-secret-1 oops",))
    engine = ImageBuildEngine(Settings(), builders={"local": builder}, checker=SlowChecker(0))
    build = engine.build(image)
    assert "tok-very-secret-1" not in build.logs and "***" in build.logs
    (request,) = builder.requests
    assert list(request.secrets.values()) == ["env:DESIGN_TOKEN"]


def test_engine_api_driver_refuses_secrets_and_says_use_buildkit(monkeypatch) -> None:
    monkeypatch.setenv("DESIGN_TOKEN", "x")
    image = _image().with_commands("true", secret_mounts=["DESIGN_TOKEN"])
    engine = ImageBuildEngine(Settings(local_driver="docker-api"), checker=SlowChecker(0))
    with pytest.raises(BuilderUnavailableError, match="cannot pass build secrets") as info:
        engine.build(image, wait=False)
    assert "buildkit" in (info.value.hint or "").lower()


@pytest.mark.engine
def test_forcing_an_unmodified_base_never_overwrites_it() -> None:
    client = docker.from_env()
    before = client.images.get(BUSYBOX).id
    engine = ImageBuildEngine(Settings())
    with pytest.raises(SpecError, match="unmodified base image"):
        engine.build(Image.from_base(BUSYBOX), force=True)
    with pytest.raises(SpecError, match="overwrite"):
        engine.build(Image.from_base(BUSYBOX, name="library/busybox", registry="localhost:5001",
                                     tag="latest"))
    assert client.images.get(BUSYBOX).id == before


def test_buildkit_cli_passes_secrets_by_file_or_variable_never_by_value() -> None:
    from imagebuild_nb.builders.buildkit_cli import BuildKitCliBuilder, Cli
    from imagebuild_nb.builders.context import InMemoryContext

    request = BuildRequest(dockerfile="", context=InMemoryContext({}), tags=("x:1",),
                           secrets={"a": "/run/keys/pat", "b": "env:GITHUB_PAT"})
    args = BuildKitCliBuilder(Cli("/usr/bin/docker", "classic")).command(request)
    assert "id=a,src=/run/keys/pat" in args and "id=b,env=GITHUB_PAT" in args


def test_engine_api_driver_itself_refuses_a_request_with_secrets() -> None:
    from imagebuild_nb.builders.context import InMemoryContext
    from imagebuild_nb.builders.docker_api import DockerApiBuilder

    request = BuildRequest(dockerfile="FROM busybox\n", context=InMemoryContext({}),
                           tags=("x:1",), secrets={"a": "env:X"})
    with pytest.raises(BuilderUnavailableError, match="secrets"):
        next(iter(DockerApiBuilder().build(request, threading.Event())))


def test_remote_builder_gets_secret_names_never_this_machines_values(monkeypatch) -> None:
    """The service resolves secrets by name from its own configuration: the client sends the
    names and neither looks up nor sends its own values (the real service: tests/service/
    test_build_secrets.py)."""
    from imagebuild_nb.builders.remote import RemoteBuilder

    submitted: list[tuple[BuildRequest, object]] = []

    class Recording(RemoteBuilder):
        driver = "buildkit"  # type: ignore[assignment]

        def ensure_available(self) -> None:
            pass

        def start(self, request, *, spec=None, secrets=None):  # type: ignore[no-untyped-def]
            submitted.append((request, secrets))
            raise RuntimeError("submitted")

    monkeypatch.setenv("DESIGN_TOKEN", "never-sent")
    remote = Recording(Settings(remote_url="http://127.0.0.1:9", remote_token="t"))
    engine = ImageBuildEngine(Settings(), builders={"remote": remote}, checker=SlowChecker(0))
    image = _image().with_commands("true", secret_mounts=["DESIGN_TOKEN"])
    with pytest.raises(RuntimeError, match="submitted"):
        engine.build(image, builder="remote", force=True)
    (request, secrets), = submitted
    (mount,) = image.layers[-1].secrets
    assert secrets == {mount.id: "DESIGN_TOKEN"} and request.secrets == {}
    assert "never-sent" not in repr(request) + repr(secrets)


def test_the_plan_follows_the_builder_used_not_the_default(ca_bundle) -> None:
    """Legacy builder: build CAs join the image and its tag. The tag checked, shown in the dry
    run and built must be the one of the builder actually used (was: the default builder's)."""

    class LegacyScripted(ScriptedBuilder):
        driver = "docker-api"

    builder = LegacyScripted()
    engine = ImageBuildEngine(Settings(default_builder="remote",
                                       extra_ca_files=(str(ca_bundle),)),
                              builders={"local": builder}, checker=SlowChecker(0))
    image = _image()
    dry = engine.build(image, builder="local", dry_run=True)
    build = engine.build(image, builder="local")
    assert builder.requests[0].primary_tag == build.uri == dry.uri
