"""Run every benchmark of the project and write ``bench/REPORT.md`` (not a test).

    .venv/bin/python bench/run_all.py            # the issues' sizes (20,000 files / 300 MB, ...)
    .venv/bin/python bench/run_all.py --quick    # reduced sizes, a few minutes
    .venv/bin/python bench/run_all.py --only identity exists

Each benchmark runs as its own subprocess (so one that crashes cannot take the others down),
its output is kept under ``bench/results/<date>/`` (git-ignored), and its figures are read from
the ``--json`` file it writes (``bench_build.py`` has no JSON output: its printed table is
parsed). The report holds one row per measurement: imagebuild-nb's figure, the alternative's
figure measured in the same run, and how many times better imagebuild-nb is, plus the machine
it came from (cores, memory, load average at start and end, date, Python, Docker).
Needs the services of ``scripts/setup.sh`` (engine, registry on localhost:5001, base images).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
from pathlib import Path

# The pieces live in bench/suite/ (this script's folder is first on sys.path when it runs).
from suite import BENCH
from suite.benches import BENCHES
from suite.machine import machine
from suite.report import report
from suite.running import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="reduced sizes (fewer rounds, images, clients, lines)")
    parser.add_argument("--only", nargs="+", choices=[b.name for b in BENCHES],
                        help="run only these benchmarks")
    parser.add_argument("--report", type=Path, default=BENCH / "REPORT.md")
    args = parser.parse_args(argv)
    before = machine()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = BENCH / "results" / stamp
    results.mkdir(parents=True, exist_ok=True)
    print(f"machine: {json.dumps(before)}", flush=True)
    chosen = [b for b in BENCHES if not args.only or b.name in args.only]
    for bench in chosen:
        run(bench, args.quick, results)
        print(f"== {bench.name}: {bench.status} ({bench.seconds:.0f} s)", flush=True)
    load_after = " ".join(f"{load:.2f}" for load in os.getloadavg())
    text = report(chosen, before, load_after, args.quick, results)
    args.report.write_text(text + "\n")
    shutil.copy(args.report, results / "REPORT.md")
    print(f"wrote {args.report}", flush=True)
    return 0 if all(b.status == "ok" for b in chosen) else 1


if __name__ == "__main__":
    raise SystemExit(main())
