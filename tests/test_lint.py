"""The project lints clean: ``ruff check`` (rules and exclusions in pyproject.toml) reports
nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    # The project venv's interpreter, so the pinned ruff of the test extra runs; from the root, so
    # it reads [tool.ruff] and lints the whole project (its cache, .ruff_cache, is git-ignored).
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"ruff is not clean:\n{result.stdout}{result.stderr}"
