"""Layer types of the Image spec: plain data (no Dockerfile text), JSON-serializable.

Each layer has a ``kind`` (its type tag in identity and JSON) and validates its input in
``create``. Local paths are stored absolute; their contents travel in the build context, never
in the JSON form.

>>> AptPackages.create(("git", "curl")).to_dict()
{'type': 'apt_packages', 'packages': ['git', 'curl']}
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from imagebuild_nb.errors import SpecError
from imagebuild_nb.spec import validate


@dataclass(frozen=True)
class Layer:
    kind: ClassVar[str] = ""

    @classmethod
    def create(cls, *args: Any, **kwargs: Any) -> Layer:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.kind}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "env":
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            data[field.name] = value
        return data

    @property
    def files(self) -> tuple[str, ...]:
        """Local paths whose contents this layer puts into the image."""
        return ()


@dataclass(frozen=True)
class AptPackages(Layer):
    kind: ClassVar[str] = "apt_packages"
    packages: tuple[str, ...]

    @classmethod
    def create(cls, packages: Sequence[str]) -> AptPackages:  # type: ignore[override]
        packages = tuple(packages)
        validate.reject_nested(packages, argument="packages", method="with_apt_packages")
        validate.non_empty(packages, argument="packages", method="with_apt_packages")
        return cls(tuple(validate.apt_package(p) for p in packages))


@dataclass(frozen=True)
class PipPackages(Layer):
    kind: ClassVar[str] = "pip_packages"
    packages: tuple[str, ...]
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    pre: bool = False
    extra_args: tuple[str, ...] = ()

    @classmethod
    def create(  # type: ignore[override]
        cls,
        packages: Sequence[str],
        index_url: str | None = None,
        extra_index_urls: Sequence[str] | str | None = (),
        pre: bool = False,
        extra_args: Sequence[str] | str | None = (),
    ) -> PipPackages:
        packages = tuple(packages)
        validate.reject_nested(packages, argument="packages", method="with_pip_packages")
        validate.non_empty(packages, argument="packages", method="with_pip_packages")
        if not isinstance(pre, bool):
            raise SpecError("pre must be True or False", argument="pre")
        return cls(
            packages=tuple(validate.pip_requirement(p) for p in packages),
            index_url=None if index_url is None else validate.index_url(index_url,
                                                                         argument="index_url"),
            extra_index_urls=tuple(
                validate.index_url(url, argument="extra_index_urls")
                for url in validate.string_list(extra_index_urls, argument="extra_index_urls")
            ),
            pre=pre,
            extra_args=validate.extra_args(extra_args),
        )


@dataclass(frozen=True)
class Requirements(Layer):
    kind: ClassVar[str] = "requirements"
    path: str

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> Requirements:  # type: ignore[override]
        return cls(str(validate.local_path(path, argument="path", kind="file")))

    @property
    def files(self) -> tuple[str, ...]:
        return (self.path,)


@dataclass(frozen=True)
class Commands(Layer):
    kind: ClassVar[str] = "commands"
    commands: tuple[str, ...]

    @classmethod
    def create(cls, commands: Sequence[str]) -> Commands:  # type: ignore[override]
        if isinstance(commands, str):
            raise SpecError("with_commands() takes a list of commands, got a single string",
                            argument="commands", hint=f"wrap it: with_commands([{commands!r}])")
        if not isinstance(commands, Sequence):
            raise SpecError("with_commands() takes a list of commands", argument="commands")
        if not commands:
            raise SpecError("with_commands() needs at least one command", argument="commands")
        return cls(tuple(validate.command(c) for c in commands))


@dataclass(frozen=True)
class EnvVars(Layer):
    kind: ClassVar[str] = "env_vars"
    env: tuple[tuple[str, str], ...]

    @classmethod
    def create(cls, env: Mapping[str, str]) -> EnvVars:  # type: ignore[override]
        return cls(validate.env_vars(env))


@dataclass(frozen=True)
class Workdir(Layer):
    kind: ClassVar[str] = "workdir"
    path: str

    @classmethod
    def create(cls, path: str) -> Workdir:  # type: ignore[override]
        return cls(validate.image_path(path, argument="path", absolute=True).rstrip("/") or "/")


@dataclass(frozen=True)
class SourceFolder(Layer):
    kind: ClassVar[str] = "source_folder"
    src: str
    dst: str = "."

    @classmethod
    def create(cls, src: str | os.PathLike[str], dst: str = ".") -> SourceFolder:  # type: ignore[override]
        return cls(str(validate.local_path(src, argument="src", kind="folder")),
                   validate.image_path(dst, argument="dst"))

    @property
    def files(self) -> tuple[str, ...]:
        return (self.src,)


@dataclass(frozen=True)
class SourceFile(Layer):
    kind: ClassVar[str] = "source_file"
    src: str
    dst: str = "."

    @classmethod
    def create(cls, src: str | os.PathLike[str], dst: str = ".") -> SourceFile:  # type: ignore[override]
        path = validate.local_path(src, argument="src", kind="file")
        dst = validate.image_path(dst, argument="dst")
        if dst in (".", "/") or dst.endswith("/"):
            # Copy "into" a folder: the file keeps its name, which must then be a safe path too.
            dst = validate.image_path(f"{dst.rstrip('/')}/{path.name}", argument="src")
        return cls(str(path), dst)

    @property
    def files(self) -> tuple[str, ...]:
        return (self.src,)


@dataclass(frozen=True)
class DockerIgnore(Layer):
    """Rules applied to every source folder of the image (the file's rules count for identity)."""

    kind: ClassVar[str] = "dockerignore"
    path: str

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> DockerIgnore:  # type: ignore[override]
        return cls(str(validate.local_path(path, argument="path", kind="file")))

    @property
    def files(self) -> tuple[str, ...]:
        return (self.path,)


@dataclass(frozen=True)
class CACertificates(Layer):
    """Extra CA certificates trusted by later RUN steps (apt, pip, curl) and at runtime."""

    kind: ClassVar[str] = "ca_certificates"
    paths: tuple[str, ...]

    @classmethod
    def create(cls, paths: Sequence[str | os.PathLike[str]]) -> CACertificates:  # type: ignore[override]
        paths = tuple(paths)
        validate.reject_nested(paths, argument="paths", method="with_ca_certificates")
        validate.non_empty(paths, argument="paths", method="with_ca_certificates")
        resolved = []
        for path in paths:
            file = validate.local_path(path, argument="paths", kind="file")
            with open(file, "rb") as handle:
                head = handle.read(1 << 16)
            if b"-----BEGIN CERTIFICATE-----" not in head:
                raise SpecError(f"paths: {os.fspath(path)!r} is not a PEM certificate file",
                                argument="paths",
                                hint="give PEM files ('-----BEGIN CERTIFICATE-----'), e.g. "
                                "/etc/ssl/certs/ca-certificates.crt")
            resolved.append(str(file))
        return cls(tuple(resolved))

    @property
    def files(self) -> tuple[str, ...]:
        return self.paths


LAYER_TYPES: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (AptPackages, PipPackages, Requirements, Commands, EnvVars, Workdir, SourceFolder,
                SourceFile, DockerIgnore, CACertificates)
}


def layer_from_dict(data: Mapping[str, Any]) -> Layer:
    """Rebuild (and re-validate) a layer from :meth:`Layer.to_dict` output."""
    if not isinstance(data, Mapping) or "type" not in data:
        raise SpecError(f"a layer must be an object with a 'type', got {data!r}",
                        argument="layers")
    kind = data["type"]
    cls = LAYER_TYPES.get(kind)
    if cls is None:
        raise SpecError(f"unknown layer type {kind!r}", argument="layers",
                        hint=f"known types: {', '.join(sorted(LAYER_TYPES))}")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields - {"type"})
    if unknown:
        raise SpecError(f"layer {kind!r} has unknown fields {unknown}", argument="layers",
                        hint=f"allowed fields: {sorted(fields)}")
    args = {k: v for k, v in data.items() if k != "type"}
    if cls is SourceFile:
        # The stored dst is final already; re-deriving it from a folder dst would change nothing.
        return SourceFile.create(args["src"], args.get("dst", "."))
    try:
        return cls.create(**args)
    except TypeError as error:
        raise SpecError(f"layer {kind!r}: {error}", argument="layers") from None
