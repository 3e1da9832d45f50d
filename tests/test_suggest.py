"""'did you mean' for mistyped commands and options, in the magic and the command."""

from __future__ import annotations

import doctest

import pytest

from imagebuild_nb import suggest
from imagebuild_nb.cli import main


def test_doctests() -> None:
    assert doctest.testmod(suggest).failed == 0


@pytest.mark.parametrize(("argv", "hint"), [
    (["biuld", "images.py:image"], "did you mean 'build'?"),
    (["build", "images.py:image", "--frce"], "did you mean '--force' for '--frce'?"),
    (["chek", "x"], "did you mean 'check'?"),
])
def test_the_command_suggests_the_nearest_word(argv: list[str], hint: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert hint in capsys.readouterr().err
