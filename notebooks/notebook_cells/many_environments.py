"""The cells of ``many_environments.ipynb``: twelve images checked in one call, only the
missing ones built."""

from __future__ import annotations

from .common import SETUP, code, md

MANY_ENVIRONMENTS = [
    md('''
# Many environments at once

A team keeps a dozen environments: three teams times four stages. Which of them exist already?
One call checks them all concurrently over one connection pool; then only the missing ones are
built. Each image is a tiny busybox variation (an env var and a one-line RUN), so this is quick.
'''),
    code(SETUP + '''

import html
import time

from imagebuild_nb import ExistenceChecker, Image, ImageBuildEngine

environments = {}
for team in ("data", "ml", "web"):
    for stage in ("dev", "test", "staging", "prod"):
        image = Image.from_base(BUSYBOX, name=f"examples/env-{team}", registry=REGISTRY)
        environments[f"{team}-{stage}"] = (
            image.with_env_vars({"TEAM": team, "STAGE": stage})
            .with_commands([f"echo {team} {stage} > /etc/environment-name"])
        )
print(len(environments), "environments, e.g.", environments["ml-prod"].uri)'''),
    md('''
A small table for the results (text for the console, HTML in the notebook):
'''),
    code('''
class Table:
    def __init__(self, results):
        self.rows = [(name, r.state, (r.digest or r.reason or "")[:19]) for name, r in results]

    def __repr__(self):
        return "\\n".join(f"{name:<14} {state:<8} {detail}" for name, state, detail in self.rows)

    def _repr_html_(self):
        colours = {"exists": "#1a7f37", "missing": "#6e7781", "unknown": "#bf8700"}
        cells = "".join(
            f"<tr><td><code>{html.escape(name)}</code></td>"
            f"<td style='color:{colours[state]}'><b>{state}</b></td>"
            f"<td><code>{html.escape(detail)}</code></td></tr>"
            for name, state, detail in self.rows)
        head = "<tr><th>environment</th><th>state</th><th>digest</th></tr>"
        return f"<table>{head}{cells}</table>"'''),
    md('''
## 1. A colleague built the prod images already

(On a second run of this notebook every image exists, and nothing below builds.)
'''),
    code('''
for name in ("data-prod", "ml-prod", "web-prod"):
    print(name, ImageBuildEngine.build(environments[name]).status)'''),
    md('''
## 2. Check all twelve in one call

`ExistenceChecker.check_many` checks concurrently (at most `check_concurrency` at once) and
answers in the order given: exists (with digest), missing, or unknown (with the reason).
'''),
    code('''
checker = ExistenceChecker()
start = time.perf_counter()
results = checker.check_many([image.uri for image in environments.values()])
print(f"checked {len(results)} images in {time.perf_counter() - start:.2f} s")
Table(zip(environments, results))'''),
    md('''
## 3. Build only the missing ones

Builds started with `wait=False` run side by side; `wait()` collects each result.
'''),
    code('''
missing = [name for name, result in zip(environments, results) if result.missing]
builds = {name: ImageBuildEngine.build(environments[name], wait=False) for name in missing}
for name, build in builds.items():
    build.wait()
    print(f"{name:<14} {build.status} in {build.duration:.1f} s")
print(f"built {sum(b.built for b in builds.values())} of {len(environments)}")'''),
    md('''
## 4. Check again

The checker remembers answers for a few seconds; `use_cache=False` asks the registry afresh.
`build()` of an image that exists returns at once without building.
'''),
    code('''
again = checker.check_many([image.uri for image in environments.values()], use_cache=False)
print("all exist:", all(result.exists for result in again))
Table(zip(environments, again))'''),
    code('''
print("data-dev:", ImageBuildEngine.build(environments["data-dev"]).status)
checker.close()'''),
]
