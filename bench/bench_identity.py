"""Benchmark: content identity of a 20,000-file / ~300 MB source folder (not a test).

    .venv/bin/python bench/bench_identity.py [--tree DIR] [--flyte-python PATH] [--no-flyte]

Generates (or reuses) a tree under /var/tmp with .git and __pycache__ junk, then measures in
one process, page cache warm:

- a stat() walk of the tree (os.walk + lstat of every entry),
- a plain sha256 read of every file (the floor for a first hash),
- our first ``Image...with_source_folder(tree).uri`` (digest cache empty),
- our second call on the unchanged tree (digest cache warm),
- Flyte's ``Image.from_debian_base(install_flyte=False, ...).with_source_folder(tree).uri`` in
  a separate virtualenv (``pip install flyte`` there; never into the project's .venv).

Targets: first hash <= 1.3x the sha256 read; second call <= 2x the stat walk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imagebuild_nb import Image  # noqa: E402
from imagebuild_nb.spec import files  # noqa: E402

DEFAULT_TREE = Path("/var/tmp/imagebuild-nb-bench/tree")
FLYTE_PYTHON = Path("/var/tmp/flyte-venv/bin/python")
FILES = 20_000
SMALL, LARGE = 19_000, 1_000
SMALL_MAX = 8 << 10  # ~80 MB in small files; the 1,000 large ones make up the rest
TARGET_BYTES = 300 << 20
JUNK_GIT, JUNK_PYC = 1_500, 500
STAMP = {"files": FILES, "bytes": TARGET_BYTES, "git": JUNK_GIT, "pyc": JUNK_PYC, "v": 1}

FLYTE_SCRIPT = """
import sys, time, pathlib, json
from flyte import Image
tree = pathlib.Path(sys.argv[1])
t = time.perf_counter()
uri = Image.from_debian_base(install_flyte=False, name="bench", registry="localhost:5001") \\
    .with_source_folder(tree).uri
print(json.dumps({"seconds": time.perf_counter() - t, "uri": uri}))
"""


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def generate(root: Path) -> None:
    stamp = root / ".bench-stamp.json"
    if stamp.exists() and json.loads(stamp.read_text()) == STAMP:
        return
    out(f"generating {FILES} files (~{TARGET_BYTES >> 20} MB) under {root} ...")
    rng = random.Random(42)
    small_sizes = [rng.randint(256, SMALL_MAX) for _ in range(SMALL)]
    large_each = (TARGET_BYTES - sum(small_sizes)) // LARGE
    sizes = small_sizes + [large_each] * LARGE
    rng.shuffle(sizes)
    for n, size in enumerate(sizes):
        folder = root / f"pkg{n % 40:02d}" / f"mod{(n // 40) % 25:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{n:05d}.py").write_bytes(os.urandom(size))
        if n % 40 == 0:
            cache = folder / "__pycache__"
            cache.mkdir(exist_ok=True)
    for n in range(JUNK_PYC):
        cache = root / f"pkg{n % 40:02d}" / f"mod{n % 25:02d}" / "__pycache__"
        cache.mkdir(parents=True, exist_ok=True)
        (cache / f"m{n}.cpython-311.pyc").write_bytes(os.urandom(2048))
    for n in range(JUNK_GIT):
        obj = root / ".git" / "objects" / f"{n % 256:02x}"
        obj.mkdir(parents=True, exist_ok=True)
        (obj / f"{n:038x}").write_bytes(os.urandom(4096))
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    stamp.write_text(json.dumps(STAMP))
    # Freshly written files are inside the digest cache's racy window: let them age.
    time.sleep(files.RACY_WINDOW_NS / 1e9 + 0.5)


def stat_walk(root: Path) -> int:
    count = 0
    for folder, dirs, names in os.walk(root):
        for name in names + dirs:
            os.lstat(os.path.join(folder, name))
            count += 1
    return count


def sha256_read(root: Path) -> int:
    total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as handle:
                total += len(hashlib.file_digest(handle, "sha256").digest())
    return total


def timed(fn, *args) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def ours(root: Path) -> str:
    return Image.from_debian_base(python_version="3.11", name="bench").with_source_folder(
        root, dst="/app").uri


def flyte(root: Path, python: Path) -> float | None:
    if not python.exists():
        return None
    result = subprocess.run([str(python), "-c", FLYTE_SCRIPT, str(root)], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        out(f"flyte failed: {result.stderr.strip().splitlines()[-1:]}")
        return None
    return float(json.loads(result.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tree", type=Path, default=DEFAULT_TREE)
    parser.add_argument("--flyte-python", type=Path, default=FLYTE_PYTHON)
    parser.add_argument("--no-flyte", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here (bench/run_all.py)")
    args = parser.parse_args()
    generate(args.tree)
    sha256_read(args.tree)  # warm the page cache: every row below reads from memory
    # Other work on the machine adds noise: interleave the rows and keep each one's best.
    walks, reads, firsts, seconds = [], [], [], []
    for _ in range(args.rounds):
        walks.append(timed(stat_walk, args.tree))
        reads.append(timed(sha256_read, args.tree))
        files.clear_cache()
        firsts.append(timed(ours, args.tree))
        seconds.append(timed(ours, args.tree))
    walk, read, first, second = min(walks), min(reads), min(firsts), min(seconds)
    flyte_s = None if args.no_flyte else flyte(args.tree, args.flyte_python)
    entries = stat_walk(args.tree)
    out(f"tree: {args.tree} ({entries} entries incl. junk)")
    out(f"{'measurement':<34}{'seconds':>9}{'ratio':>22}")
    rows = [
        ("stat() walk", walk, ""),
        ("sha256 read of every file", read, ""),
        ("imagebuild-nb first hash", first, f"{first / read:.2f}x sha256 (<=1.3)"),
        ("imagebuild-nb second call", second, f"{second / walk:.2f}x stat (<=2.0)"),
    ]
    if flyte_s is not None:
        rows.append(("flyte .with_source_folder().uri", flyte_s,
                     f"{flyte_s / first:.1f}x our first"))
    for name, seconds_, ratio in rows:
        out(f"{name:<34}{seconds_:>9.3f}{ratio:>22}")
    if flyte_s is not None:
        out(f"vs Flyte: first hash {flyte_s / first:.1f}x faster, "
            f"second call {flyte_s / second:.1f}x faster")
    if args.json:
        args.json.write_text(json.dumps({
            "tree": str(args.tree), "entries": entries, "rounds": args.rounds,
            "stat_walk_s": walk, "sha256_read_s": read, "first_s": first, "second_s": second,
            "flyte_s": flyte_s}, indent=2))


if __name__ == "__main__":
    main()
