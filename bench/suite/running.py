"""Runs one benchmark as its own subprocess (so one that crashes cannot take the others down),
keeps its output under the results folder and records status, time and rows on its ``Bench``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import BENCH, ROOT
from .benches import Bench


def run(bench: Bench, quick: bool, results: Path) -> None:
    script = BENCH / bench.script
    bench.args = list(bench.quick_args if quick else bench.full_args)
    json_path = results / f"{bench.name}.json"
    command = [sys.executable, str(script), *bench.args]
    if bench.json_output:
        command += ["--json", str(json_path)]
    print(f"== {bench.name}: {' '.join(command[1:])}", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                     os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=bench.timeout)
        bench.stdout = done.stdout
        bench.output = done.stdout + (f"\n[stderr]\n{done.stderr}" if done.stderr.strip() else "")
        code: int | None = done.returncode
    except subprocess.TimeoutExpired as error:
        bench.output = _text(error.stdout) + _text(error.stderr)
        code = None
    bench.seconds = time.perf_counter() - started
    (results / f"{bench.name}.log").write_text(bench.output)
    print(bench.output.rstrip()[-3000:], flush=True)
    if code is None:
        bench.status = f"timed out after {bench.timeout:.0f} s"
        return
    try:
        data = json.loads(json_path.read_text()) if bench.json_output else None
        bench.table = bench.rows(data, done.stdout)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        bench.status = f"failed (exit {code}; no results: {error!r})"
        return
    if not bench.table:
        bench.status = f"failed (exit {code}; nothing measured)"
    elif code != 0:
        bench.status = f"ran, exit {code} (see its output below)"
    else:
        bench.status = "ok"


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""
