"""The magic's cell output in real kernels (nbclient) against the real engine: a bounded live
view of the steps, a failed build that still gives back its result, ``logs`` of the last build."""

from __future__ import annotations

import re

import pytest

from tests.notebook.conftest import cell_html, cell_text

pytestmark = [pytest.mark.kernel, pytest.mark.engine]

SETUP = """\
%load_ext imagebuild_nb
from imagebuild_nb import Image
%config ImageBuildMagics.local_driver = {driver!r}
"""


def output_lines(cell) -> int:
    """Lines of text the cell shows: streams and the plain text of every display."""
    return len(cell_text(cell).splitlines())


@pytest.mark.parametrize("driver", ["docker-api", "buildkit"])
def test_a_5000_line_build_leaves_a_few_lines_in_the_cell(run_notebook, busybox_base,
                                                         unique_name, driver):
    cells = [
        SETUP.format(driver=driver),
        f"img = Image.from_base({busybox_base!r}, name={unique_name!r})"
        f".with_commands(['echo {unique_name}', 'for i in $(seq 1 5000); do echo line-$i; done'])",
        "b = %imagebuild build img",
        "print(b.status, len(b.logs.splitlines()) >= 5000)",
        "%imagebuild logs",
    ]
    notebook = run_notebook(cells)
    build = notebook.cells[2]
    assert output_lines(build) < 200, cell_text(build)
    assert len(cell_html(build)) < 40_000
    text = cell_text(build)
    assert (text.startswith("Built in ") and "[3/3] RUN for i in" in text
            and "LABEL" not in text), text
    assert "line-100\n" not in text  # not the log: the steps
    assert "full log: %imagebuild logs" in text
    assert cell_text(notebook.cells[3]).strip() == "built True"
    # logs with no argument: the last build, with a header per step in the view's numbering.
    log = cell_text(notebook.cells[4])
    assert "── [3/3] RUN for i in" in log and "line-5000" in log
    assert log.index(f"── [2/3] RUN echo {unique_name}") < log.index("line-1\n")


def test_a_failed_build_assigns_its_result_and_shows_the_failing_step(run_notebook,
                                                                     busybox_base, unique_name):
    cells = [
        SETUP.format(driver="auto"),
        f"bad = Image.from_base({busybox_base!r}, name={unique_name!r})"
        f".with_commands(['echo fine {unique_name}', 'echo about to fail && exit 7', "
        "'echo never'])",
        "b = %imagebuild build bad",
        "print('STATUS', b.status, 'LOGS' if 'about to fail' in b.logs else '')",
        "%imagebuild status",
    ]
    notebook = run_notebook(cells)
    failed = notebook.cells[2]
    assert not [o for o in failed.outputs if o.output_type == "error"]
    text = cell_text(failed)
    assert re.search(r"^Failed at step 3/4 after \d", text), text
    assert "about to fail" in text and "exit 7" not in text.splitlines()[0]
    # The failing step is open (its last lines shown), the others are folded.
    html = cell_html(failed)
    assert re.search(r'data-label="3/4" data-state="failed" data-duration="[^"]*" open', html)
    assert 'data-label="4/4" data-state="skipped"' in html
    assert re.search(r'data-label="2/4" data-state="done" data-duration="\d+\.\ds"[ >]', html)
    # The error once (under the steps), not three times.
    assert len([line for line in text.splitlines() if line.startswith("error: ")]) == 1
    assert cell_text(notebook.cells[3]).strip() == "STATUS failed LOGS"
    status = cell_text(notebook.cells[4])
    assert "failed" in status and "Failed at step 3/4" in status


def test_status_of_a_no_wait_build_shows_the_step_and_elapsed_time(run_notebook, busybox_base,
                                                                   unique_name):
    cells = [
        SETUP.format(driver="auto"),
        f"slow = Image.from_base({busybox_base!r}, name={unique_name!r})"
        f".with_commands(['echo started {unique_name}; sleep 30'])",
        "b = %imagebuild build slow --no-wait\nimport time\n"
        f"while '{unique_name}' not in b.logs.split('started ', 1)[-1]: time.sleep(0.2)",
        "%imagebuild status",
        "%imagebuild cancel",
    ]
    notebook = run_notebook(cells)
    status = cell_text(notebook.cells[3])
    assert re.search(r"^Building \d+\.\ds \(1/2\)$", status, re.M), status
    assert re.search(r"▸ \[2/2\] RUN echo started .*\s\d+\.\ds$", status, re.M), status
    assert "cancelled" in cell_text(notebook.cells[4])


def test_a_failing_dockerfile_cell_names_the_cells_line(run_notebook, busybox_base, unique_name):
    cells = [
        SETUP.format(driver="auto") + "import os, tempfile\n"
        "tempfile.tempdir = os.path.abspath('scratch'); os.makedirs(tempfile.tempdir)",
        f"%%imagebuild build --name {unique_name}\n"
        f"FROM {busybox_base}\n# the steps\nRUN echo ok {unique_name}\n"
        "RUN echo about to fail && \\\n    exit 5\n",
        "print('SCRATCH', os.listdir(tempfile.tempdir))",
    ]
    notebook = run_notebook(cells)
    text = cell_text(notebook.cells[1])
    assert "Failed at step 3/3" in text and "the failing step is line 5 of this cell" in text
    assert cell_text(notebook.cells[2]).strip() == "SCRATCH []"  # the cell's Dockerfile folder
