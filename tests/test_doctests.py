"""Every usage example in the package's docstrings runs (``python -m doctest`` per module).

The examples are documentation: one that drifted from the code (a status that became an enum,
a renamed argument) fails here, whichever module it is in."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import imagebuild_nb

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(imagebuild_nb.__path__, "imagebuild_nb.")
    if not info.name.endswith("__main__")  # running it would start the service
)


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
