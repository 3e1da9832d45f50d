"""Project layers: a uv project, a Poetry project, a uv script (PEP 723 inline metadata).

Each installs into the image's virtual environment (/opt/venv) like pip layers do. Their files
travel in the build context under ``layers/<index>/`` and count for the content tag: the
pyproject and lock file for ``project_install_mode="dependencies_only"`` (Flyte's default), the
whole project folder (.dockerignore rules applied) for ``"install_project"``. A uv script counts
by its metadata only, so editing the script's code keeps the image.

>>> import pathlib, tempfile
>>> script = pathlib.Path(tempfile.mkdtemp(), "job.py")
>>> _ = script.write_text('# /// script\\n# dependencies = ["six"]\\n# ///\\nprint(1)\\n')
>>> UVScript.create(script).dependencies
('six',)
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from imagebuild_nb.errors import SpecError
from imagebuild_nb.spec import validate
from imagebuild_nb.spec.layers import Layer, pip_options
from imagebuild_nb.spec.secrets import SecretMount

if TYPE_CHECKING:
    from imagebuild_nb.spec.files import TreeEntry
    from imagebuild_nb.spec.ignore import IgnoreRules

InstallMode = Literal["dependencies_only", "install_project"]
_MODES = ("dependencies_only", "install_project")
# PEP 723: "# /// script" ... "# ///", each line "#" or "# " + content.
_BLOCK_RE = re.compile(r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$")


def _mode(value: object) -> InstallMode:
    if value not in _MODES:
        raise SpecError(f"project_install_mode={value!r} is not a mode",
                        argument="project_install_mode", hint=f"use one of {list(_MODES)}")
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class UVProject(Layer):
    """``uv sync`` of a pyproject.toml (and its uv.lock when there is one) into /opt/venv."""

    kind: ClassVar[str] = "uv_project"
    pyproject: str
    uvlock: str | None = None
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    pre: bool = False
    extra_args: tuple[str, ...] = ()
    secret_mounts: tuple[SecretMount, ...] = ()
    project_install_mode: InstallMode = "dependencies_only"

    @classmethod
    def create(cls, pyproject: str | os.PathLike[str],
               uvlock: str | os.PathLike[str] | None = None, index_url: str | None = None,
               extra_index_urls: Sequence[str] | str | None = (), pre: bool = False,
               extra_args: Sequence[str] | str | None = (), secret_mounts: object = None,
               project_install_mode: str = "dependencies_only") -> UVProject:
        path = validate.local_path(pyproject, argument="pyproject_file", kind="file")
        if uvlock is None and (path.parent / "uv.lock").is_file():
            uvlock = path.parent / "uv.lock"  # Flyte's default: the lock beside the pyproject
        lock = None if uvlock is None else str(validate.local_path(uvlock, argument="uvlock",
                                                                   kind="file"))
        return cls(str(path), lock, **pip_options(index_url, extra_index_urls, pre, extra_args,
                                                  secret_mounts),
                   project_install_mode=_mode(project_install_mode))

    @property
    def files(self) -> tuple[str, ...]:
        if self.project_install_mode == "install_project":
            return (str(Path(self.pyproject).parent),)
        return (self.pyproject,) + ((self.uvlock,) if self.uvlock else ())


@dataclass(frozen=True)
class PoetryProject(Layer):
    """``poetry install`` of a pyproject.toml and poetry.lock into /opt/venv."""

    kind: ClassVar[str] = "poetry_project"
    pyproject: str
    poetry_lock: str
    extra_args: tuple[str, ...] = ()
    secret_mounts: tuple[SecretMount, ...] = ()
    project_install_mode: InstallMode = "dependencies_only"

    @classmethod
    def create(cls, pyproject: str | os.PathLike[str],
               poetry_lock: str | os.PathLike[str] | None = None,
               extra_args: Sequence[str] | str | None = (), secret_mounts: object = None,
               project_install_mode: str = "dependencies_only") -> PoetryProject:
        path = validate.local_path(pyproject, argument="pyproject_file", kind="file")
        lock = validate.local_path(poetry_lock if poetry_lock is not None
                                   else path.parent / "poetry.lock",
                                   argument="poetry_lock", kind="file")
        options = pip_options(None, (), False, extra_args, secret_mounts)
        return cls(str(path), str(lock), options["extra_args"], options["secret_mounts"],
                   _mode(project_install_mode))

    @property
    def files(self) -> tuple[str, ...]:
        if self.project_install_mode == "install_project":
            return (str(Path(self.pyproject).parent),)
        return (self.pyproject, self.poetry_lock)


@dataclass(frozen=True)
class UVScript(Layer):
    """The dependencies a script declares in its PEP 723 block, installed with uv."""

    kind: ClassVar[str] = "uv_script"
    script: str
    dependencies: tuple[str, ...] = ()
    requires_python: str | None = None
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    pre: bool = False
    extra_args: tuple[str, ...] = ()
    secret_mounts: tuple[SecretMount, ...] = ()

    @classmethod
    def create(cls, script: str | os.PathLike[str],
               dependencies: object = None, requires_python: object = None,
               index_url: str | None = None, extra_index_urls: Sequence[str] | str | None = (),
               pre: bool = False, extra_args: Sequence[str] | str | None = (),
               secret_mounts: object = None) -> UVScript:
        path = validate.local_path(script, argument="script", kind="file")
        metadata = script_metadata(path)
        deps = metadata.get("dependencies") or []
        if not isinstance(deps, list):
            raise SpecError(f"script {path}: 'dependencies' must be a list", argument="script")
        for dep in deps:
            if isinstance(dep, str) and "file://" in dep:
                raise SpecError(f"script {path}: the local dependency {dep!r} is not supported",
                                argument="script", hint="add that project with "
                                "with_uv_project(..., project_install_mode='install_project')")
        python = metadata.get("requires-python")
        return cls(str(path), tuple(validate.pip_requirement(dep) for dep in deps),
                   python if isinstance(python, str) else None,
                   **pip_options(index_url, extra_index_urls, pre, extra_args, secret_mounts))


def script_metadata(path: Path) -> dict[str, Any]:
    """The script's ``# /// script`` block as TOML data (PEP 723); SpecError when it has none."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: the tomli dependency (same API)
        import tomli as tomllib

    text = path.read_text(encoding="utf-8", errors="replace")
    blocks = [m for m in _BLOCK_RE.finditer(text) if m.group("type") == "script"]
    if not blocks:
        raise SpecError(f"script {path} has no '# /// script' metadata block", argument="script",
                        hint="declare its dependencies (PEP 723):\n# /// script\n"
                             "# dependencies = [\"pandas\"]\n# ///")
    if len(blocks) > 1:
        raise SpecError(f"script {path} has more than one '# /// script' block",
                        argument="script")
    content = "".join(line[2:] if line.startswith("# ") else line[1:]
                      for line in blocks[0].group("content").splitlines(keepends=True))
    try:
        data: dict[str, Any] = tomllib.loads(content)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"script {path}: its metadata block is not valid TOML: {error}",
                        argument="script") from None
    return data


