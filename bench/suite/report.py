"""The Markdown of ``bench/REPORT.md``: the machine, one row per measurement, each run's status
and the tail of each benchmark's output."""

from __future__ import annotations

from pathlib import Path

from . import ROOT
from .benches import Bench

TAIL_LINES = 40


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "builds":
        return f"{value:.0f}"
    if unit == "s" and value < 1:
        return f"{value * 1000:.1f} ms"
    digits = 0 if abs(value) >= 100 else 2 if abs(value) < 10 else 1
    return f"{value:,.{digits}f} {unit}"


def report(benches: list[Bench], before: dict[str, str], load_after: str, quick: bool,
           results: Path) -> str:
    command = "`.venv/bin/python bench/run_all.py" + (" --quick`" if quick else "`")
    lines = [
        "# Benchmark report",
        "",
        f"Written by {command} on {before['date']}"
        + (" with **reduced sizes** (`--quick`)." if quick else " with the full sizes."),
        "Every alternative was measured in the same run, on the same machine, against the same "
        "services. **Ratio** = how many times better imagebuild-nb's figure is (the "
        "alternative's time divided by ours; for throughput, ours divided by theirs): above 1 "
        "imagebuild-nb wins, below 1 the alternative does. Rows against a *lower bound* (a "
        "plain read or walk of the files) are expected below 1.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| date | {before['date']} |",
        f"| OS / kernel | {before['os']} / {before['kernel']} |",
        f"| CPUs (`nproc`) | {before['nproc']} |",
        f"| memory | {before['memory']} |",
        f"| load average (1/5/15 min) at start | {before['load']} |",
        f"| load average at end | {load_after} |",
        f"| Python | {before['python']} |",
        f"| Docker engine | {before['docker']} |",
        f"| commit | {before['commit']} |",
        "",
        "The machine is shared with test runs: a high load average means noisier figures.",
        "",
        "## Results",
        "",
        "| measurement | imagebuild-nb | alternative | alternative's figure | ratio | note |",
        "|---|---:|---|---:|---:|---|",
    ]
    for bench in benches:
        for row in bench.table:
            lines.append(f"| {row.measurement} | {_figure(row.ours, row.unit)} | "
                         f"{row.alternative} | {_figure(row.theirs, row.unit)} | {row.ratio()} "
                         f"| {row.note} |")
    lines += ["", "## Runs", "", "| benchmark | what | arguments | status | wall time |",
              "|---|---|---|---|---:|"]
    for bench in benches:
        args = " ".join(bench.args) or "(defaults)"
        lines.append(f"| `{bench.script}` | {bench.what} | `{args}` | {bench.status} | "
                     f"{bench.seconds:.0f} s |")
    lines += ["", f"Full outputs (stdout and stderr) were saved under `{_relative(results)}/` "
              "(not committed); the last lines each printed on stdout follow.", ""]
    for bench in benches:
        text = bench.stdout if bench.stdout.strip() else bench.output
        if not text.strip():
            continue
        tail = "\n".join(text.rstrip().splitlines()[-TAIL_LINES:])
        lines += [f"<details><summary><code>{bench.script}</code> output</summary>", "",
                  "```", tail, "```", "", "</details>", ""]
    return "\n".join(lines)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)
