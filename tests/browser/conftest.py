"""Real-browser fixtures: one JupyterLab per test session, Debian's Chromium driven by Playwright.

JupyterLab runs with private config/data/runtime/settings/workspace dirs (no old workspaces
restored, no news toast) and a token; the kernels it starts inherit ``lab_env``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import nbformat
import pytest

from tests.support.processes import stop_process

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass(frozen=True)
class Lab:
    url: str
    token: str
    root: Path

    def notebook_url(self, name: str, app: str = "lab") -> str:
        """The notebook in JupyterLab (``app="lab"``) or in Notebook 7 (``"notebook"``)."""
        if app == "notebook":
            return f"{self.url}/notebooks/{name}?token={self.token}"
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"

    def set_theme(self, theme: str) -> None:
        """JupyterLab's (and Notebook 7's) theme for pages opened from now on."""
        name = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}[theme]
        response = httpx.put(
            f"{self.url}/lab/api/settings/@jupyterlab/apputils-extension:themes",
            params={"token": self.token}, json={"raw": json.dumps({"theme": name})}, timeout=30)
        response.raise_for_status()

    def write_notebook(self, cells: list[str]) -> str:
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                           "language": "python"}
        name = f"widget-{uuid.uuid4().hex[:8]}.ipynb"
        nbformat.write(notebook, self.root / name)
        return name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def lab_env() -> dict[str, str]:
    """Extra environment for JupyterLab and its kernels."""
    return {}


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory, lab_env: dict[str, str]) -> Iterator[Lab]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing; apt-get install -y --no-install-recommends chromium")
    home = tmp_path_factory.mktemp("jupyterlab")
    root = home / "notebooks"
    root.mkdir()
    env = dict(os.environ)
    for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                      ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                      ("JUPYTERLAB_SETTINGS_DIR", "user-settings"),
                      ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")):
        (home / sub).mkdir()
        env[name] = str(home / sub)
    notification = home / "user-settings/@jupyterlab/apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env.update(lab_env)
    port, token = _free_port(), uuid.uuid4().hex
    log = (home / "lab.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/status", params={"token": token}, timeout=2).is_success:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start; see {home / 'lab.log'}")
            time.sleep(0.2)
        yield Lab(url, token, root)
    finally:
        stop_process(process, 15)
        log.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    # Package scope, not session: while Playwright's sync API is open, its event loop is the
    # main thread's running loop, and every later test's asyncio.run() would fail.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: object, request: pytest.FixtureRequest) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(60_000)  # a loaded 2-core CI machine renders slowly
    yield page
    if request.node.stash.get(_FAILED, False):  # keep what the page showed, for debugging
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"), full_page=True)
    context.close()
    if "lab" in request.fixturenames:  # one server for the session: stop this test's kernels
        _shutdown_kernels(request.getfixturevalue("lab"))


def _shutdown_kernels(lab: Lab) -> None:
    params = {"token": lab.token}
    for kernel in httpx.get(f"{lab.url}/api/kernels", params=params, timeout=30).json():
        httpx.delete(f"{lab.url}/api/kernels/{kernel['id']}", params=params, timeout=30)


def open_and_run(page: object, lab: Lab, cells: list[str], *, run: int | None = None,
                 app: str = "lab") -> str:
    """Open a fresh notebook holding ``cells`` and run the first ``run`` cells (default all)."""
    name = lab.write_notebook(cells)
    page.goto(lab.notebook_url(name, app))  # type: ignore[attr-defined]
    # With kernels of earlier notebooks running, JupyterLab may ask which kernel to use.
    accept = page.locator(".jp-Dialog .jp-mod-accept")  # type: ignore[attr-defined]
    cell = page.locator(".jp-Notebook .jp-Cell").first  # type: ignore[attr-defined]
    accept.or_(cell).first.wait_for(timeout=60_000)
    if accept.count():
        accept.first.click()
    for index in range(len(cells) if run is None else run):
        run_cell(page, index)
    return name


def run_cell(page: object, index: int, *, attempts: int = 20) -> None:
    """Run cell ``index`` (0-based); retried while the kernel is not ready to take it."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)  # type: ignore[attr-defined]
    prompt = cell.locator(".jp-InputPrompt")
    accept = page.locator(".jp-Dialog .jp-mod-accept")  # type: ignore[attr-defined]
    for _ in range(attempts):
        if accept.count():  # "select a kernel" may come up late when other kernels run
            accept.first.click()
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")  # type: ignore[attr-defined]
        try:
            page.wait_for_function(  # type: ignore[attr-defined]
                "e => !/\\[\\s*\\]/.test(e.textContent)", arg=prompt.element_handle(),
                timeout=3000)
            return
        except Exception:  # noqa: BLE001 - "[ ]:" still: the kernel dropped it; try again
            continue
    raise AssertionError(f"cell {index} never started running")


def button(widget: object, label: str) -> object:
    """A widget button by its exact text (ipywidgets buttons carry an icon and a tooltip)."""
    return widget.locator("button", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))  # type: ignore[attr-defined]


def screenshot(locator: object, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    locator.screenshot(path=str(path))  # type: ignore[attr-defined]
    return path