PROJECT_LAYERS = (UVProject, PoetryProject, UVScript)


def project_document(layer: Layer, rules: IgnoreRules) -> tuple[dict[str, Any],
                                                                 tuple[TreeEntry, ...]]:
    """Identity document and context files of a project layer (see spec.identity)."""
    from imagebuild_nb.spec.files import folder_rules, tree_digest, walk_tree
    from imagebuild_nb.spec.identity import _single

    doc = layer.to_dict()
    for key in ("pyproject", "uvlock", "poetry_lock", "script"):
        doc.pop(key, None)
    if isinstance(layer, UVScript):
        return doc, ()  # its metadata (in the document already) is all that counts
    assert isinstance(layer, (UVProject, PoetryProject))
    if layer.project_install_mode == "install_project":
        folder = Path(layer.pyproject).parent
        entries = tuple(walk_tree(folder, folder_rules(folder, rules)))
        names = {entry.path for entry in entries}
        # The pyproject and the lock are what the install reads: ignore rules cannot drop them.
        lock = layer.uvlock if isinstance(layer, UVProject) else layer.poetry_lock
        extra = tuple(_single(path, "pyproject_file") for path in (layer.pyproject, lock)
                      if path and Path(path).parent == folder
                      and Path(path).name not in names)
        entries = tuple(sorted(entries + extra, key=lambda entry: entry.path))
        doc["tree"] = tree_digest(list(entries))
        return doc, entries
    lock_name = "uv.lock" if isinstance(layer, UVProject) else "poetry.lock"
    lock = layer.uvlock if isinstance(layer, UVProject) else layer.poetry_lock
    files = [(_single(layer.pyproject, "pyproject_file"), "pyproject.toml")]
    if lock:
        files.append((_single(lock, "uvlock" if isinstance(layer, UVProject) else "poetry_lock"),
                      lock_name))
    entries = tuple(_renamed(entry, name) for entry, name in files)
    doc["sha256"] = {entry.path: entry.digest for entry in entries}
    return doc, entries


def _renamed(entry: TreeEntry, name: str) -> TreeEntry:
    return entry._replace(path=name)
