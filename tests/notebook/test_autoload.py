"""Installed from a wheel, imagebuild-nb's magics load in every new kernel, unless opted out."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.notebook.conftest import cell_text

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.kernel

PROBE = (
    "magics = get_ipython().magics_manager.magics\n"
    "print('line:', 'imagebuild' in magics['line'], 'cell:', 'imagebuild' in magics['cell'])\n"
    "print('names:', sorted(k for k in globals() if 'imagebuild' in k.lower()))"
)


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the built wheel installed (dependencies borrowed from ours)."""
    base = tmp_path_factory.mktemp("wheel-env")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(base / "dist"), str(ROOT)], check=True)
    wheel = next((base / "dist").glob("imagebuild_nb-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip()
    # Dependencies come from our environment, appended after the new site-packages, so the
    # wheel's own copy of imagebuild_nb (not the editable source tree) is the one imported.
    Path(site, "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    assert (venv / "etc" / "ipython" / "startup" / "50-imagebuild_nb.py").is_file()
    return venv


@pytest.fixture
def wheel_kernel(wheel_env: Path, jupyter_env: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    spec_dir = jupyter_env / "data" / "kernels" / "wheel-env"
    spec_dir.mkdir(parents=True)
    spec = {"argv": [str(wheel_env / "bin" / "python"), "-m", "ipykernel_launcher", "-f",
                     "{connection_file}"], "display_name": "wheel env", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return "wheel-env"


def test_kernel_from_the_wheel_has_the_magics_without_load_ext(run_notebook, wheel_kernel,
                                                               monkeypatch):
    monkeypatch.delenv("IMAGEBUILD_NB_NO_AUTOLOAD", raising=False)
    notebook = run_notebook([PROBE, "import imagebuild_nb; print(imagebuild_nb.__file__)"],
                            kernel_name=wheel_kernel)
    text = cell_text(notebook.cells[0])
    assert "line: True cell: True" in text
    assert "names: []" in text  # the startup file leaves nothing in the user namespace
    assert "wheel-env" in cell_text(notebook.cells[1])  # the wheel's copy, not the source tree
    assert not any(o.output_type == "stream" and o.name == "stderr"
                   for cell in notebook.cells for o in cell.outputs)


def test_opt_out_variable_turns_autoload_off(run_notebook, wheel_kernel, monkeypatch):
    monkeypatch.setenv("IMAGEBUILD_NB_NO_AUTOLOAD", "1")
    notebook = run_notebook([PROBE], kernel_name=wheel_kernel)
    assert "line: False cell: False" in cell_text(notebook.cells[0])
