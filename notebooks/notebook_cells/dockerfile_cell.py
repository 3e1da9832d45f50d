"""The cells of ``dockerfile_cell.ipynb``: ``%%imagebuild`` on a Dockerfile cell with the
``greeter/`` context, and how editing a context file changes the tag."""

from __future__ import annotations

from .common import SETUP, code, md

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
