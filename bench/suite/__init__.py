"""The pieces of ``bench/run_all.py``: which benchmarks there are, how one runs, the report.

- ``rows``: one measurement (``Row``) and, per benchmark, how its results become rows
- ``benches``: each benchmark (``Bench``: script, arguments, parser) and the list ``BENCHES``
- ``running``: runs one benchmark as a subprocess and records its outcome on its ``Bench``
- ``machine``: the facts about the machine the report states (cores, memory, load, ...)
- ``report``: the Markdown of ``bench/REPORT.md``
"""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent  # bench/, where the benchmark scripts are
ROOT = BENCH.parent
