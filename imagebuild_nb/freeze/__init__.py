"""Freeze a running environment (a notebook's kernel) into an ordinary ``Image``.

>>> from imagebuild_nb.freeze import from_environment
>>> image = from_environment(name="frozen", only_imported=True)   # doctest: +SKIP
>>> image.dry_run()                                               # doctest: +SKIP

See :func:`from_environment`; ``Image.from_environment`` is the same call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from imagebuild_nb.freeze.environment import Distribution, Environment, Origin, read_environment
from imagebuild_nb.freeze.selection import TOOLING, imported_top_level, left_out_imported, select
from imagebuild_nb.freeze.spec import OnLocal, freeze_image

if TYPE_CHECKING:
    from imagebuild_nb.spec.image import Image

__all__ = ["TOOLING", "Distribution", "Environment", "Origin", "freeze_image",
           "from_environment", "imported_modules", "imported_top_level", "left_out_imported",
           "pinned_names", "read_environment", "select"]


def from_environment(*, name: str | None = None, registry: str | None = None,
                     only_imported: bool = False, modules: Iterable[str] | None = None,
                     include_tooling: bool = False, exclude: Sequence[str] = (),
                     include: Sequence[str] = (), on_local: OnLocal = "ship",
                     index_url: str | None = None,
                     extra_index_urls: Sequence[str] = (),
                     path: Sequence[str] | None = None,
                     python_version: str | None = None) -> Image:
    """An Image of this Python environment: the same Python minor version on the default base
    and every installed distribution pinned exactly (installed with ``--no-deps``: a lock).

    ``only_imported``: only the distributions providing imported modules (``modules``, by
    default this process's ``sys.modules``) and what they require. The kernel, Jupyter, this
    project and the installers are left out unless ``include_tooling`` (or a kept
    distribution requires them); :func:`left_out_imported` names those that provide imported
    modules, and ``include`` adds any by name. ``exclude`` leaves out distributions by name.
    Local project folders are shipped as source layers (``on_local="ship"``) or refused with
    their names (``"error"``); VCS installs keep their URL and commit. ``path`` reads another
    ``site-packages`` instead of ``sys.path`` (give its ``python_version`` too, e.g. "3.12",
    when that is not the running interpreter's).
    """
    env = read_environment(path)
    if python_version is not None:
        env = dataclasses.replace(env, python_version=python_version)
    return freeze_image(env, name=name, registry=registry, only_imported=only_imported,
                        modules=modules, include_tooling=include_tooling, exclude=exclude,
                        include=include, on_local=on_local, index_url=index_url,
                        extra_index_urls=extra_index_urls)


def imported_modules(image: Image | None = None, *, env: Environment | None = None,
                     modules: Iterable[str] | None = None) -> dict[str, tuple[str, str] | None]:
    """Imported top-level modules mapped to (distribution, version) from ``env``.

    With ``image``, only modules of distributions that image pins; without, those a freeze of
    ``env`` keeps. Either way the kernel's own modules (``zmq`` of ipykernel) are not expected.
    """
    env = env or read_environment()
    kept = select(env)
    if image is not None:
        kept = pinned_names(image)
    result: dict[str, tuple[str, str] | None] = {}
    for module in sorted(imported_top_level(modules)):
        providers = env.providers(module)
        if not providers:
            continue  # a local module or one of a distribution-less path entry
        dist = providers[0]
        if dist.name not in kept:
            continue
        result[module] = (dist.display_name, dist.version)
    return result


def pinned_names(image: Image) -> set[str]:
    """Canonical names of the distributions an image's pip layers install."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return {canonicalize_name(Requirement(text).name)
            for layer in image.layers for text in getattr(layer, "packages", ())
            if isinstance(text, str)}
