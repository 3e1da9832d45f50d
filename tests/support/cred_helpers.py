"""Fake ``docker-credential-<name>`` programs: real processes on a temporary PATH entry."""

from __future__ import annotations

import stat
from pathlib import Path


def install_helper(directory: Path, name: str, script: str) -> Path:
    """Write ``docker-credential-<name>`` (a sh script) into ``directory``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path
