"""The cells of ``remote_builds.ipynb``: a build service started in the background, a remote
build followed and one cancelled, the same from the widget."""

from __future__ import annotations

from .common import SETUP, code, md

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
`force=True` runs the step even when an earlier run of this notebook left it in the cache.
'''),
    code('''
slow = img.with_commands(["for i in $(seq 1 120); do echo tick $i; sleep 0.25; done"])
slow_build = ImageBuildEngine.build(slow, builder="remote", wait=False, force=True)
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
