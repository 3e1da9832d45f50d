"""The cells of ``widget_tour.ipynb``: the ImageBuildWidget's controls, driven from code."""

from __future__ import annotations

from .common import SETUP, code, md

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
*Force* is on, so the step runs even when an earlier run of this notebook left it in the cache.
'''),
    code('''
import time

slow = img.with_commands(["for i in $(seq 1 120); do echo tick $i; sleep 0.25; done"])
w2 = ImageBuildWidget(slow)
w2.force.value = True
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
