"""A throwaway kernel environment for the freeze tests: a clean venv with ipykernel, this
project (editable), two small PyPI packages (PyYAML imported as ``yaml``, six) and one
editable local package. Made with pip from PyPI once per machine (about a minute) and cached
under a key that covers its recipe, the interpreter and the repository path.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECIPE_VERSION = 1
PYPI_PACKAGES = ("ipykernel", "PyYAML==6.0.2", "six==1.16.0")
EDITABLE_NAME = "ibnb-editable-demo"
EDITABLE_MODULE = "ibnb_editable_demo"
CACHE_ROOT = Path(os.environ.get("IMAGEBUILD_NB_TEST_CACHE", "/var/cache/imagebuild-nb-tests"))


@dataclass(frozen=True)
class KernelVenv:
    root: Path
    editable_source: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def install_kernelspec(self, data_dir: Path, name: str) -> str:
        """A kernelspec named ``name`` in ``data_dir`` (JUPYTER_DATA_DIR) that runs this venv."""
        folder = data_dir / "kernels" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kernel.json").write_text(json.dumps({
            "argv": [str(self.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": name, "language": "python"}))
        return name


def _key() -> str:
    text = json.dumps([RECIPE_VERSION, PYPI_PACKAGES, sys.version, str(REPO)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_editable(source: Path) -> None:
    package = source / EDITABLE_MODULE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text('__version__ = "0.3.1"\n\ndef hello() -> str:\n'
                                         '    return "hello from the editable package"\n')
    (source / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{EDITABLE_NAME}"
        version = "0.3.1"
        dependencies = ["six"]

        [tool.setuptools]
        packages = ["{EDITABLE_MODULE}"]
        """))


def kernel_venv() -> KernelVenv:
    """The cached environment, made on first use (a file lock keeps parallel runs apart)."""
    root = CACHE_ROOT / f"kernel-venv-{_key()}"
    source = CACHE_ROOT / f"kernel-venv-{_key()}-editable"
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(CACHE_ROOT / f"kernel-venv-{_key()}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / ".complete"
        if not done.exists():
            subprocess.run(["rm", "-rf", str(root), str(source)], check=True)
            _write_editable(source)
            subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
            pip = [str(root / "bin" / "python"), "-m", "pip", "install", "-q",
                   "--disable-pip-version-check"]
            subprocess.run([*pip, *PYPI_PACKAGES, "-e", str(REPO), "-e", str(source)],
                           check=True)
            done.write_text("ok\n")
    return KernelVenv(root, source)


if __name__ == "__main__":
    print(kernel_venv())
