"""imagebuild-nb: container images from a notebook.

>>> from imagebuild_nb import Image, ImageBuildEngine
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from imagebuild_nb.build import DryRun, ImageBuild
from imagebuild_nb.checkers import ExistenceChecker, ExistenceResult
from imagebuild_nb.engine import ImageBuildEngine
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
from imagebuild_nb.render import BuildContext
from imagebuild_nb.spec.convert import as_image
from imagebuild_nb.spec.image import Image
from imagebuild_nb.spec.reference import ImageReference

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__version__ = "0.1.0"

__all__ = [
    "BuildCancelledError",
    "BuildContext",
    "BuildFailedError",
    "BuilderUnavailableError",
    "DryRun",
    "ExistenceChecker",
    "ExistenceResult",
    "Image",
    "ImageBuild",
    "ImageBuildEngine",
    "ImageBuildError",
    "ImageBuildWidget",
    "ImageReference",
    "RegistryAuthError",
    "RegistryError",
    "ServiceError",
    "SpecError",
    "__version__",
    "as_image",
]


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext imagebuild_nb``: register the %imagebuild magics and their settings."""
    from imagebuild_nb.notebook.magics import ImageBuildMagics

    magics = ImageBuildMagics(shell=ipython)
    ipython.register_magics(magics)
    # %reload_ext must not leave two ImageBuildMagics in %config's list.
    configurables = _configurables(ipython)
    configurables[:] = [c for c in configurables if type(c).__name__ != "ImageBuildMagics"]
    configurables.append(magics)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    configurables = _configurables(ipython)
    configurables[:] = [c for c in configurables if type(c).__name__ != "ImageBuildMagics"]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """The build service as a Jupyter Server extension (needs the ``service`` extra)."""
    from imagebuild_nb.service import _jupyter_server_extension_points as points

    return points()


def __getattr__(name: str) -> object:
    # The widget pulls in ipywidgets (~140 ms): import it on first use, not with the package.
    if name == "ImageBuildWidget":
        from imagebuild_nb.notebook.widget import ImageBuildWidget

        return ImageBuildWidget
    raise AttributeError(f"module 'imagebuild_nb' has no attribute {name!r}")


def _configurables(ipython: InteractiveShell) -> list[object]:
    """What ``%config`` lists (IPython types the list by its first entry, the shell)."""
    return cast("list[object]", ipython.configurables)
