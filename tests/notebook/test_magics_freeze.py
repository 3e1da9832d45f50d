"""%imagebuild freeze / verify / run: arguments, errors and help, in an IPython shell (no
engine needed; the real-kernel and real-engine paths are in test_freeze_kernel.py)."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

from imagebuild_nb import Image
from imagebuild_nb.notebook.magics import ImageBuildMagics


@pytest.fixture(scope="module")
def shell():
    # The one test shell of the process. start_ipython() returns it only on its first call
    # (None after), and other modules' fixtures take it from there: if this module started
    # it, let the next start_ipython() call return the same shell again.
    first = not hasattr(start_ipython, "already_called")
    ip = start_ipython() or InteractiveShell.instance()
    ip.extension_manager.load_extension("imagebuild_nb")
    yield ip
    if first:
        del start_ipython.already_called


@pytest.mark.parametrize(("line", "message"), [
    ("run img", "usage: %imagebuild run IMAGE -- COMMAND"),
    ("run img -- ", "usage: %imagebuild run IMAGE -- COMMAND"),
    ("freeze 1bad", "not a Python variable name"),
    ("freeze frozen --only-imprted", "unrecognized arguments"),
    ("verify no_such_variable", "no variable named 'no_such_variable'"),
    ("freeze frozen --include not-installed-anywhere", "not installed here"),
])
def test_bad_arguments_give_a_usage_error(shell, line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        shell.run_line_magic("imagebuild", line)


def test_freeze_puts_an_ordinary_image_in_the_variable(shell, capsys) -> None:
    result = shell.run_line_magic("imagebuild", "freeze frozen_env --only-imported")
    assert isinstance(result, Image) and shell.user_ns["frozen_env"] is result
    assert result.name == "frozen-env"
    assert result.dockerfile().count("--no-deps") >= 1


def test_help_lists_the_commands() -> None:
    doc = ImageBuildMagics.imagebuild.__doc__ or ""
    for usage in ("%imagebuild freeze NAME", "%imagebuild verify IMAGE",
                  "%imagebuild run IMAGE -- COMMAND"):
        assert usage in doc
