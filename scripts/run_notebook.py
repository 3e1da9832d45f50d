"""Execute a notebook in a real kernel, save the executed copy, print its last cell's output.

    .venv/bin/python scripts/run_notebook.py notebooks/quickstart.ipynb
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def main(path: str) -> int:
    notebook_path = Path(path).resolve()
    notebook = nbformat.read(notebook_path, as_version=4)
    executed = notebook_path.parent / ".executed" / notebook_path.name
    executed.parent.mkdir(exist_ok=True)
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook_path.parent)}})
    try:
        client.execute()
    except CellExecutionError as error:
        print(f"{notebook_path.name} failed:\n{error}", file=sys.stderr)
        return 1
    finally:
        nbformat.write(notebook, executed)
    last = notebook.cells[-1]
    for output in last.get("outputs", []):
        if output.output_type == "stream":
            print(output.text, end="")
    print(f"(executed notebook saved to {executed.relative_to(Path.cwd())})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "notebooks/quickstart.ipynb"))
