"""Where an Image starts: the default Debian/Python base, any registry image, or a Dockerfile.

>>> DebianBase.create("3.11").reference
'python:3.11-slim'
>>> mirrored("python:3.11-slim", "localhost:5001")
'localhost:5001/library/python:3.11-slim'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from imagebuild_nb.errors import SpecError
from imagebuild_nb.spec import validate
from imagebuild_nb.spec.reference import DOCKER_HUB, ImageReference

_PYTHON_VERSION_RE = re.compile(r"^3\.[0-9]{1,2}(?:\.[0-9]{1,2})?$")
_BUILD_ARG_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class DebianBase:
    """The official ``python:X.Y-slim`` image (Debian); identity uses this logical reference."""

    kind: ClassVar[str] = "debian_base"
    python_version: str

    @classmethod
    def create(cls, python_version: str) -> DebianBase:
        if not isinstance(python_version, str) or not _PYTHON_VERSION_RE.fullmatch(python_version):
            raise SpecError(f"python_version={python_version!r} is not a Python version",
                            argument="python_version", hint="e.g. python_version='3.11'")
        return cls(python_version)

    @property
    def reference(self) -> str:
        return f"python:{self.python_version}-slim"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "python_version": self.python_version}


@dataclass(frozen=True)
class RegistryBase:
    """Any image reference, e.g. ``localhost:5001/base:1`` or ``ubuntu:24.04``."""

    kind: ClassVar[str] = "base"
    reference: str

    @classmethod
    def create(cls, reference: str) -> RegistryBase:
        return cls(str(ImageReference.parse(reference, argument="base")))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "reference": self.reference}


@dataclass(frozen=True)
class DockerfileBase:
    """A user's Dockerfile with its build context folder and build args."""

    kind: ClassVar[str] = "dockerfile"
    dockerfile: str
    context: str
    build_args: tuple[tuple[str, str], ...] = ()

    @classmethod
    def create(cls, dockerfile: str | os.PathLike[str], context: str | os.PathLike[str] | None,
               build_args: Mapping[str, str] | None) -> DockerfileBase:
        path = validate.local_path(dockerfile, argument="path", kind="file")
        folder = path.parent if context is None else validate.local_path(
            context, argument="context", kind="folder")
        args: list[tuple[str, str]] = []
        if build_args is not None:
            if not isinstance(build_args, Mapping):
                raise SpecError("build_args must be a dict of str to str", argument="build_args")
            for key, value in build_args.items():
                if not isinstance(key, str) or not _BUILD_ARG_RE.fullmatch(key):
                    raise SpecError(f"build_args: {key!r} is not a valid ARG name",
                                    argument="build_args")
                if not isinstance(value, str):
                    raise SpecError(f"build_args[{key!r}] must be a string",
                                    argument="build_args", hint=f"use str({value!r})")
                args.append((key, value))
        return cls(str(path), str(folder), tuple(args))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "dockerfile": self.dockerfile, "context": self.context,
                "build_args": dict(self.build_args)}


Base = DebianBase | RegistryBase | DockerfileBase


def base_from_dict(data: Mapping[str, Any]) -> Base:
    if not isinstance(data, Mapping):
        raise SpecError(f"base must be an object, got {data!r}", argument="base")
    kind = data.get("type")
    allowed = {"debian_base": {"python_version"}, "base": {"reference"},
               "dockerfile": {"dockerfile", "context", "build_args"}}
    if kind not in allowed:
        raise SpecError(f"unknown base type {kind!r}", argument="base",
                        hint=f"known types: {sorted(allowed)}")
    unknown = sorted(set(data) - allowed[kind] - {"type"})
    if unknown:
        raise SpecError(f"base {kind!r} has unknown fields {unknown}", argument="base")
    if kind == "debian_base":
        return DebianBase.create(data.get("python_version"))  # type: ignore[arg-type]
    if kind == "base":
        return RegistryBase.create(data.get("reference"))  # type: ignore[arg-type]
    return DockerfileBase.create(data.get("dockerfile"), data.get("context"),  # type: ignore[arg-type]
                                 data.get("build_args"))


def mirrored(reference: str, mirror: str | None) -> str:
    """Redirect a Docker Hub reference to a mirror (``host[:port][/prefix]``); others unchanged."""
    if not mirror:
        return reference
    ref = ImageReference.parse(reference, argument="base")
    if ref.registry not in (None, DOCKER_HUB, "index.docker.io"):
        return reference
    repository = ref.repository if "/" in ref.repository else f"library/{ref.repository}"
    text = f"{mirror.rstrip('/')}/{repository}"
    if ref.tag:
        text += f":{ref.tag}"
    if ref.digest:
        text += f"@{ref.digest}"
    return text
