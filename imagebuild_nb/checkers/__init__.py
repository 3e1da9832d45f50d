"""Existence checks: does this image exist in its registry or in the local engine?

>>> from imagebuild_nb.checkers import ExistenceChecker
>>> with ExistenceChecker() as checker:  # doctest: +SKIP
...     checker.check("localhost:5001/library/busybox:latest").exists
True
"""

from __future__ import annotations

from imagebuild_nb.checkers.base import Checker
from imagebuild_nb.checkers.cache import ResultCache
from imagebuild_nb.checkers.existence import ExistenceChecker
from imagebuild_nb.checkers.local import LocalEngineChecker
from imagebuild_nb.checkers.registry import RegistryChecker
from imagebuild_nb.checkers.result import UNKNOWN_KINDS, ExistenceResult

__all__ = [
    "UNKNOWN_KINDS",
    "Checker",
    "ExistenceChecker",
    "ExistenceResult",
    "LocalEngineChecker",
    "RegistryChecker",
    "ResultCache",
]
