"""Builders that keep images in a store of their own (podman), so the engine's existence check
of an image that names no registry asks that store instead of the Docker engine.

A builder says so by implementing :class:`ChecksOwnStore` (a Protocol, not a probe).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from imagebuild_nb.builders.base import Builder
from imagebuild_nb.checkers.result import ExistenceResult


@runtime_checkable
class ChecksOwnStore(Builder, Protocol):
    def check_store(self, reference: str, *, spec_hash: str | None = None,
                    platform: str | None = None) -> ExistenceResult:
        """exists / missing / unknown for ``reference`` in the builder's own image store."""
        ...
