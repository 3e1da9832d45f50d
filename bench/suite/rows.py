"""One measurement of the report (``Row``), and how each benchmark's results become rows.

Each ``*_rows`` function takes what its benchmark wrote with ``--json`` (parsed) and what it
printed; only ``build_rows`` reads the printed text (``bench_build.py`` has no JSON output).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


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
