"""Benchmark (not a test): build() of an image that already exists vs a fully cached build.

For (a) a small context and (b) a 20,000-file / 300 MB source folder, measure in one run:
- ``ImageBuildEngine.build(image)`` when the image exists (identity + one registry HEAD),
- a fully cached build of the same rendered Dockerfile and context by each driver:
  the Engine API (docker-py, legacy builder), the legacy CLI, the BuildKit CLI.

Run: ``.venv/bin/python bench/bench_build.py [--repeat N]`` (needs scripts/services.sh).
The big tree is generated once under /var/tmp and reused.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from imagebuild_nb import Image, ImageBuildEngine
from imagebuild_nb.builders.buildkit_cli import BuildKitCliBuilder, find_cli
from imagebuild_nb.builders.docker_api import DockerApiBuilder
from imagebuild_nb.builders.from_image import target_from_image
from imagebuild_nb.events import BuildFinished
from imagebuild_nb.settings import Settings

REGISTRY = os.environ.get("IMAGEBUILD_NB_PLAIN_REGISTRY", "localhost:5001")
BUSYBOX = f"{REGISTRY}/library/busybox:latest"
TREE = Path(os.environ.get("IMAGEBUILD_BENCH_TREE", "/var/tmp/imagebuild-bench-tree"))
FILES, TOTAL_BYTES = 20_000, 300 * 1024 * 1024


def make_tree(root: Path) -> Path:
    done = root / ".complete"
    if done.exists():
        return root
    size = TOTAL_BYTES // FILES
    for index in range(FILES):
        folder = root / f"pkg{index % 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{index:05d}.dat").write_bytes(os.urandom(size))
    done.write_text("")
    return root


def timed(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def driver_build(builder: object, image: Image, settings: Settings) -> Callable[[], None]:
    def run() -> None:
        target = target_from_image(image, driver=builder.driver, settings=settings)  # type: ignore[attr-defined]
        request = target.request(builder.driver, network_mode="host", push=False)  # type: ignore[attr-defined]
        events = list(builder.build(request, threading.Event()))  # type: ignore[attr-defined]
        assert isinstance(events[-1], BuildFinished), events[-3:]
    return run


def legacy_cli_build(image: Image, settings: Settings) -> Callable[[], None]:
    def run() -> None:
        target = target_from_image(image, driver="docker-api", settings=settings)
        request = target.request("docker-api", push=False)
        buffer = io.BytesIO()
        request.context.write_tar(buffer)
        subprocess.run(["/usr/bin/docker", "build", "-q", "--network", "host", "-f",
                        request.dockerfile_path, "-t", request.primary_tag, "-"],
                       input=buffer.getvalue(), check=True, capture_output=True,
                       env={**os.environ, "DOCKER_BUILDKIT": "0"})
    return run


def directory_build(context: Path, dockerfile: str, tag: str, buildkit: bool) -> Callable[[], None]:
    """What a user runs by hand: ``docker build DIR`` (BuildKit only re-sends changed files)."""
    path = Path(f"/var/tmp/imagebuild-bench-{tag.replace('/', '-').replace(':', '-')}.Dockerfile")
    path.write_text(dockerfile)

    def run() -> None:
        subprocess.run(["/usr/bin/docker", "build", "-q", "--network", "host", "-f", str(path),
                        "-t", tag, str(context)], check=True, capture_output=True,
                       env={**os.environ, "DOCKER_BUILDKIT": "1" if buildkit else "0"})
    return run


def scenario(name: str, image: Image, repeat: int, slow_repeat: int,
             by_hand: tuple[Path, str]) -> list[tuple[str, float]]:
    settings = Settings(network_mode="host", base_image_mirror=REGISTRY)
    engine = ImageBuildEngine(settings)
    first = engine.build(image)  # make sure it exists (built and pushed once)
    print(f"[{name}] {image.uri}: {first.status}", file=sys.stderr)
    cli = find_cli("docker")
    rows = [("build() of the existing image", timed(lambda: engine.build(image), repeat))]
    assert engine.build(image).found
    rows.append(("cached build, Engine API (docker-py)",
                 timed(driver_build(DockerApiBuilder(), image, settings), slow_repeat)))
    rows.append(("cached build, legacy CLI", timed(legacy_cli_build(image, settings), slow_repeat)))
    if cli is not None:
        rows.append(("cached build, BuildKit CLI (tar on stdin)",
                     timed(driver_build(BuildKitCliBuilder(cli), image, settings), repeat)))
    context, dockerfile = by_hand
    tag = f"bench/by-hand-{name}:1"
    directory_build(context, dockerfile, tag, True)()  # warm the cache
    rows.append(("cached build, BuildKit CLI, `docker build DIR`",
                 timed(directory_build(context, dockerfile, tag, True), repeat)))
    engine.close()
    return rows


def report(name: str, rows: list[tuple[str, float]]) -> None:
    ours = rows[0][1]
    print(f"\n{name}")
    print(f"  {'what':50} {'median':>10} {'vs build()':>11}")
    for label, seconds in rows:
        ratio = "" if label == rows[0][0] else f"{seconds / ours:9.1f}x"
        print(f"  {label:50} {seconds * 1000:8.1f}ms {ratio:>11}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--slow-repeat", type=int, default=2, help="for the 300 MB legacy builds")
    args = parser.parse_args()
    small_src = Path("/var/tmp/imagebuild-bench-small")
    small_src.mkdir(parents=True, exist_ok=True)
    (small_src / "app.py").write_text("print('bench')\n")
    small = (Image.from_base(BUSYBOX, name="bench/small", registry=REGISTRY)
             .with_source_folder(small_src, dst="/app").with_commands(["echo small > /marker"]))
    report("(a) small context", scenario(
        "small", small, args.repeat, args.repeat,
        (small_src, f"FROM {BUSYBOX}\nCOPY . /app/\nRUN echo small > /marker\n")))
    started = time.perf_counter()
    tree = make_tree(TREE)
    print(f"tree ready in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    big = (Image.from_base(BUSYBOX, name="bench/big", registry=REGISTRY)
           .with_source_folder(tree, dst="/data"))
    report("(b) 20,000 files / 300 MB source folder", scenario(
        "big", big, args.repeat, args.slow_repeat, (tree, f"FROM {BUSYBOX}\nCOPY . /data/\n")))


if __name__ == "__main__":
    main()
