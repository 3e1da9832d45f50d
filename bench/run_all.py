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
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TAIL_LINES = 40


@dataclass
class Row:
    """One measurement. ``better`` says which direction is good for this figure."""

    measurement: str
    ours: float | None
    alternative: str
    theirs: float | None
    unit: str
    better: str = "lower"  # or "higher"
    note: str = ""

    def ratio(self) -> str:
        if self.ours is None or self.theirs is None or self.ours <= 0 or self.theirs <= 0:
            return "—"
        times = self.theirs / self.ours if self.better == "lower" else self.ours / self.theirs
        return f"{times:.2f}×" if times < 10 else f"{times:,.0f}×"


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


# -- turning each benchmark's results into rows -----------------------------------------------


def identity_rows(data: dict[str, Any], _: str) -> list[Row]:
    size = f"{data['entries']:,} entries incl. junk"
    rows = [
        Row(f"content tag of a 20,000-file / 300 MB folder, first call ({size})",
            data["first_s"], "Flyte `.with_source_folder(tree).uri` (fresh process)",
            data["flyte_s"], "s"),
        Row("same, first call vs the floor", data["first_s"],
            "plain sha256 read of every file (lower bound)", data["sha256_read_s"], "s",
            note="target: ours <= 1.3x the floor (ratio >= 0.77)"),
        Row("same, second call on the unchanged tree", data["second_s"],
            "os.walk + lstat of every entry (lower bound)", data["stat_walk_s"], "s",
            note="target: ours <= 2x the floor (ratio >= 0.5)"),
    ]
    if data["flyte_s"] is None:
        rows[0].note = "Flyte not run (no /var/tmp/flyte-venv; see bench/README.md)"
    return rows


def exists_rows(data: list[dict[str, Any]], _: str) -> list[Row]:
    rows = []
    for network in dict.fromkeys(t["network"] for t in data):
        timings = {t["tool"]: t for t in data if t["network"] == network}
        ours = timings.get("imagebuild-nb (cold)")
        warm = timings.get("imagebuild-nb (warm)")
        for tool in ("docker manifest inspect", "skopeo inspect"):
            theirs = timings.get(tool)
            if ours is None or theirs is None:
                continue
            wrong = [t["tool"] for t in (ours, theirs) if not t["correct"]]
            note = f"{theirs['images']} images for the CLI"
            if warm is not None:
                note += f"; ours with a warm client: {warm['per_image_ms']:.2f} ms/image"
            if wrong:
                note += f"; WRONG ANSWERS from {', '.join(wrong)}"
            rows.append(Row(f"existence of 50 present + 50 absent images, {network}",
                            ours["per_image_ms"], f"`{tool}` per image", theirs["per_image_ms"],
                            "ms/image", note=note))
    return rows


def service_rows(data: dict[str, Any], _: str) -> list[Row]:
    none = "none (no comparable build service runs here)"
    rows = []
    for key, label in (("submit_sequential", "one at a time"), ("submit_parallel", "10 at once")):
        if key in data:
            item = data[key]
            rows.append(Row(f"build service: submission round trip ({item['count']} "
                            f"submissions, {label}), median", item["median_ms"], none, None, "ms",
                            note=f"p95 {item['p95_ms']:.1f} ms"))
    for item in data.get("delivery", []):
        clients = f"{item['clients']} SSE client" + ("s" if item["clients"] > 1 else "")
        rows.append(Row(f"build service: event delivery to {clients} at once, median",
                        item["median_ms"], none, None, "ms",
                        note=f"p95 {item['p95_ms']:.1f} ms; each client got "
                             f"{item['min_events']}..{item['max_events']} events"))
    if "dedup" in data:
        item = data["dedup"]
        rows.append(Row("build service: builds started for 20 identical concurrent submissions",
                        item["builds"], none, None, "builds",
                        note=f"{item['joined']} submissions joined; all answered in "
                             f"{item['answered_ms']:.0f} ms"))
    return rows


def widget_rows(data: dict[str, Any], _: str) -> list[Row]:
    source, ours, naive = data["rows"]
    base = source["cpu_s"]
    capped = naive["lines"] < data["lines"]
    cap = (f"naive run stopped by its {data['naive_cap_s']:.0f} s cap after "
           f"{naive['lines']:,} of {data['lines']:,} lines" if capped else "")

    def per_10k(row: dict[str, Any], value: float) -> float:
        return value / max(row["lines"], 1) * 10_000

    alternative = "ipywidgets `Output.append_stdout` per line"
    return [
        Row(f"{data['lines']:,}-line build log into a notebook: lines shown per second",
            ours["lines"] / ours["wall_s"], alternative, naive["lines"] / naive["wall_s"],
            "lines/s", better="higher", note=cap),
        Row("same: kernel CPU on the log path per 10,000 lines",
            per_10k(ours, ours["cpu_s"] - base), alternative,
            per_10k(naive, naive["cpu_s"] - base), "s",
            note=f"kernel CPU minus a source-only run ({base:.2f} s)"),
        Row("same: comm messages per second on IOPub", ours["comm_msgs_per_s"], alternative,
            naive["comm_msgs_per_s"], "msgs/s", note="Jupyter drops IOPub floods (1000 msg/s)"),
        Row("same: comm bytes per 10,000 lines", per_10k(ours, ours["comm_mb"] * 1024),
            alternative, per_10k(naive, naive["comm_mb"] * 1024), "KB"),
        Row("same: peak kernel memory above the start", ours["peak_rss_mb"], alternative,
            naive["peak_rss_mb"], "MB", note="the naive run saw fewer lines" if capped else ""),
    ]


