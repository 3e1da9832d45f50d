"""What every example notebook shares: ``SETUP`` (the first code cell's registry and base image,
read from the environment so a test can point them elsewhere) and ``md``/``code``, which make a
cell from a triple-quoted string."""

from __future__ import annotations

import nbformat

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
