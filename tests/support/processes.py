"""Stopping a process the tests started: SIGTERM, time to exit, then SIGKILL."""

from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen, grace: float) -> None:  # type: ignore[type-arg]
    """Ask ``process`` to exit (SIGTERM); SIGKILL it if it is still there after ``grace``
    seconds. It is reaped either way, so nothing outlives the test as a zombie."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
