"""Write the example notebooks (all but the quickstart) from the cells below.

Edit the cells here, then regenerate (outputs are never committed)::

    .venv/bin/python notebooks/make_notebooks.py

Every notebook pushes to ``IMAGEBUILD_NB_EXAMPLES_REGISTRY`` (default ``localhost:5001``, the
embedded default of ``scripts/quickstart``), so a test can point it at a throwaway registry.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

SETUP = '''\
import os

# Where the images go: the local registry of the embedded default (tests use a throwaway one).
REGISTRY = os.environ.get("IMAGEBUILD_NB_EXAMPLES_REGISTRY", "localhost:5001")
# A tiny base (busybox) served by the local mirror that scripts/quickstart filled.
MIRROR = os.environ.get("IMAGEBUILD_NB_BASE_IMAGE_MIRROR", "localhost:5001")
BUSYBOX = f"{MIRROR}/library/busybox:latest"'''


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(text.strip("\n"))


# -- widget_tour.ipynb ---------------------------------------------------------------------------

WIDGET_TOUR = [
    md('''
# The ImageBuildWidget tour

The widget puts check, build and cancel for one image behind buttons, with a live log. It runs
checks and builds in the background, so the kernel stays free and **Cancel** stays clickable.

This notebook opens it, explains each control, and then drives it from code (clicking a button
in code does exactly what a click in the browser does), so it also runs without a browser.
'''),
    code(SETUP + '''

from imagebuild_nb import Image, ImageBuildWidget

img = (
    Image.from_base(BUSYBOX, name="examples/widget-tour", registry=REGISTRY)
    .with_env_vars({"GREETING": "hello from the widget tour"})
    .with_commands(['echo "$GREETING" > /greeting.txt'])
)
img.uri'''),
    md('''
## 1. Open the widget

`%imagebuild widget img` (or `ImageBuildWidget(img)` from Python) shows:

- **local / remote**: where to build. *remote* needs a build service (see `remote_builds.ipynb`);
  without one it is greyed out and says why.
- **dry run**: Build then only renders the Dockerfile and the build context; nothing is built.
- **force**: rebuild even if the image exists (without cache).
- **Check**: does this exact image exist? The badge turns *exists* (with the digest), *missing*
  or *unknown* (with the reason: registry unreachable, denied, ...).
- **Build** / **Cancel**: build unless it exists; Cancel stops the build and leaves no container.
- **Full log**: page through the whole log; the panel itself shows the step, the elapsed time
  and the tail of the log (and, for remote builds, the link to the build's page).
'''),
    code('''
w = %imagebuild widget img
w'''),
    md('''
## 2. Check

`w.check_button.click()` is a click on **Check**. `w.wait_idle()` waits until the check is done
and its result is on screen; `w.status` and `w.digest` hold what the badge shows.
'''),
    code('''
w.check_button.click()
w.wait_idle(timeout=60)
print("after Check:", w.status)'''),
    md('''
## 3. Dry run

With **dry run** ticked, **Build** shows the Dockerfile and what would run, and touches nothing.
'''),
    code('''
w.dry_run.value = True
w.build_button.click()
w.wait_idle(timeout=60)
print("after a dry-run Build:", w.status)
w.dry_run.value = False'''),
    md('''
## 4. Build

The log streams into the widget above while the build runs. `w.full_log()` returns all of it.
(On a second run of this notebook the image exists already: Build returns it without building.)
'''),
    code('''
w.build_button.click()
w.wait_idle(timeout=300)
print("after Build:", w.status, w.digest)
print("last log lines:", *w.full_log().splitlines()[-3:], sep="\\n  ")'''),
    code('''
w.check_button.click()
w.wait_idle(timeout=60)
print("after Check:", w.status, w.digest)'''),
    md('''
## 5. Cancel

A second widget builds a slow image; once its log shows the RUN step ticking, **Cancel** stops it.
'''),
    code('''
import time

slow = img.with_commands(["for i in $(seq 1 120); do echo tick $i; sleep 0.25; done"])
w2 = ImageBuildWidget(slow)
display(w2)
w2.build_button.click()
deadline = time.monotonic() + 120
while "tick 3" not in w2.full_log() and time.monotonic() < deadline:
    time.sleep(0.2)
w2.cancel_button.click()
w2.wait_idle(timeout=120)
print("after Cancel:", w2.status)'''),
    md('''
`repr(w)` and `w.summary()` give a plain-text account of a widget (what a frontend without
widget support shows):
'''),
    code('''
print(repr(w))
print(repr(w2))'''),
]


# -- dockerfile_cell.ipynb -----------------------------------------------------------------------

DOCKERFILE = '''\
FROM localhost:5001/library/busybox:latest
COPY greeting.txt greet.sh /app/
RUN chmod +x /app/greet.sh
CMD ["/app/greet.sh"]'''

DOCKERFILE_CELL = [
    md('''
# Build a Dockerfile cell

`%%imagebuild build --name NAME` builds the cell body as a Dockerfile. The build context is the
notebook's folder, or the folder given with `--context`; here that is `greeter/`:
'''),
    code(SETUP + '''

from pathlib import Path

for path in sorted(Path("greeter").iterdir()):
    print(f"greeter/{path.name}:", path.read_text().strip().replace("\\n", " | "))'''),
    md('''
`.dockerignore` keeps `notes.md` out of the context: it is not sent, and editing it changes
nothing. The `{REGISTRY}` in the magic's line is the notebook variable (IPython expands it).

## 1. Build

The log streams into the cell. The image's tag is derived from the Dockerfile *and* the files
of its context, so the same Dockerfile and context always give the same tag.
'''),
    code('%%imagebuild build --name examples/greeter --registry {REGISTRY} --context greeter\n'
         + DOCKERFILE),
    md('''
A cell magic's result is the cell's value, which IPython keeps in `_`:
'''),
    code('''
import docker

built = _
print("URI:", built.uri)
# It needs no network (and so does not depend on the engine's bridge).
said = docker.from_env().containers.run(built.uri, remove=True, network_mode="none")
print("says:", said.decode().strip())'''),
    md('''
## 2. Does it exist?

The same Dockerfile and context: the same tag, which now exists in the registry.
'''),
    code('%%imagebuild exists --name examples/greeter --registry {REGISTRY} --context greeter\n'
         + DOCKERFILE),
    md('''
## 3. Edit a context file: a new tag

Edit `greeting.txt` in a scratch copy of the context (the folder in the repository stays as it
is) and ask again: the tag changes, and that image is missing until it is built.
'''),
    code('''
import shutil
import tempfile

scratch = Path(tempfile.mkdtemp(prefix="greeter-")) / "greeter"
shutil.copytree("greeter", scratch)
(scratch / "greeting.txt").write_text("Hello again, from an edited context!\\n")
print("edited", scratch / "greeting.txt")'''),
    code('%%imagebuild exists --name examples/greeter --registry {REGISTRY} --context {scratch}\n'
         + DOCKERFILE),
    code('''
edited = _
print("built:  ", built.uri)
print("edited: ", edited.reference)
print("new tag:", edited.reference != built.uri)'''),
    md('''
## 4. The same identity from Python

`Image.from_dockerfile(path, context=...)` is what the cell magic uses. Ignored files do not
count: editing `notes.md` (listed in `.dockerignore`) keeps the tag, editing `greet.sh` changes it.
'''),
    code('''
from imagebuild_nb import Image

DOCKERFILE = """\\
''' + DOCKERFILE + '''
"""
dockerfile = scratch.parent / "Dockerfile"  # outside the context, as the cell magic does
dockerfile.write_text(DOCKERFILE)
image = Image.from_dockerfile(dockerfile, context=scratch, name="examples/greeter",
                              registry=REGISTRY)
first = image.tag
print("same image as the edited cell's:", image.uri == edited.reference)
(scratch / "notes.md").write_text("notes change all the time\\n")
after_notes = image.tag
(scratch / "greet.sh").write_text("#!/bin/sh\\necho ...\\ncat /app/greeting.txt\\n")
after_script = image.tag
print("notes.md edited, same tag:", after_notes == first)
print("greet.sh edited, new tag: ", after_script != first)'''),
]


# -- remote_builds.ipynb -------------------------------------------------------------------------

REMOTE_BUILDS = [
    md('''
# Remote builds

The build service runs builds next to a Docker engine on another host, for notebooks that have
none (or share one). It is a Jupyter Server extension, started on its own with:

```
jupyter imagebuild --port 8890 --IdentityProvider.token=$TOKEN
```

This notebook starts one in the background on this machine (a free loopback port, a fresh
token), or uses the service given in `IMAGEBUILD_NB_REMOTE_URL` / `IMAGEBUILD_NB_REMOTE_TOKEN`.
It builds there without waiting, follows the build, cancels a second one, and stops the service
in its last cell.
'''),
    code(SETUP + '''

import atexit
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

service = None  # our service process, when this notebook starts one


def stop_service():
    if service is not None and service.poll() is None:
        service.terminate()
        try:
            service.wait(timeout=15)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


atexit.register(stop_service)  # also stop it when the kernel shuts down

if os.environ.get("IMAGEBUILD_NB_REMOTE_URL"):
    URL = os.environ["IMAGEBUILD_NB_REMOTE_URL"]
    TOKEN = os.environ.get("IMAGEBUILD_NB_REMOTE_TOKEN")
    print("using the build service at", URL)
else:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    URL, TOKEN = f"http://127.0.0.1:{port}", secrets.token_hex(16)
    home = Path(tempfile.mkdtemp(prefix="imagebuild-service-"))
    # `jupyter imagebuild`: the jupyter-imagebuild script next to this kernel's Python
    script = Path(sys.executable).with_name("jupyter-imagebuild")
    command = [
        shutil.which("jupyter-imagebuild") or str(script),
        f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={home}", f"--ImageBuildServiceApp.state_dir={home / 'state'}",
    ]
    network = os.environ.get("IMAGEBUILD_NB_NETWORK_MODE")
    if network:  # RUN steps' network, as for local builds
        command.append(f"--ImageBuildServiceApp.network_mode={network}")
    if os.geteuid() == 0:
        command.append("--allow-root")
    log_path = home / "service.log"
    with log_path.open("wb") as log:
        service = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "JUPYTER_RUNTIME_DIR": str(home / "runtime")})
    print(f"started the build service (pid {service.pid}) at {URL}")
    deadline = time.monotonic() + 60
    while True:
        try:
            health = httpx.get(f"{URL}/imagebuild/api/health",
                               headers={"Authorization": f"token {TOKEN}"}, timeout=5)
            if health.status_code == 200:
                break
        except httpx.TransportError:
            pass
        if service.poll() is not None or time.monotonic() > deadline:
            stop_service()
            raise RuntimeError(f"the build service did not start:\\n{log_path.read_text()}")
        time.sleep(0.1)
    print("it answers:", health.json())'''),
    md('''
## 1. Point the remote builder at the service

Two settings: `remote_url` and `remote_token` (the service's Jupyter token). Set them for the
Python API with `ImageBuildEngine.configure(...)`; for the magics use
`%config ImageBuildMagics.remote_url = ...`, or set `IMAGEBUILD_NB_REMOTE_URL` /
`IMAGEBUILD_NB_REMOTE_TOKEN` in the environment for both.
'''),
    code('''
from imagebuild_nb import Image, ImageBuildEngine

engine = ImageBuildEngine.configure(remote_url=URL, remote_token=TOKEN)
print("remote builds go to", engine.settings.remote_url)'''),
    md('''
## 2. Build there, without waiting

`build(..., builder="remote", wait=False)` uploads the build context, submits the build and
returns at once with a handle. `build.remote_run` is the service's run: its id, and the URL of a
page that shows the build with its live log.

`force=True` rebuilds even if the image exists, so that running this notebook again still has a
build to show; without it an existing image comes back at once and nothing is sent (see below).
'''),
    code('''
img = (
    Image.from_base(BUSYBOX, name="examples/remote", registry=REGISTRY)
    .with_env_vars({"BUILT_BY": "the build service"})
    .with_commands(['echo "built by $BUILT_BY" > /built-by.txt'])
)
build = ImageBuildEngine.build(img, builder="remote", wait=False, force=True)
run_id, run_url = build.remote_run.id, build.remote_run.url
print("status:", build.status)
print("run id:", run_id)
print("page:  ", run_url)'''),
    md('''
## 3. Follow it, and look at its page

`build.follow()` yields the build's events (the same events as for local builds) until it ends;
`build.wait()` just waits. The page is served by the service, behind the same token.
'''),
    code('''
for event in build.follow():
    if event.kind == "step":
        print(f"step {event.number}/{event.total}: {event.instruction}")
    elif event.kind in ("finished", "failed", "cancelled"):
        print(event.kind)
build.wait()
print(build.status, build.digest)

page = httpx.get(run_url, headers={"Authorization": f"token {TOKEN}"}, timeout=30)
print("page:", page.status_code, "shows the digest:", build.digest in page.text)'''),
    md('''
It exists now, so building it again (without `force`) returns at once, with no build on the
service:
'''),
    code('''
print(ImageBuildEngine.build(img, builder="remote").status)
ImageBuildEngine.check(img)'''),
    md('''
## 4. Cancel a build

A slow build (a RUN step that ticks for half a minute); once it is ticking, `cancel()` asks the
service to stop it. The build ends as *cancelled* and the service leaves no container behind.
'''),
    code('''
slow = img.with_commands(["for i in $(seq 1 120); do echo tick $i; sleep 0.25; done"])
slow_build = ImageBuildEngine.build(slow, builder="remote", wait=False)
slow_id = slow_build.remote_run.id
print("slow build:", slow_id, slow_build.remote_run.url)
for event in slow_build.follow():
    if event.kind == "log" and "tick 3" in event.text:
        print("ticking; cancelling")
        slow_build.cancel()
        break
slow_build.wait(timeout=120, raise_on_error=False)
print("status:", slow_build.status)'''),
    code('''
from imagebuild_nb.builders.remote import RemoteBuildClient

with RemoteBuildClient(URL, TOKEN) as client:
    print("the service says:", client.get(slow_id)["status"])'''),
    md('''
## 5. The same from the widget

With a service configured, the widget's **remote** builder is available, and its panel links to
the build's page on the service (here a forced rebuild, driven from code).
'''),
    code('''
from imagebuild_nb import ImageBuildWidget

widget = ImageBuildWidget(img, engine=engine)
display(widget)
widget.builder.value = "remote"
widget.force.value = True
widget.build_button.click()
widget.wait_idle(timeout=300)
print("widget:", widget.status, "on", widget.state.run_url)'''),
    md('''
## 6. Stop the service

(Only a service this notebook started; one given through `IMAGEBUILD_NB_REMOTE_URL` keeps running.)
'''),
    code('''
stop_service()
print("build service stopped" if service is not None else "the external service keeps running")'''),
]


# -- many_environments.ipynb ---------------------------------------------------------------------

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


NOTEBOOKS = {
    "widget_tour.ipynb": WIDGET_TOUR,
    "dockerfile_cell.ipynb": DOCKERFILE_CELL,
    "remote_builds.ipynb": REMOTE_BUILDS,
    "many_environments.ipynb": MANY_ENVIRONMENTS,
}


def notebook(name: str, cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python",
                                  "name": "python3"}}
    stem = name.removesuffix(".ipynb").replace("_", "-")
    for number, cell in enumerate(cells):
        cell.id = f"{stem}-{number}"  # stable ids: regenerating gives no diff
    nb.cells = cells
    return nb


def main(names: list[str]) -> int:
    for name in names or list(NOTEBOOKS):
        path = HERE / name
        nbformat.write(notebook(name, NOTEBOOKS[name]), path)
        print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
