"""Fixtures: notebooks run with nbclient in an isolated Jupyter environment; headless widgets."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comm
import nbformat
import pytest
from nbclient import NotebookClient

from imagebuild_nb.notebook.widget import ImageBuildWidget
from imagebuild_nb.settings import Settings
from tests.support.widgets import IMAGE, RecordingComm


@pytest.fixture
def jupyter_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private Jupyter and IPython dirs, so no user profile or old state leaks into kernels."""
    home = tmp_path / "jupyter-home"
    for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                      ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
        (home / sub).mkdir(parents=True)
        monkeypatch.setenv(name, str(home / sub))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    return home


@pytest.fixture
def run_notebook(jupyter_env: Path, tmp_path: Path) -> Callable[..., nbformat.NotebookNode]:
    """Execute code cells in a real kernel; returns the executed notebook."""

    def run(cells: list[str], *, kernel_name: str = "python3", timeout: int = 300,
            allow_errors: bool = False, cwd: Path | None = None) -> nbformat.NotebookNode:
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        client = NotebookClient(
            notebook, timeout=timeout, kernel_name=kernel_name, allow_errors=allow_errors,
            resources={"metadata": {"path": str(cwd or tmp_path)}},
        )
        client.execute()
        return notebook

    return run


def cell_text(cell: nbformat.NotebookNode) -> str:
    """All text a cell showed: streams, text/plain results and error messages."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(output.data.get("text/plain", ""))
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
    return "".join(parts)


def cell_html(cell: nbformat.NotebookNode) -> str:
    return "".join(o.data.get("text/html", "") for o in cell.get("outputs", [])
                   if o.output_type in ("execute_result", "display_data"))


PYTHON = sys.executable


# -- headless widgets (helpers in tests/support/widgets.py) ----------------------------------

@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    RecordingComm.sent = []
    monkeypatch.setattr(comm, "create_comm", RecordingComm)
    yield RecordingComm.sent


@pytest.fixture
def make_widget(sent: list[Any]) -> Iterator[Callable[..., ImageBuildWidget]]:
    made: list[ImageBuildWidget] = []

    def make(engine: Any, **kwargs: Any) -> ImageBuildWidget:
        kwargs.setdefault("flush_interval", None)
        kwargs.setdefault("settings", Settings())
        # A URI of its own: identical builds in one process are joined (single flight).
        image = IMAGE.with_env_vars({"WIDGET_TEST": uuid.uuid4().hex})
        widget = ImageBuildWidget(image, engine=engine, **kwargs)
        made.append(widget)
        return widget

    yield make
    for widget in made:
        widget.close()
