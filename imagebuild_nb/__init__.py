"""imagebuild-nb: container images from a notebook.

>>> from imagebuild_nb import Image, ImageBuildEngine
"""

from __future__ import annotations

from imagebuild_nb.errors import (
    BuildCancelledError,
    BuilderUnavailableError,
    BuildFailedError,
    ImageBuildError,
    RegistryAuthError,
    RegistryError,
    ServiceError,
    SpecError,
)
from imagebuild_nb.spec.reference import ImageReference

__version__ = "0.1.0"

__all__ = [
    "BuildCancelledError",
    "BuildFailedError",
    "BuilderUnavailableError",
    "ImageBuildError",
    "ImageReference",
    "RegistryAuthError",
    "RegistryError",
    "ServiceError",
    "SpecError",
    "__version__",
]
