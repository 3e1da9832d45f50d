"""The package type-checks: ``mypy`` (strict, configured in pyproject.toml) reports nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_mypy_strict_is_clean():
    # The project venv's interpreter, so mypy sees the installed dependencies and their types;
    # run from the root so it reads [tool.mypy] (its cache, .mypy_cache, is git-ignored).
    result = subprocess.run([sys.executable, "-m", "mypy", "imagebuild_nb"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"mypy is not clean:\n{result.stdout}{result.stderr}"
