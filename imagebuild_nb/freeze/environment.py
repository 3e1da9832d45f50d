"""What is installed: one record per distribution, read with ``importlib.metadata``.

>>> env = read_environment()
>>> "imagebuild-nb" in env.distributions
True
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


@dataclass(frozen=True)
class Origin:
    """Where a distribution came from, per its ``direct_url.json`` (PEP 610).

    ``kind``: ``index`` (no direct_url.json), ``folder`` (a local project, ``editable`` or
    not), ``archive`` (a wheel/sdist by URL, local or remote) or ``vcs`` (git & co. with the
    commit).
    """

    kind: str
    url: str | None = None
    editable: bool = False
    vcs: str | None = None
    commit: str | None = None
    subdirectory: str | None = None

    @property
    def local_path(self) -> str | None:
        if self.url and self.url.startswith("file:"):
            return unquote(urlparse(self.url).path)
        return None


@dataclass(frozen=True)
class Distribution:
    name: str  # canonical (PEP 503): "pyyaml"
    display_name: str  # as its metadata spells it: "PyYAML"
    version: str
    requires: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()  # top-level import names it provides: ("yaml", "_yaml")
    origin: Origin = field(default_factory=lambda: Origin("index"))
    requested: bool = False  # installed by name (pip/uv write REQUESTED), not as a dependency

    def requirements(self, extras: Iterable[str] = ()) -> list[Requirement]:
        """Its requirements that apply on this interpreter with these extras."""
        wanted = [""] + sorted(set(extras))
        result = []
        for text in self.requires:
            requirement = _requirement(text)
            if requirement is None:
                continue  # broken metadata of someone else's package: nothing to follow
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in wanted):
                result.append(requirement)
        return result


@functools.lru_cache(maxsize=8192)
def _requirement(text: str) -> Requirement | None:
    # Parsed once per text: roots and closures walk the same requirements several times.
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


@dataclass(frozen=True)
class Environment:
    """The distributions of one environment, by canonical name, and the interpreter's version."""

    distributions: Mapping[str, Distribution]
    python_version: str  # "3.11"

    def providers(self, module: str) -> list[Distribution]:
        return [dist for dist in self.distributions.values() if module in dist.modules]


def read_environment(path: Sequence[str] | None = None) -> Environment:
    """Read the distributions on ``path`` (default: ``sys.path``); the first one of a name
    wins, as for imports."""
    found = metadata.distributions(path=list(path)) if path is not None \
        else metadata.distributions()
    distributions: dict[str, Distribution] = {}
    for dist in found:
        meta = dist.metadata  # parsed on every access: once per distribution here
        raw_name = meta["Name"]
        if not raw_name:
            continue
        name = canonicalize_name(raw_name)
        if name in distributions:
            continue
        distributions[name] = Distribution(
            name=name, display_name=raw_name, version=meta["Version"],
            requires=tuple(meta.get_all("Requires-Dist") or ()), modules=_top_level(dist),
            origin=_origin(dist.read_text("direct_url.json")),
            requested=dist.read_text("REQUESTED") is not None)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Environment(distributions, version)


def _top_level(dist: metadata.Distribution) -> tuple[str, ...]:
    """Top-level import names: top_level.txt when there, else the first part of each file.

    Editable installs list no package files: their ``.pth`` points at a folder, or a finder
    module maps the names (setuptools' ``__editable___*_finder.py``).
    """
    text = dist.read_text("top_level.txt")
    if text:
        return tuple(sorted({line.strip() for line in text.splitlines() if line.strip()}))
    names: set[str] = set()
    for file in dist.files or ():
        parts = file.parts
        if not parts or parts[0].endswith((".dist-info", ".egg-info", ".data")) \
                or parts[0] in ("..", "__pycache__"):
            continue
        first = parts[0]
        if len(parts) == 1:
            if first.endswith(".py") and not first.startswith("__editable__"):
                names.add(first[:-3])
            elif first.endswith(".so") or first.endswith(".pyd"):
                names.add(first.split(".", 1)[0])
        elif not first.endswith(".pth"):
            names.add(first)
        if len(parts) == 1 and first.endswith(".pth"):
            names.update(_pth_modules(dist, file))
    return tuple(sorted(name for name in names if name.isidentifier()))


def _pth_modules(dist: metadata.Distribution, file: metadata.PackagePath) -> set[str]:
    """Packages and modules in the folders a ``.pth`` file adds to sys.path (the editable
    installs of hatchling, PDM and setuptools' compat mode)."""
    try:
        text = Path(str(dist.locate_file(file))).read_text()
    except (OSError, UnicodeDecodeError):
        return set()
    names: set[str] = set()
    for line in text.splitlines():
        folder = Path(line.strip())
        if not line.strip() or line.startswith(("import ", "import\t", "#")) \
                or not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.is_dir() and (entry / "__init__.py").is_file():
                names.add(entry.name)
            elif entry.suffix == ".py" and entry.stem not in ("setup", "conftest"):
                names.add(entry.stem)
    return names


def _origin(text: str | None) -> Origin:
    if not text:
        return Origin("index")
    try:
        data = json.loads(text)
    except ValueError:
        return Origin("index")
    url = data.get("url")
    subdirectory = data.get("subdirectory")
    if "vcs_info" in data:
        info = data["vcs_info"]
        return Origin("vcs", url=url, vcs=info.get("vcs"), commit=info.get("commit_id"),
                      subdirectory=subdirectory)
    if "dir_info" in data:
        return Origin("folder", url=url, editable=bool(data["dir_info"].get("editable")),
                      subdirectory=subdirectory)
    return Origin("archive", url=url, subdirectory=subdirectory)
