"""What the report says about the machine: date, OS, cores, memory, load, Python, Docker, commit."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

from . import ROOT


def _run_text(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return done.stdout.strip() or "?"


def machine() -> dict[str, str]:
    memory = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    dirty = _run_text(["git", "status", "--porcelain", "--untracked-files=no"])
    commit = _run_text(["git", "rev-parse", "--short", "HEAD"])
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "os": _os_name(),
        "kernel": platform.release(),
        "nproc": _run_text(["nproc"]),
        "memory": memory,
        "load": " ".join(f"{load:.2f}" for load in os.getloadavg()),
        "python": platform.python_version(),
        "docker": _run_text(["docker", "version", "--format", "{{.Server.Version}}"]),
        "commit": commit + (" (+ uncommitted changes)" if dirty not in ("", "?") else ""),
    }


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()
