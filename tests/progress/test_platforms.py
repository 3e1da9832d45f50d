"""Multi-platform progress: each platform's steps in their own rows and its own line, in the
model, the text and HTML views, the result card and the service page (scripted streams shaped
like the per-platform builder's and podman's --manifest output)."""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Iterator

from imagebuild_nb import Image, ImageBuildEngine
from imagebuild_nb.builders.base import BuildRequest
from imagebuild_nb.events import (
    BuildEvent,
    BuildFailed,
    BuildFinished,
    BuildStarted,
    CacheHit,
    LogLine,
    PushProgress,
    StepStarted,
)
from imagebuild_nb.progress import html, text
from imagebuild_nb.progress.model import Progress
from imagebuild_nb.progress.view import View
from imagebuild_nb.service.page import fragment
from imagebuild_nb.service.store import BuildRecord
from imagebuild_nb.testing import ScriptedBuilder, ScriptedRegistry

URI = "localhost:5001/test/multi:1"
DOCKERFILE = "FROM base\nRUN make\nRUN echo two\n"
STEPS = ("FROM base", "RUN make", "RUN echo two")


def platform_pass(platform: str, at: float, *, until: int = 3, push: bool = True
                  ) -> list[BuildEvent]:
    """One platform's build as builders/platforms.py relays it (the platform as the stage)."""
    events: list[BuildEvent] = [
        LogLine(text=f"building {platform} as {URI}-{platform.replace('/', '-')}", time=at),
        LogLine(text="load build context", stream="system", time=at + 0.1)]
    for number in range(1, until + 1):
        events.append(StepStarted(number=number, total=3, instruction=STEPS[number - 1],
                                  stage=platform, time=at + number))
        if number == 1:
            events.append(CacheHit(step=1, time=at + number))
        else:
            events.append(LogLine(text=f"{platform} output of {number}", step=number,
                                  time=at + number + 0.5))
    if until == 3 and push:
        events.append(PushProgress(layer="abc", status="Pushed", time=at + 4.0))
    return events


def docker_stream(*, finished: bool = True) -> list[BuildEvent]:
    events: list[BuildEvent] = [BuildStarted(uri=URI, builder="local", driver="buildkit",
                                             reason="missing", dockerfile=DOCKERFILE, time=0.0)]
    events += platform_pass("linux/amd64", 0.0)
    events += platform_pass("linux/arm64", 5.0, until=3 if finished else 2)
    if finished:
        events += [LogLine(text=f"pushing the index of linux/amd64, linux/arm64 as {URI}",
                           time=9.5),
                   BuildFinished(uri=URI, digest="sha256:" + "1" * 64, pushed=True, time=10.0)]
    return events


def by_platform(view: View) -> dict[str, list[tuple[str, str]]]:
    grouped: dict[str, list[tuple[str, str]]] = {}
    for step in view.steps:
        grouped.setdefault(step.platform, []).append((step.label, step.state))
    return grouped


def test_the_second_platform_gets_its_own_rows_while_the_first_stays_built() -> None:
    view = Progress().feed_all(docker_stream(finished=False)).view(now=8.0)
    assert by_platform(view) == {
        "linux/amd64": [("prepare", "done"), ("1/3", "cached"), ("2/3", "done"),
                        ("3/3", "done"), ("push", "done")],
        "linux/arm64": [("prepare", "done"), ("1/3", "cached"), ("2/3", "running"),
                        ("3/3", "queued")]}
    amd64, arm64 = view.platforms
    assert (amd64.platform, amd64.status, amd64.summary) == ("linux/amd64", "built",
                                                             "Built 3/3 in 5.0 s")
    assert (arm64.platform, arm64.status, arm64.summary) == ("linux/arm64", "building",
                                                             "Building 1/3 3.0s")
    assert view.header == "Building 8.0s (4/6)"
    assert view.current == "linux/arm64 2/3 RUN make"
    # Each platform's log went under its own rows.
    arm64_rows = [s for s in view.steps if s.platform == "linux/arm64"]
    assert arm64_rows[2].tail == ("linux/arm64 output of 2",)
    assert arm64_rows[0].tail[0].startswith("building linux/arm64 as ")
    amd64_push = [s for s in view.steps if s.platform == "linux/amd64"][-1]
    assert amd64_push.instruction == f"{URI}-linux-amd64"


def test_the_text_view_shows_both_platforms_with_their_own_step_states() -> None:
    frame = text.frame(Progress().feed_all(docker_stream(finished=False)).view(now=8.0),
                       width=60)
    assert frame[0] == "Building 8.0s (4/6)"
    amd64, arm64 = frame.index("linux/amd64  Built 3/3 in 5.0 s"), \
        frame.index("linux/arm64  Building 1/3 3.0s")
    assert [line.split()[0] for line in frame[amd64 + 1:arm64]] == ["✓", "=", "✓", "✓", "✓"]
    assert frame[arm64 + 3].startswith(" ▸ [2/3] RUN make")
    assert frame[arm64 + 5].startswith(" · [3/3] RUN echo two")

    done = text.frame(Progress().feed_all(docker_stream()).view())
    assert done[0] == "Built in 10.0 s"
    assert "linux/arm64  Built 3/3 in 4.5 s" in done
    assert done[-1].startswith(" ✓ index " + URI)  # the index, after both platforms


