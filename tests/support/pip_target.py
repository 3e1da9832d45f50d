"""Real wheels from PyPI installed into a plain folder (``pip install --target``): a
site-packages the freeze code can read without a venv of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def pip_install_target(target: Path, *requirements: str) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--disable-pip-version-check", "--target", str(target), *requirements],
                   check=True, capture_output=True)
    return target
