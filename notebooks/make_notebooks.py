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

# The cells live in notebooks/notebook_cells/ (this script's folder is first on sys.path when it
# runs).
from notebook_cells.dockerfile_cell import DOCKERFILE_CELL
from notebook_cells.many_environments import MANY_ENVIRONMENTS
from notebook_cells.remote_builds import REMOTE_BUILDS
from notebook_cells.widget_tour import WIDGET_TOUR

HERE = Path(__file__).resolve().parent


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