_SECTION = re.compile(r"^\((\w)\) (.*)$")
_BUILD_ROW = re.compile(r"^  (\S.*?)\s+([\d.]+)ms(?:\s+[\d.]+x)?\s*$")


def build_rows(_: Any, output: str) -> list[Row]:
    """``bench_build.py`` prints, per context, ``build()`` first and then the cached builds."""
    rows: list[Row] = []
    section, ours = "", None
    for line in output.splitlines():
        match = _SECTION.match(line.strip())
        if match:
            section, ours = match.group(2), None
            continue
        match = _BUILD_ROW.match(line)
        if not match or not section:
            continue
        label, ms = match.group(1), float(match.group(2))
        if ours is None:
            ours = ms
            continue
        rows.append(Row(f"`build()` of an image that exists, {section}", ours,
                        label.replace("cached build, ", "fully cached build: "), ms, "ms"))
    return rows


def installers_rows(data: dict[str, Any], _: str) -> list[Row]:
    packages = ", ".join(data["packages"])
    return [
        Row(f"install step of {packages}, cold (uv vs pip)", data["uv_install_s"],
            "the same spec installed with pip", data["pip_install_s"], "s",
            note="target: >= 3x"),
        Row("one-line source edit: rebuild + push (vs the cold build + push)",
            data["edit_rebuild_and_push_s"], "the cold uv build + push of the same image",
            data["uv_cold_build_and_push_s"], "s",
            note=f"target: <= 10% of the cold build; edited image runs: "
                 f"{data['edited_image_runs']}"),
    ]


def farm_rows(data: dict[str, Any], _: str) -> list[Row]:
    """Two replicas (and two engines) against one: what the farm's second member buys."""
    one = "the same with 1 replica"
    rows = []
    submit = {item["replicas"]: item for item in data.get("submit", [])}
    if 1 in submit and 2 in submit:
        rows.append(Row(f"build farm: submission round trip ({submit[2]['count']} submissions, "
                        "10 at once, spread over 2 replicas on PostgreSQL), median",
                        submit[2]["median_ms"], one, submit[1]["median_ms"], "ms",
                        note=f"p95 {submit[2]['p95_ms']:.1f} ms vs {submit[1]['p95_ms']:.1f} ms"))
    delivery = {(item["replicas"], item["clients"]): item for item in data.get("delivery", [])}
    for (replicas, clients), item in sorted(delivery.items()):
        single = delivery.get((1, clients))
        if replicas != 2 or single is None:
            continue
        label = f"{clients} SSE client" + ("s" if clients > 1 else "")
        rows.append(Row(f"build farm: event delivery to {label} over 2 replicas, median",
                        item["median_ms"], one, single["median_ms"], "ms",
                        note=f"p95 {item['p95_ms']:.1f} ms vs {single['p95_ms']:.1f} ms; "
                             f"{item['events']} log events"))
    throughput = {item["engines"]: item for item in data.get("throughput", [])}
    if 1 in throughput and 2 in throughput:
        two = throughput[2]
        rows.append(Row(f"build farm: builds per minute, {two['images']} small distinct images "
                        "on 2 engines", two["builds_per_minute"], "the same on 1 engine",
                        throughput[1]["builds_per_minute"], "builds/min", better="higher",
                        note=f"per engine {two['per_engine']}"))
    return rows


def freeze_rows(data: dict[str, Any], _: str) -> list[Row]:
    timings = data["freeze"]
    rows = [Row(f"freeze of {timings['distributions']} distributions into an Image with its "
                f"content tag ({timings['pinned']} pinned)", timings["total_ms"],
                "`pip freeze` of .venv alone (pins nothing into an image)",
                timings["pip_freeze_ms (.venv only)"], "ms",
                note=f"read {timings['read_ms']:.0f} ms, select {timings['select_ms']:.1f} ms, "
                     f"image+tag {timings['image+tag_ms']:.0f} ms")]
    builds = {row["freeze"]: row for row in data.get("builds", [])}
    full, only = builds.get("full"), builds.get("only_imported")
    if full and only:
        rows += [
            Row("image of a frozen environment, only_imported (forced rebuild, uv cache warm)",
                only["build_s"], "the full freeze of the same environment", full["build_s"], "s",
                note=f"{only['distributions']} vs {full['distributions']} distributions; "
                     f"driver {only['driver']}"),
            Row("same: image size", only["size_mb"], "the full freeze's image",
                full["size_mb"], "MB"),
        ]
    return rows


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


# -- the machine -------------------------------------------------------------------------------


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


# -- running ---------------------------------------------------------------------------------


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
