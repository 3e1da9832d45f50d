"""Benchmark: a 100,000-line build log shown by ImageBuildWidget vs the naive Output widget.

The widget drives the real engine and ``ImageBuild``; only the builder is scripted
(``imagebuild_nb.testing.ScriptedBuilder``), delivering the lines as fast as it can.

Each approach runs in its own fresh IPython kernel (jupyter_client), fed by the same in-kernel
source: a thread delivering ``LogLine`` events to a callback as fast as it can (like the
Engine-API driver, which delivered 100,000 lines in 0.34 s). Measured:

- kernel CPU time (``time.process_time``, all threads) minus a "source only" baseline run, i.e.
  the CPU spent on the log path itself;
- comm messages on IOPub (counted by the client) and their rate over the build's duration;
- peak kernel RSS above the RSS before the run (sampled every 20 ms inside the kernel).

The naive approach (``Output.append_stdout`` per line, which re-sends the whole outputs list
every call) is quadratic, so it is stopped after ``--naive-cap`` seconds; the lines it got
through are reported.

    python bench/bench_widget_log.py [--lines 100000] [--naive-cap 20]
"""

from __future__ import annotations

import argparse
import json
import queue
import time
from pathlib import Path
from typing import Any

from jupyter_client.manager import start_new_kernel

PRELUDE = r'''
import json, threading, time
from imagebuild_nb.events import BuildFinished, LogLine

def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

class _Peak:
    def __init__(self):
        self.base = _rss(); self.peak = self.base; self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
    def _run(self):
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, _rss())

class Source:
    """A build handle whose thread delivers N log lines as fast as possible (or until cap)."""
    def __init__(self, n, cap=None):
        self.n, self.cap, self.delivered = n, cap, 0
        self.done, self.status, self.digest = threading.Event(), "running", None
    def subscribe(self, callback):
        def run():
            deadline = None if self.cap is None else time.monotonic() + self.cap
            for i in range(self.n):
                callback(LogLine(text=f"\x1b[32m#{i} RUN step output: "
                                      f"compiling module_{i % 977}.c -O2\x1b[0m"))
                self.delivered = i + 1
                if deadline is not None and i % 64 == 0 and time.monotonic() > deadline:
                    break
            callback(BuildFinished(uri="localhost:5001/bench/log:1", digest="sha256:" + "0" * 64))
            self.status, self.digest = "built", "sha256:" + "0" * 64
            self.done.set()
        threading.Thread(target=run, daemon=True).start()
    def wait(self, timeout=None):
        self.done.wait(timeout); return self
    def cancel(self):
        pass

class Engine:
    def __init__(self, n, cap=None): self.n, self.cap, self.last = n, cap, None
    def check(self, image): raise RuntimeError("not used")
    def build(self, image, **kwargs):
        self.last = Source(self.n, self.cap); return self.last

def _report(label, source, cpu0, wall0, peak):
    peak.stop.set()
    print("BENCH " + json.dumps({
        "label": label, "lines": source.delivered,
        "cpu_s": time.process_time() - cpu0, "wall_s": time.monotonic() - wall0,
        "peak_rss_mb": (max(peak.peak, _rss()) - peak.base) / 2**20}))
'''

SCENARIOS = {
    "source only": r'''
engine = Engine({lines})
peak, cpu0, wall0 = _Peak(), time.process_time(), time.monotonic()
handle = engine.build(None)
handle.subscribe(lambda event: None)
handle.wait()
_report("source only", handle, cpu0, wall0, peak)
''',
    "ImageBuildWidget": r'''
from IPython.display import display
from imagebuild_nb import Image, ImageBuildEngine
from imagebuild_nb.notebook.widget import ImageBuildWidget
from imagebuild_nb.settings import Settings
from imagebuild_nb.testing import ScriptedBuilder, ScriptedRegistry

class Delivered:  # counts what the scripted builder handed to the real ImageBuild
    delivered = 0

def lines(request):
    for i in range({lines}):
        Delivered.delivered = i + 1
        yield LogLine(text=f"\\x1b[32m#{{i}} RUN step output: "
                           f"compiling module_{{i % 977}}.c -O2\\x1b[0m")

registry = ScriptedRegistry()
builder = ScriptedBuilder(lines, registry=registry)
engine = ImageBuildEngine(Settings(), builders={{"local": builder}}, checker=registry)
img = Image.from_base("localhost:5001/bench/base:1", name="bench/log").with_commands(["make"])
w = ImageBuildWidget(img, engine=engine)
display(w)
peak, cpu0, wall0 = _Peak(), time.process_time(), time.monotonic()
w.build_button.click()
assert w.wait_idle(600), "widget did not settle"
_report("ImageBuildWidget", Delivered, cpu0, wall0, peak)
print("BENCH-TAIL " + json.dumps({{"status": w.status, "lines_total": w._log.lines_total,
                                   "tail_len": len(w._log.tail()),
                                   "panel_chars": len(w.panel.value)}}))
''',
    "naive Output.append_stdout": r'''
from IPython.display import display
import ipywidgets
out = ipywidgets.Output()
display(out)
engine = Engine({lines}, cap={cap})
peak, cpu0, wall0 = _Peak(), time.process_time(), time.monotonic()
handle = engine.build(None)
handle.subscribe(lambda e: out.append_stdout(e.text + "\n") if isinstance(e, LogLine) else None)
handle.wait()
_report("naive Output.append_stdout", handle, cpu0, wall0, peak)
''',
}


