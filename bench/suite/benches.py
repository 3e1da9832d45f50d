"""Every benchmark ``run_all.py`` knows: its script, its full and ``--quick`` arguments, how its
results become rows, and (once run) its outcome."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .rows import (
    Row,
    build_rows,
    exists_rows,
    farm_rows,
    freeze_rows,
    identity_rows,
    installers_rows,
    service_rows,
    widget_rows,
)


@dataclass
class Bench:
    name: str
    script: str
    what: str
    full_args: list[str]
    quick_args: list[str]
    rows: Callable[[Any, str], list[Row]]
    json_output: bool = True
    timeout: float = 3600
    status: str = "not run"
    seconds: float = 0.0
    output: str = ""
    stdout: str = ""
    table: list[Row] = field(default_factory=list)
    args: list[str] = field(default_factory=list)


BENCHES = [
    Bench("identity", "bench_identity.py",
          "content identity (tag) of a 20,000-file / 300 MB source folder",
          [], ["--rounds", "1"], identity_rows, timeout=1800),
    Bench("exists", "bench_exists.py",
          "existence of 100 images on loopback and through a 20 ms RTT proxy",
          [], ["--cli-sample", "20"], exists_rows, timeout=1800),
    Bench("build", "bench_build.py",
          "build() of an existing image vs fully cached builds (small and 300 MB contexts)",
          [], ["--repeat", "2", "--slow-repeat", "1"], build_rows, json_output=False,
          timeout=3600),
    Bench("service", "bench_service.py",
          "build service: submission latency, SSE delivery, dedup",
          [], ["--quick"], service_rows, timeout=1800),
    Bench("installers", "bench_installers.py",
          "uv vs pip install of pandas, scikit-learn, matplotlib; a source edit after them",
          [], [], installers_rows, timeout=1800),
    Bench("widget_log", "bench_widget_log.py",
          "100,000-line build log in the widget vs Output.append_stdout",
          [], ["--lines", "20000", "--naive-cap", "5"], widget_rows, timeout=1800),
    Bench("farm", "bench_farm.py",
          "build farm: 1 vs 2 replicas on PostgreSQL (submission, SSE delivery), 1 vs 2 engines",
          [], ["--clients", "1", "10", "--submissions", "10", "--images", "8"], farm_rows,
          timeout=3600),
    Bench("freeze", "bench_freeze.py",
          "freeze of 200+ distributions vs pip freeze; only_imported vs full image",
          [], ["--rounds", "2"], freeze_rows, timeout=3600),
]
