"""bench/bench_service.py against the real service and engine: it measures live delivery or
says clearly why it cannot (it once died with an IndexError when its base image was missing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_service.py"

pytestmark = [pytest.mark.engine, pytest.mark.registry]


def run_bench(*args: str, base: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IMAGEBUILD_NB_BENCH_BASE": base,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_a_missing_base_image_is_a_clear_error_not_an_index_error(plain_registry) -> None:
    base = f"{plain_registry.host}/bench/missing-{uuid.uuid4().hex[:12]}:latest"
    done = run_bench("--clients", "1", "--submissions", "1", base=base)
    assert done.returncode != 0
    assert "IndexError" not in done.stderr
    assert f"base image {base} is missing" in done.stderr
    assert "scripts/setup.sh" in done.stderr


def test_every_client_measures_every_log_line_live(busybox_base: str, tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    done = run_bench("--clients", "3", "--submissions", "1", "--json", str(results),
                     base=busybox_base)
    assert done.returncode == 0, done.stderr[-3000:]
    (delivery,) = json.loads(results.read_text())["delivery"]
    # Every client connected before the build started: all 200 ticks of each are live.
    assert delivery["clients"] == 3
    assert delivery["events"] >= 3 * 200
    assert delivery["min_events"] == delivery["max_events"]
