"""ImageBuildEngine.build(): what it decides before and instead of building (fast tier: a fake
builder and checker injected). Identical concurrent calls: test_engine_concurrency.py; real
builds through both drivers: test_engine_drivers.py; the engine's shape: test_engine_design.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagebuild_nb import Image, ImageReference
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.errors import BuilderUnavailableError, ImageBuildError, SpecError
from imagebuild_nb.events import BuildStarted
from imagebuild_nb.settings import Settings
from tests.support.engine_parts import DRIVERS, FakeBuilder, FakeChecker, fake_engine, target


def test_existing_image_is_returned_without_a_build() -> None:
    engine, builder, _ = fake_engine("exists")
    build = engine.build(target())
    assert build.found and not build.built and build.digest == "sha256:" + "2" * 64
    assert builder.requests == []


def test_missing_image_is_built_and_events_say_why() -> None:
    engine, builder, _ = fake_engine("missing")
    build = engine.build(target())
    assert build.built and len(builder.requests) == 1 and not builder.requests[0].no_cache
    started = build.events[0]
    assert isinstance(started, BuildStarted) and started.reason == "missing"
    assert [e.seq for e in build.events] == list(range(1, len(build.events) + 1))


def test_latest_is_always_built_and_force_skips_the_check() -> None:
    engine, builder, checker = fake_engine("exists")
    assert engine.build(target("latest")).built
    forced = engine.build(target(), force=True)
    assert forced.built and builder.requests[-1].no_cache and checker.calls == 0


def test_unknown_existence_builds_and_says_why_or_fails_when_strict() -> None:
    engine, builder, _ = fake_engine("unknown", reason="unreachable: refused")
    build = engine.build(target())
    assert build.built and "unreachable: refused" in build.reason
    strict, builder, _ = fake_engine("unknown", reason="denied: 403",
                                     unknown_existence_policy="fail")
    with pytest.raises(ImageBuildError, match="denied: 403"):
        strict.build(target())
    assert builder.requests == []


def test_image_exists_keeps_the_seed_contract() -> None:
    for state, expected in (("exists", True), ("missing", False), ("unknown", True)):
        engine, _, _ = fake_engine(state, reason="timed out")
        assert (engine.image_exists(target()) is not None) is expected
    engine, _, checker = fake_engine("missing")
    assert engine.image_exists(target("latest")) == "localhost:5001/fast/demo:latest"
    assert checker.calls == 0


def test_check_takes_a_plain_reference_as_text_or_parsed() -> None:
    engine, _, checker = fake_engine("exists")
    for reference in ("localhost:5001/team/app:1.0",
                      ImageReference.parse("localhost:5001/team/app:1.0")):
        result = engine.check(reference)
        assert (result.state, result.reference) == ("exists", "localhost:5001/team/app:1.0")
    assert checker.calls == 2
    with pytest.raises(SpecError, match="image"):
        engine.check("Not A Reference!")


def test_dry_run_renders_without_touching_anything() -> None:
    engine, builder, checker = fake_engine("missing")
    build = engine.build(target(), dry_run=True)
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
    assert ImageBuildEngine.build(target()).built
    assert builder.requests[0].network_mode == "host"


def test_images_without_a_registry_go_to_the_configured_one() -> None:
    engine, builder, checker = fake_engine("missing", registry="localhost:5001")
    image = Image.from_base("localhost:5001/library/busybox:latest", name="fast/placed"
                            ).with_commands(["true"])
    assert image.registry is None
    build = engine.build(image)
    assert build.uri == f"localhost:5001/fast/placed:{image.tag}"
    assert builder.requests[0].push and builder.requests[0].primary_tag == build.uri
    elsewhere = engine.build(image.with_registry("localhost:5002"), dry_run=True)
    assert elsewhere.uri.startswith("localhost:5002/")  # an image's own registry wins


@pytest.mark.parametrize("driver", DRIVERS)
def test_stopped_engine_gives_the_clear_error_first(
        driver: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    engine = ImageBuildEngine(Settings(local_driver=driver))  # type: ignore[arg-type]
    checker = FakeChecker("missing")
    engine._checker = checker
    with pytest.raises(BuilderUnavailableError) as caught:
        engine.build(target())
    text = str(caught.value)
    assert "does not answer" in text and "DOCKER_HOST" in text and "remote" in text
    assert checker.calls == 0
