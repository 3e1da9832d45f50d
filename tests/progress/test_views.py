"""One build, three faces: the magic's cell, the command's output and the service's page show
the same steps with the same states and durations (one remote build on a real service)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.notebook.conftest import cell_text, jupyter_env, run_notebook  # noqa: F401 -- fixtures
from tests.service.conftest import ServiceProcess, start_service  # noqa: F401 -- fixture
from tests.support.services import Registry
from tests.test_cli import CLI, _env

pytestmark = [pytest.mark.kernel, pytest.mark.engine, pytest.mark.registry]

_MARKS = {"✓": "done", "=": "cached", "✗": "failed", "■": "cancelled", "·": "queued",
          "-": "skipped", "▸": "running"}
_ROW = re.compile(r"^ (\S) (\[[^\]]+\]|prepare|push)(?: .*?)?(?:\s{2,}(?:[a-z]+ )?(\S+))?$")
_PAGE_ROW = re.compile(r'data-label="([^"]+)" data-state="([^"]+)" data-duration="([^"]*)"')


def rows_from_text(text: str, header: str) -> list[tuple[str, str, str]]:
    """(label, state, duration) of each row of the summary that starts at ``header``."""
    block = text[text.rindex(header):].splitlines()[1:]
    rows = []
    for line in block:
        match = _ROW.match(line)
        if not match:
            continue
        label = match.group(2).strip("[]")
        state = _MARKS[match.group(1)]
        duration = match.group(3) or ""
        rows.append((label, state, "" if state == "cached" else duration))
    return rows


def rows_from_page(page: str) -> list[tuple[str, str, str]]:
    return [(label, state, "" if state in ("cached", "queued", "skipped") else duration)
            for label, state, duration in _PAGE_ROW.findall(page)]


def test_magic_command_and_page_show_the_same_steps_and_durations(
        run_notebook: Callable[..., object], start_service: Callable[..., ServiceProcess],  # noqa: F811 -- fixture
        monkeypatch: pytest.MonkeyPatch, busybox_base: str, plain_registry: Registry,
        unique_name: str, remove_images: list[str], tmp_path: Path) -> None:
    service = start_service()
    monkeypatch.setenv("IMAGEBUILD_NB_REMOTE_URL", service.url)
    monkeypatch.setenv("IMAGEBUILD_NB_REMOTE_TOKEN", service.token)
    notebook = run_notebook([
        "%load_ext imagebuild_nb\nfrom imagebuild_nb import Image",
        f"img = Image.from_base({busybox_base!r}, name={unique_name!r}, "
        f"registry={plain_registry.host!r}).with_commands(['echo one {unique_name}', "
        "'sleep 2; echo two'])",
        "b = %imagebuild build img --builder remote",
        "print(b.status, b.remote_run.id, b.uri)",
    ])
    status, build_id, uri = cell_text(notebook.cells[3]).split()  # type: ignore[attr-defined]
    remove_images.append(uri)
    assert status == "built"
    magic = rows_from_text(cell_text(notebook.cells[2]), "Built in")  # type: ignore[attr-defined]

    done = subprocess.run([*CLI, "logs", build_id], capture_output=True, text=True, timeout=120,
                          env=_env({"IMAGEBUILD_NB_REMOTE_URL": service.url,
                                    "IMAGEBUILD_NB_REMOTE_TOKEN": service.token}))
    assert done.returncode == 0, done.stderr
    command = rows_from_text(done.stdout, "Built in")

    page = httpx.get(f"{service.url}/imagebuild/builds/{build_id}", headers=service.headers)
    assert page.status_code == 200
    on_page = rows_from_page(page.text)

    labels = [label for label, _, _ in on_page]
    assert labels == ["prepare", "1/3", "2/3", "3/3", "push"], on_page
    # The user's steps and the push agree exactly; "prepare" is measured from where each face
    # started watching (the notebook's includes uploading the context).
    assert command == on_page, (command, on_page)
    assert magic[1:] == on_page[1:], (magic, on_page)
    # The 2 s sleep, measured from when the step was reported started (BuildKit reports it a
    # moment late, so 1 s once showed as 0.9 s): at least half of it.
    assert on_page[3][1] == "done" and float(on_page[3][2].rstrip("s")) >= 1.0
