"""How a widget job's end reads: readable errors with their hint."""

from __future__ import annotations

import doctest

from imagebuild_nb.notebook import outcome as outcome_module
from imagebuild_nb.notebook.outcome import readable


def test_doctests() -> None:
    assert doctest.testmod(outcome_module).failed == 0


def test_a_hint_is_added_once() -> None:
    class WithHint(Exception):
        hint = "do this"

    assert readable(WithHint("it broke")) == "WithHint: it broke\nhint: do this"
    assert readable(WithHint("it broke; do this")) == "WithHint: it broke; do this"
