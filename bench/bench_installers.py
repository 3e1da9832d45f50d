"""Benchmark (not a test): installing with uv vs pip, and a one-line source edit after that.

One run, side by side, on the Debian/Python base (the mirrored default base):
1. a cold build of a realistic data-science image (pandas, scikit-learn, matplotlib, then a
   source folder) with ``installer="uv"``, pushed to the local registry;
2. the same spec with ``installer="pip"`` (kept local: only its install step is compared);
3. a one-line edit of a file in the source folder, rebuilt and pushed with uv.

"Cold": the layer cache is bypassed by a fresh marker env layer before the install, and the
installers' download caches (BuildKit cache mounts) are pruned before each cold build, so both
installers download everything. The install step is timed from the build's own events (from
its step start to the next step's start). Needs scripts/services.sh and network to PyPI.

Run: ``.venv/bin/python bench/bench_installers.py [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from imagebuild_nb import Image, ImageBuild, ImageBuildEngine
from imagebuild_nb.events import BuildFinished, CacheHit, PushProgress, StepStarted
from imagebuild_nb.settings import Settings

REGISTRY = os.environ.get("IMAGEBUILD_NB_PLAIN_REGISTRY", "localhost:5001")
DOCKER = os.environ.get("IMAGEBUILD_NB_DOCKER_CLI", "/usr/bin/docker")
PACKAGES = ("pandas", "scikit-learn", "matplotlib")


def install_seconds(build: ImageBuild) -> float:
    """From the install step's start to the next step's start (or the end of the build)."""
    events = build.events
    for index, event in enumerate(events):
        if isinstance(event, StepStarted) and "pip install" in event.instruction \
                and "/opt/venv" in event.instruction:
            later = [e for e in events[index + 1:]
                     if isinstance(e, (StepStarted, BuildFinished))
                     and not (isinstance(e, StepStarted) and e.number <= event.number)]
            end = later[0].time if later else (build.finished_at or time.time())
            return end - event.time
    raise RuntimeError("no install step in the build's events:\n" + build.logs[-2000:])


def breakdown(build: ImageBuild) -> dict[str, float | int]:
    """Where a build's time went: steps, cached steps, and the push (first push event to end)."""
    pushes = [e.time for e in build.events if isinstance(e, PushProgress)]
    end = build.finished_at or time.time()
    return {"steps": sum(isinstance(e, StepStarted) for e in build.events),
            "cached_steps": sum(isinstance(e, CacheHit) for e in build.events),
            "push_s": end - pushes[0] if pushes else 0.0,
            "build_s": (pushes[0] if pushes else end) - build.started_at}


def prune_download_caches() -> None:
    subprocess.run([DOCKER, "builder", "prune", "-f", "--filter", "type=exec.cachemount"],
                   check=True, capture_output=True, env={**os.environ, "DOCKER_BUILDKIT": "1"})


def settings(installer: str, ca: str | None) -> Settings:
    return Settings.from_env(installer=installer, network_mode="host",
                             base_image_mirror=REGISTRY,
                             extra_ca_files=(ca,) if ca else None)


def spec(src: Path, name: str, marker: str, registry: str | None) -> Image:
    return (Image.from_debian_base(python_version="3.11", name=name, registry=registry)
            .with_env_vars({"IMAGEBUILD_BENCH_RUN": marker})
            .with_pip_packages(*PACKAGES)
            .with_source_folder(src, dst="/app"))


def timed_build(engine: ImageBuildEngine, image: Image) -> tuple[ImageBuild, float]:
    started = time.perf_counter()
    build = engine.build(image)
    return build, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    ca = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    ca = ca if Path(ca).is_file() else None
    marker = uuid.uuid4().hex[:12]
    with tempfile.TemporaryDirectory(prefix="bench-installers-") as tmp:
        src = Path(tmp, "src")
        src.mkdir()
        (src / "model.py").write_text(
            "THRESHOLD = 0.5\n\ndef predict(x):\n    return x > THRESHOLD\n")
        uv_engine = ImageBuildEngine(settings("uv", ca))
        pip_engine = ImageBuildEngine(settings("pip", ca))
        name = f"bench/installers-{marker}"

        prune_download_caches()
        uv_build, uv_total = timed_build(uv_engine, spec(src, name, marker, REGISTRY))
        prune_download_caches()
        pip_build, pip_total = timed_build(pip_engine, spec(src, f"{name}-pip", marker, None))
        uv_install, pip_install = install_seconds(uv_build), install_seconds(pip_build)

        (src / "model.py").write_text(
            "THRESHOLD = 0.6\n\ndef predict(x):\n    return x > THRESHOLD\n")
        edit_build, edit_total = timed_build(uv_engine, spec(src, name, marker, REGISTRY))
        check = subprocess.run([DOCKER, "run", "--rm", edit_build.uri, "python", "-c",
                                "import sys; sys.path.insert(0, '/app'); import model, pandas, "
                                "sklearn, matplotlib; print(model.THRESHOLD)"],
                               capture_output=True, text=True)
        for uri in (uv_build.uri, pip_build.uri, edit_build.uri):
            subprocess.run([DOCKER, "rmi", "-f", uri], capture_output=True)
        uv_engine.close()
        pip_engine.close()

    result = {
        "packages": list(PACKAGES),
        "uv_install_s": uv_install, "pip_install_s": pip_install,
        "install_speedup": pip_install / uv_install,
        "uv_cold_build_and_push_s": uv_total, "pip_cold_build_s": pip_total,
        "edit_rebuild_and_push_s": edit_total, "edit_fraction_of_cold": edit_total / uv_total,
        "edited_image_runs": check.stdout.strip() == "0.6", "edited_image_output": check.stdout,
        "pushed_digest": edit_build.digest,
        "uv_cold": breakdown(uv_build), "edit": breakdown(edit_build),
    }
    print(f"install step, cold: uv {uv_install:.1f} s, pip {pip_install:.1f} s "
          f"({result['install_speedup']:.1f}x; target >= 3x)")
    print(f"cold build + push with uv: {uv_total:.1f} s; pip cold build (local): {pip_total:.1f} s")
    print(f"one-line source edit, rebuilt and pushed: {edit_total:.1f} s "
          f"({100 * result['edit_fraction_of_cold']:.1f}% of the cold build; target <= 10%)")
    print(f"edited image runs with the new value: {result['edited_image_runs']}")
    print(f"where the time went: cold {result['uv_cold']}; edit {result['edit']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = result["install_speedup"] >= 3 and result["edit_fraction_of_cold"] <= 0.1 \
        and result["edited_image_runs"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
