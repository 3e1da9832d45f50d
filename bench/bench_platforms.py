"""Benchmark (not a test): the cost of a second, emulated platform beside the native build.

Through the project's engine (Docker engine, BuildKit driver), build the same small image
(a busybox base, one RUN step with a CPU-bound shell loop) for:
- linux/amd64 only (native),
- linux/arm64 only (every RUN instruction under qemu-user-static),
- linux/amd64 + linux/arm64 (both, pushed as one index through the registry client),
and, with podman (``--manifest``), amd64 only vs both. Each build is a fresh image (a unique
marker in the RUN step), so nothing comes from the cache; the base is the busybox index that
scripts/multiarch.sh pushes. Prints a table; ``--json FILE`` writes the figures.

Run: ``.venv/bin/python bench/bench_platforms.py [--loop N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from imagebuild_nb import Image, ImageBuildEngine
from imagebuild_nb.settings import Settings

BASE = "localhost:5001/library/busybox:latest"
REGISTRY = "localhost:5001"


def build_once(engine: ImageBuildEngine, builder: str, platform: tuple[str, ...],
               loop: int) -> float:
    marker = uuid.uuid4().hex
    image = (Image.from_base(BASE, name=f"bench/platforms-{marker[:8]}", registry=REGISTRY,
                             platform=platform)
             .with_commands([f"echo {marker}; i=0; while [ $i -lt {loop} ]; do i=$((i+1)); "
                             "done; uname -m"]))
    started = time.perf_counter()
    result = engine.build(image, builder=builder)
    elapsed = time.perf_counter() - started
    assert result.status == "built", result
    for suffix in ("", "-linux-amd64", "-linux-arm64"):
        subprocess.run(["docker", "rmi", "-f", image.uri + suffix], capture_output=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loop", type=int, default=200_000, help="shell loop iterations")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp(prefix="bench-podman-"))
    engine = ImageBuildEngine(Settings(network_mode="host", podman_root=str(store / "root"),
                                       podman_runroot=str(store / "run")))
    cases = [("local", ("linux/amd64",)), ("local", ("linux/arm64",)),
             ("local", ("linux/amd64", "linux/arm64")),
             ("local-podman", ("linux/amd64",)), ("local-podman", ("linux/amd64", "linux/arm64"))]
    figures: dict[str, float] = {}
    try:
        for builder, platform in cases:
            build_once(engine, builder, platform, 10)  # warm: base pulled, CLI probed
            times = [build_once(engine, builder, platform, args.loop) for _ in range(args.repeat)]
            key = f"{builder} {'+'.join(p.split('/')[1] for p in platform)}"
            figures[key] = statistics.median(times)
            each = ", ".join(f"{t:.2f}" for t in times)
            print(f"{key:28} median {figures[key]:6.2f} s  ({each})", flush=True)
    finally:
        engine.close()
        subprocess.run(["podman", "--root", str(store / "root"), "--runroot", str(store / "run"),
                        "system", "reset", "-f"], capture_output=True)
    for builder in ("local", "local-podman"):
        native, both = figures.get(f"{builder} amd64"), figures.get(f"{builder} amd64+arm64")
        if native and both:
            print(f"{builder}: the second platform adds {both - native:.2f} s "
                  f"({both / native:.1f}x the native build)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