def run_scenario(code: str) -> dict[str, Any]:
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        kc.execute_interactive(PRELUDE, timeout=120, output_hook=lambda msg: None)
        comm_times: list[float] = []
        per_comm: dict[str, int] = {}
        comm_bytes = 0
        results: dict[str, Any] = {}
        msg_id = kc.execute(code)
        while True:
            try:
                msg = kc.get_iopub_msg(timeout=900)
            except queue.Empty as error:
                raise RuntimeError("kernel went silent") from error
            kind = msg["header"]["msg_type"]
            if kind == "comm_msg":
                comm_times.append(time.monotonic())
                comm_id = msg["content"]["comm_id"]
                per_comm[comm_id] = per_comm.get(comm_id, 0) + 1
                comm_bytes += len(json.dumps(msg["content"]))
            elif kind == "stream":
                for line in msg["content"]["text"].splitlines():
                    if line.startswith("BENCH "):
                        results.update(json.loads(line[6:]))
                    elif line.startswith("BENCH-TAIL "):
                        results["widget"] = json.loads(line[11:])
            elif kind == "error":
                raise RuntimeError("\n".join(msg["content"]["traceback"]))
            elif (kind == "status" and msg["content"]["execution_state"] == "idle"
                  and msg["parent_header"].get("msg_id") == msg_id):
                break
        results["comm_msgs"] = len(comm_times)
        results["busiest_comm_msgs"] = max(per_comm.values(), default=0)
        results["comm_mb"] = comm_bytes / 2**20
        wall = results.get("wall_s") or 1e-9
        results["comm_msgs_per_s"] = len(comm_times) / wall
        results["comm_mb_per_s"] = results["comm_mb"] / wall
        return results
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--naive-cap", type=float, default=20.0,
                        help="stop the naive run after this many seconds")
    parser.add_argument("--json", type=Path, help="also write the rows here (bench/run_all.py)")
    args = parser.parse_args()
    rows = []
    for label, template in SCENARIOS.items():
        print(f"running {label} ...", flush=True)
        rows.append(run_scenario(template.format(lines=args.lines, cap=args.naive_cap)))
    baseline = rows[0]["cpu_s"]
    print(f"\n{args.lines} log lines; log-path CPU = kernel CPU minus the source-only run "
          f"({baseline:.2f} s)\n")
    header = (f"{'approach':28} {'lines':>8} {'wall s':>7} {'kernel CPU s':>12} "
              f"{'log-path CPU s':>14} {'comm msgs':>9} {'msgs/s':>7} {'comm MB':>8} "
              f"{'MB/s':>6} {'peak RSS +MB':>12}")
    print(header)
    for row in rows:
        print(f"{row['label']:28} {row['lines']:>8} {row['wall_s']:>7.2f} {row['cpu_s']:>12.2f} "
              f"{row['cpu_s'] - baseline:>14.2f} {row['comm_msgs']:>9} "
              f"{row['comm_msgs_per_s']:>7.1f} {row['comm_mb']:>8.2f} {row['comm_mb_per_s']:>6.2f} "
              f"{row['peak_rss_mb']:>12.1f}")
    print(f"\nImageBuildWidget: {rows[1]['busiest_comm_msgs']} of its {rows[1]['comm_msgs']} "
          "comm messages went to the live panel; the rest are control state changes at the "
          "start and end of the build")
    widget = rows[1].get("widget", {})
    print(f"\nwidget end state: {widget}")
    rate, peak = rows[1]["comm_msgs_per_s"], rows[1]["peak_rss_mb"]
    print(f"targets: at most 10 comm messages per second: {rate:.1f}/s "
          f"{'met' if rate <= 10 else 'NOT MET'}; bounded kernel memory: peak +{peak:.1f} MB "
          f"{'met' if peak < 64 else 'NOT MET'} (limit +64 MB for any log length)")
    naive = rows[2]
    if naive["lines"] < args.lines:
        print(f"naive run stopped by the {args.naive_cap:.0f} s cap after {naive['lines']} of "
              f"{args.lines} lines ({naive['lines'] / naive['wall_s']:.0f} lines/s, "
              f"and slowing: every append re-sends all previous output)")
    if args.json:
        args.json.write_text(json.dumps({"lines": args.lines, "naive_cap_s": args.naive_cap,
                                         "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
