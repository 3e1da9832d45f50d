"""A flyte.Image held in a notebook variable or named by the command line is built as ours."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import flyte
import pytest
from IPython import get_ipython
from IPython.core.error import UsageError
from IPython.testing.globalipapp import start_ipython

from tests.support.services import MIRRORED_BUSYBOX


@pytest.fixture(scope="module")
def shell():
    ip = start_ipython() or get_ipython()  # one global shell per session: maybe started already
    ip.extension_manager.load_extension("imagebuild_nb")
    yield ip


def test_magic_takes_a_flyte_image(shell) -> None:
    shell.user_ns["fimg"] = flyte.Image.from_base(MIRRORED_BUSYBOX).clone(
        name=f"test/magic-flyte-{uuid.uuid4().hex[:8]}", extendable=True).with_commands(["true"])
    plan = shell.run_line_magic("imagebuild", "build fimg --dry-run")
    assert plan.origin.startswith("flyte.Image")
    assert re.search(r"^RUN .*\btrue$", plan.dockerfile, re.M)


def test_magic_names_what_it_got_instead_of_an_image(shell) -> None:
    shell.user_ns["notimg"] = object()
    with pytest.raises(UsageError, match=r"builtins\.object, not an imagebuild_nb\.Image"):
        shell.run_line_magic("imagebuild", "build notimg --dry-run")


def test_command_takes_a_module_variable_holding_a_flyte_image(tmp_path: Path) -> None:
    module = tmp_path / "images.py"
    module.write_text(
        "import flyte\n"
        f"image = flyte.Image.from_base({MIRRORED_BUSYBOX!r}).clone(name='test/cli-flyte', "
        "extendable=True).with_env_vars({'PATH': '/opt/x:$PATH'})\n")
    done = subprocess.run([str(Path(sys.executable).parent / "imagebuild"), "--json", "build",
                           f"{module}:image", "--dry-run"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["status"] == "dry-run" and 'PATH="/opt/x:$PATH"' in plan["dry_run"]["dockerfile"]


def test_widget_shows_the_uri_that_will_be_built_for_a_flyte_image() -> None:
    from imagebuild_nb import as_image
    from imagebuild_nb.notebook.widget import ImageBuildWidget

    fimg = flyte.Image.from_base(MIRRORED_BUSYBOX).clone(name="test/widget-flyte",
                                                         extendable=True).with_commands(["true"])
    widget = ImageBuildWidget(fimg, flush_interval=None)
    assert widget.uri == as_image(fimg).uri != fimg.uri  # Flyte's own tag is an md5 of less
