"""Builders: the Builder protocol, the request, and the local drivers."""

from __future__ import annotations

from imagebuild_nb.builders.base import BuildContextSource, Builder, BuildRequest
from imagebuild_nb.builders.context import DirectoryContext, InMemoryContext

__all__ = [
    "BuildContextSource",
    "BuildRequest",
    "Builder",
    "DirectoryContext",
    "InMemoryContext",
]
