"""The widget against the real engine and registry, clicked in JupyterLab + Chromium.

Check -> missing, Build -> log lines stream in while building and the badge ends "built" with a
digest, Check -> exists (BuildKit driver); a slow build cancelled from the button leaves no
container behind (Engine-API driver, whose RUN steps are visible as containers).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import docker
import pytest

from tests.browser.conftest import Lab, button, open_and_run, run_cell, screenshot
from tests.support.services import containers_with

pytestmark = [pytest.mark.browser, pytest.mark.engine, pytest.mark.registry]


def widget_cell(base: str, name: str, commands: list[str], driver: str) -> str:
    return f"""\
from imagebuild_nb import Image, ImageBuildWidget
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.settings import Settings
img = (Image.from_base({base!r}, name={name!r}, registry="localhost:5001")
       .with_commands({commands!r}))
engine = ImageBuildEngine(Settings.from_env(network_mode="host", local_driver={driver!r}))
w = ImageBuildWidget(img, engine=engine)
w
"""


def log_text_js(needle: str) -> str:
    return (f"() => (document.querySelector('.imagebuild-log pre')?.textContent ?? '')"
            f".includes({json.dumps(needle)})")


def test_check_build_check(page: Any, lab: Lab, busybox_base: str, unique_name: str,
                           remove_images: list[str]) -> None:
    # A unique command: a RUN step cached from an earlier run would print nothing.
    commands = [f"echo run-{uuid.uuid4().hex}; "
                "for i in $(seq 1 30); do echo line-$i; sleep 0.1; done"]
    open_and_run(page, lab, [widget_cell(busybox_base, unique_name, commands, "auto")])
    widget = page.locator(".imagebuild-widget")
    widget.wait_for()
    uri = widget.locator(".imagebuild-uri").inner_text()
    remove_images.append(uri)
    assert uri.startswith(f"localhost:5001/{unique_name}:")

    button(widget, "Check").click()
    widget.locator(".imagebuild-badge[data-status='missing']").wait_for()

    button(widget, "Build").click()
    # Log lines reach the page while the build is still running.
    page.wait_for_function(
        "() => document.querySelector('.imagebuild-badge')?.dataset.status === 'building'"
        " && (document.querySelector('.imagebuild-log pre')?.textContent ?? '')"
        ".includes('line-3')", timeout=60_000)
    assert "Building" in widget.locator(".imagebuild-progress").inner_text()
    widget.locator(".imagebuild-badge[data-status='built']").wait_for(timeout=90_000)
    badge = widget.locator(".imagebuild-badge").inner_text()
    assert "built · sha256:" in badge
    assert "line-30" in widget.locator(".imagebuild-log pre").inner_text()
    screenshot(widget, "widget-built.png")

    button(widget, "Check").click()
    widget.locator(".imagebuild-badge[data-status='exists']").wait_for()
    assert widget.locator(".imagebuild-badge").inner_text().split("· ")[1] == badge.split("· ")[1]


def test_cancel_a_slow_build_leaves_no_container(page: Any, lab: Lab, busybox_base: str,
                                                 unique_name: str, remove_images: list[str],
                                                 docker_client: docker.DockerClient) -> None:
    marker = f"slow-{uuid.uuid4().hex[:8]}"
    # $((6*7)): the RUN's output says "started-42-..." while its instruction (also in the log)
    # does not, so seeing it means the step's container is running.
    commands = [f"echo started-$((6*7))-{marker}; sleep 300"]
    open_and_run(page, lab, [widget_cell(busybox_base, unique_name, commands, "docker-api"),
                             "print('side', 6 * 7)"], run=1)
    widget = page.locator(".imagebuild-widget")
    widget.wait_for()
    remove_images.append(widget.locator(".imagebuild-uri").inner_text())

    button(widget, "Build").click()
    page.wait_for_function(log_text_js(f"started-42-{marker}"), timeout=60_000)
    assert containers_with(docker_client, marker), "the RUN step should be running"
    run_cell(page, 1)  # the kernel is free while the build runs
    page.locator(".jp-OutputArea-output", has_text="side 42").wait_for()

    started = time.monotonic()
    button(widget, "Cancel").click()
    widget.locator(".imagebuild-badge[data-status='cancelled']").wait_for(timeout=60_000)
    cancelled_in = time.monotonic() - started
    assert cancelled_in < 30, cancelled_in
    # The badge and the buttons are separate widget updates: wait for the buttons to follow.
    button(widget, "Cancel").and_(widget.locator("button:disabled")).wait_for(timeout=10_000)
    button(widget, "Build").and_(widget.locator("button:enabled")).wait_for(timeout=10_000)
    assert containers_with(docker_client, marker) == []


