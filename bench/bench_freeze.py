"""Freezing environments: time to freeze 200+ distributions, and only_imported vs full freeze.

    .venv/bin/python bench/bench_freeze.py [--json PATH] [--skip-builds]

1. Freeze time: the project's .venv plus the interpreter's own site-packages (200+ distinct
   distributions) read through ``path=``: reading metadata, choosing, making the Image and
   its content tag; against ``pip freeze`` (what a user would otherwise run, and which pins
   nothing into an image).
2. only_imported vs full: one environment (a venv made once under /var/tmp with pandas,
   requests, rich, PyYAML, six, click, jinja2), frozen in full and with only ``yaml`` and
   ``requests`` imported; both built with uv by the local builder (BuildKit when there), each
   timed on a forced rebuild after a warm-up build (downloads cached in the uv cache mount, so
   the figure is install + export), and the image sizes from the engine.

Needs the embedded settings (``source scripts/embedded-env.sh``) for the builds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import time
import uuid
from pathlib import Path
from typing import Any

import docker

from imagebuild_nb import ImageBuildEngine
from imagebuild_nb.freeze import freeze_image, from_environment, read_environment, select

ROOT = Path(__file__).resolve().parents[1]
VENV_SITE = ROOT / ".venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" \
    / "site-packages"
BENCH_VENV = Path("/var/tmp/imagebuild-nb-bench/freeze-venv")
BENCH_PACKAGES = ("pandas==2.2.3", "requests==2.32.3", "rich==13.9.4", "PyYAML==6.0.2",
                  "six==1.16.0", "click==8.1.7", "Jinja2==3.1.4")
IMPORTED = ("yaml", "requests")


def _site(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
        "site-packages"


def freeze_timings(rounds: int) -> dict[str, Any]:
    base = sysconfig.get_paths(vars={"base": sys.base_prefix,
                                     "platbase": sys.base_prefix})["purelib"]
    path = [str(VENV_SITE), base]
    env = read_environment(path)
    steps: dict[str, list[float]] = {"read": [], "select": [], "image+tag": [], "total": []}
    for _ in range(rounds):
        t0 = time.perf_counter()
        env = read_environment(path)
        t1 = time.perf_counter()
        chosen = select(env)
        t2 = time.perf_counter()
        image = freeze_image(env, name="bench-freeze", on_local="ship",
                             exclude=[n for n in chosen
                                      if env.distributions[n].origin.kind != "index"])
        _ = image.uri
        t3 = time.perf_counter()
        steps["read"].append(t1 - t0)
        steps["select"].append(t2 - t1)
        steps["image+tag"].append(t3 - t2)
        steps["total"].append(t3 - t0)
    pip = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "pip", "freeze",
                        "--disable-pip-version-check"], check=True, capture_output=True)
        pip.append(time.perf_counter() - t0)
    return {"distributions": len(env.distributions), "pinned": len(select(env)),
            **{f"{k}_ms": statistics.median(v) * 1000 for k, v in steps.items()},
            "pip_freeze_ms (.venv only)": statistics.median(pip) * 1000}


def bench_venv() -> Path:
    done = BENCH_VENV / ".complete"
    if not done.exists():
        subprocess.run(["rm", "-rf", str(BENCH_VENV)], check=True)
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(BENCH_VENV / "bin" / "python"), "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", *BENCH_PACKAGES], check=True)
        done.write_text("ok\n")
    return BENCH_VENV


def build_comparison() -> list[dict[str, Any]]:
    site = str(_site(bench_venv()))
    client = docker.from_env(timeout=600)
    rows = []
    name = f"bench/freeze-{uuid.uuid4().hex[:8]}"
    try:
        for label, only in (("full", False), ("only_imported", True)):
            image = from_environment(name=name, path=[site], only_imported=only,
                                     modules=IMPORTED if only else None)
            pins = image.layers[0].packages  # type: ignore[attr-defined]
            ImageBuildEngine.build(image)  # warm-up: downloads land in the uv cache mount
            t0 = time.perf_counter()
            build = ImageBuildEngine.build(image, force=True)
            seconds = time.perf_counter() - t0
            size = client.images.get(image.uri).attrs["Size"]
            rows.append({"freeze": label, "distributions": len(pins), "build_s": seconds,
                         "size_mb": size / 1e6, "driver": build.driver, "uri": image.uri})
        base = ImageBuildEngine.default().settings.base_image_mirror
        if base:  # for scale: what the installs add on top of the base
            version = f"{sys.version_info.major}.{sys.version_info.minor}"
            reference = f"{base}/library/python:{version}-slim"
            rows.append({"freeze": "(base image)", "distributions": 0, "build_s": 0.0,
                         "size_mb": client.images.get(reference).attrs["Size"] / 1e6,
                         "driver": "-", "uri": None})
    finally:
        for row in rows:
            if row["uri"]:
                client.images.remove(row["uri"], force=True)
        client.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-builds", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    timings = freeze_timings(args.rounds)
    print(f"Freeze of {timings['distributions']} distributions "
          f"({timings['pinned']} pinned after leaving out tooling), median of {args.rounds}:")
    for key, value in timings.items():
        if key.endswith("_ms") or "ms" in key:
            print(f"  {key:<28} {value:8.1f}")
    rows = [] if args.skip_builds else build_comparison()
    if rows:
        print("\nonly_imported vs full (forced rebuild, uv cache warm):")
        print(f"  {'freeze':<14} {'dists':>5} {'build s':>8} {'size MB':>8}  driver")
        for row in rows:
            print(f"  {row['freeze']:<14} {row['distributions']:>5} {row['build_s']:>8.1f} "
                  f"{row['size_mb']:>8.1f}  {row['driver']}")
    if args.json:
        args.json.write_text(json.dumps({"freeze": timings, "builds": rows}, indent=2))
    print(f"\nload average: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