def test_the_html_view_has_a_section_per_platform() -> None:
    page = html.progress_html(Progress().feed_all(docker_stream(finished=False)).view(now=8.0))
    sections = re.findall(r'class="imagebuild-platform" data-platform="([^"]+)" '
                          r'data-state="([^"]+)"', page)
    assert sections == [("linux/amd64", "built"), ("linux/arm64", "building")]
    rows = re.findall(r'data-label="([^"]+)" data-state="([^"]+)" data-duration="[^"]*" '
                      r'data-platform="([^"]+)"', page)
    assert ("2/3", "done", "linux/amd64") in rows and ("2/3", "running", "linux/arm64") in rows
    assert "Building 1/3 3.0s" in page and "Built 3/3 in 5.0 s" in page


def test_a_failure_names_its_platform() -> None:
    events = docker_stream(finished=False) + [
        BuildFailed(message="linux/arm64: RUN make failed", exit_code=2, time=8.5)]
    view = Progress().feed_all(events).view()
    assert view.header == "Failed at linux/arm64 step 2/3 after 8.5 s"
    assert view.failure is not None and view.failure.platform == "linux/arm64"
    assert [(p.status, p.summary) for p in view.platforms] == [
        ("built", "Built 3/3 in 5.0 s"), ("failed", "Failed at step 2/3 after 3.5 s")]
    assert by_platform(view)["linux/arm64"][-1] == ("3/3", "skipped")


def test_log_headers_name_the_platform() -> None:
    lines = list(text.log_lines(docker_stream()))
    assert "── linux/amd64 [2/3] RUN make" in lines and "── linux/arm64 [2/3] RUN make" in lines


def test_a_single_platform_build_has_no_platform_sections() -> None:
    events = platform_pass("linux/amd64", 0.0)[1:]  # no "building ... as", no platform stage
    single = [BuildStarted(uri=URI, builder="local", dockerfile=DOCKERFILE, time=0.0)] + [
        dataclasses.replace(e, stage="") if isinstance(e, StepStarted) else e
        for e in events] + [BuildFinished(uri=URI, time=5.0)]
    view = Progress().feed_all(single).view()
    assert view.platforms == () and {s.platform for s in view.steps} == {""}
    assert text.frame(view)[:2] == ["Built in 5.0 s", " ✓ prepare" + " " * 86 + "1.0s"]
    assert "data-platform" not in html.progress_html(view)


class ScriptedIndexBuilder(ScriptedBuilder):
    """Plays podman's --manifest stream: both platforms' steps, then one push of the index."""

    def builds_indexes(self) -> bool:
        return True


def podman_script(request: BuildRequest) -> Iterator[BuildEvent]:
    for platform in request.platform.split(","):
        for number in (1, 2):
            yield StepStarted(number=number, total=2, instruction=STEPS[number - 1],
                              stage=platform)
            yield LogLine(text=f"{platform} {number}", step=number)
    yield PushProgress(layer="", status="Copying 2 images generated from 2 images in list")


def test_a_build_through_the_engine_shows_both_platforms_in_the_card_and_page() -> None:
    registry = ScriptedRegistry()
    engine = ImageBuildEngine(builders={"local": ScriptedIndexBuilder(podman_script,
                                                                      registry=registry)},
                              checker=registry)
    image = Image.from_base("localhost:5001/base:1", name="multi", registry="localhost:5001",
                            platform=("linux/amd64", "linux/arm64")).with_commands(["make"])
    build = engine.build(image)
    assert build.status == "built"
    view = Progress().feed_all(build.events).view()
    assert [(p.platform, p.status, p.done, p.total) for p in view.platforms] == [
        ("linux/amd64", "built", 2, 2), ("linux/arm64", "built", 2, 2)]
    # podman pushes every platform's image at the end, in one push of the index
    assert by_platform(view)["linux/arm64"][-1] == ("2/2", "done")
    assert (view.steps[-1].label, view.steps[-1].platform) == ("index", "")

    card = html.card_html(build) + html.progress_html(view)
    assert 'data-platform="linux/amd64"' in card and 'data-platform="linux/arm64"' in card

    record = BuildRecord(id="b1", uri=build.uri, context="", status="succeeded")
    page = fragment(record, (json.dumps(e.to_dict()) for e in build.events))
    assert re.findall(r'class="imagebuild-platform" data-platform="([^"]+)" data-state="built"',
                      page) == ["linux/amd64", "linux/arm64"]
    engine.close()


def test_views_from_another_thread_while_platforms_switch() -> None:
    progress, seen = Progress(), []
    stream = docker_stream()

    def feed() -> None:
        for event in stream:
            progress.feed(event)

    worker = threading.Thread(target=feed)
    worker.start()
    while worker.is_alive():
        seen.append(len(progress.view(now=5.0).platforms))
    worker.join()
    assert len(progress.view().platforms) == 2
    assert seen == sorted(seen)  # a platform once shown stays (no half-switched lane)
