"""Freeze an environment into an ordinary ``Image``.

The default Debian/Python base with the environment's Python minor version, then one install
layer with every chosen distribution pinned ``name==version`` and ``--no-deps``: a lock, the
installer resolves nothing and nothing drifts. What an index cannot serve is named:

- a local project folder (editable or not) is shipped as a source layer and installed from
  there (``on_local="ship"``), or refused with its name (``on_local="error"``, or when the
  folder is gone or is an archive);
- a VCS install keeps its URL and commit (``name @ git+URL@commit``; git comes with apt).

>>> from imagebuild_nb.freeze.environment import Distribution, Environment
>>> env = Environment({"six": Distribution("six", "six", "1.16.0", requested=True)}, "3.11")
>>> freeze_image(env, name="frozen").layers[0].packages
('six==1.16.0',)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from imagebuild_nb.errors import FreezeError
from imagebuild_nb.freeze.environment import Distribution, Environment
from imagebuild_nb.freeze.selection import select

if TYPE_CHECKING:
    from imagebuild_nb.spec.image import Image

SOURCES = "/opt/imagebuild-nb/sources"
OnLocal = Literal["ship", "error"]


@dataclass(frozen=True)
class Frozen:
    """The parts of a freeze: pins from an index, URL pins, local folders to ship."""

    pins: tuple[str, ...]
    urls: tuple[str, ...]
    folders: tuple[tuple[Distribution, str], ...]
    vcs: bool


def plan_freeze(env: Environment, names: Iterable[str], *, on_local: OnLocal = "ship") -> Frozen:
    pins, urls, folders, refused = [], [], [], []
    vcs = False
    for name in sorted(names):
        dist = env.distributions[name]
        origin = dist.origin
        if origin.kind == "index":
            pins.append(f"{dist.display_name}=={dist.version}")
        elif origin.kind == "vcs" and origin.url and origin.commit:
            sub = f"#subdirectory={origin.subdirectory}" if origin.subdirectory else ""
            urls.append(f"{dist.display_name} @ {origin.vcs}+{origin.url}@{origin.commit}{sub}")
            vcs = True
        elif origin.kind == "archive" and origin.url and not origin.url.startswith("file:"):
            urls.append(f"{dist.display_name} @ {origin.url}")
        elif origin.kind == "folder" and on_local == "ship" and origin.local_path \
                and os.path.isdir(_project_dir(dist)):
            folders.append((dist, _project_dir(dist)))
        else:
            refused.append(dist)
    if refused:
        listed = ", ".join(f"{d.display_name} {d.version} ({_where(d)})" for d in refused)
        raise FreezeError(
            f"cannot freeze {len(refused)} distribution(s) that no index serves: {listed}",
            distributions=tuple(d.display_name for d in refused),
            hint="ship local project folders with on_local='ship' (the folder must exist), "
                 "leave them out with exclude=[...], or install them from an index or a VCS URL")
    return Frozen(tuple(pins), tuple(urls), tuple(folders), vcs)


def freeze_image(env: Environment, *, name: str | None = None, registry: str | None = None,
                 only_imported: bool = False, modules: Iterable[str] | None = None,
                 include_tooling: bool = False, exclude: Sequence[str] = (),
                 include: Sequence[str] = (), on_local: OnLocal = "ship",
                 index_url: str | None = None, extra_index_urls: Sequence[str] = ()) -> Image:
    from imagebuild_nb.spec.image import Image

    if on_local not in ("ship", "error"):
        raise FreezeError(f"on_local={on_local!r} is not one of 'ship', 'error'",
                          argument="on_local")
    chosen = select(env, only_imported=only_imported, modules=modules,
                    include_tooling=include_tooling, exclude=exclude, include=include)
    parts = plan_freeze(env, chosen, on_local=on_local)
    image = Image.from_debian_base(python_version=env.python_version, name=name,
                                   registry=registry)
    if parts.vcs:
        image = image.with_apt_packages("git")
    options = {"index_url": index_url, "extra_index_urls": tuple(extra_index_urls),
               "extra_args": ["--no-deps"]}
    if parts.pins or parts.urls:
        pins = (*parts.pins, *parts.urls)
        image = image.with_pip_packages(*pins, **options)  # type: ignore[arg-type]
    if parts.folders:
        local = []
        for dist, folder in parts.folders:
            image = image.with_source_folder(folder, dst=f"{SOURCES}/{dist.name}")
            local.append(f"{dist.display_name} @ file://{SOURCES}/{dist.name}")
        # The installer builds each project; its build backend comes from the index.
        image = image.with_pip_packages(*local, **options)  # type: ignore[arg-type]
    return image


def _project_dir(dist: Distribution) -> str:
    path = dist.origin.local_path or ""
    return os.path.join(path, dist.origin.subdirectory) if dist.origin.subdirectory else path


def _where(dist: Distribution) -> str:
    origin = dist.origin
    kind = "editable " if origin.editable else ""
    if origin.kind == "folder":
        return f"{kind}folder {origin.local_path}" + (
            "" if os.path.isdir(_project_dir(dist)) else ", missing")
    if origin.kind == "archive":
        return f"local archive {origin.local_path or origin.url}"
    return f"{origin.kind} {origin.url}"
