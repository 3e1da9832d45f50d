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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from imagebuild_nb.errors import SpecError
from imagebuild_nb.spec import validate
from imagebuild_nb.spec.secrets import SecretMount


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
            if field.name in ("env", "labels"):
                value = dict(value)
            elif field.name == "secret_mounts":
                if not value:
                    continue  # the common case: no secrets, same document as before they existed
                value = [mount.to_dict() for mount in value]
            elif isinstance(value, tuple):
                value = list(value)
            data[field.name] = value
        return data

    @property
    def files(self) -> tuple[str, ...]:
        """Local paths whose contents this layer puts into the image."""
        return ()

    @property
    def secrets(self) -> tuple[SecretMount, ...]:
        """Secrets its RUN steps read (values never part of the layer)."""
        return getattr(self, "secret_mounts", ())


@dataclass(frozen=True)
class AptPackages(Layer):
    kind: ClassVar[str] = "apt_packages"
    packages: tuple[str, ...]
    secret_mounts: tuple[SecretMount, ...] = ()

    @classmethod
    def create(cls, packages: Sequence[str],
               secret_mounts: object = None) -> AptPackages:
        packages = tuple(packages)
        validate.reject_nested(packages, argument="packages", method="with_apt_packages")
        validate.non_empty(packages, argument="packages", method="with_apt_packages")
        return cls(tuple(validate.apt_package(p) for p in packages), _secrets(secret_mounts))


@dataclass(frozen=True)
class PipPackages(Layer):
    kind: ClassVar[str] = "pip_packages"
    packages: tuple[str, ...]
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    pre: bool = False
    extra_args: tuple[str, ...] = ()
    secret_mounts: tuple[SecretMount, ...] = ()

    @classmethod
    def create(
        cls,
        packages: Sequence[str],
        index_url: str | None = None,
        extra_index_urls: Sequence[str] | str | None = (),
        pre: bool = False,
        extra_args: Sequence[str] | str | None = (),
        secret_mounts: object = None,
    ) -> PipPackages:
        packages = tuple(packages)
        validate.reject_nested(packages, argument="packages", method="with_pip_packages")
        validate.non_empty(packages, argument="packages", method="with_pip_packages")
        return cls(packages=tuple(validate.pip_requirement(p) for p in packages),
                   **pip_options(index_url, extra_index_urls, pre, extra_args, secret_mounts))


def pip_options(index_url: str | None, extra_index_urls: Sequence[str] | str | None, pre: bool,
                extra_args: Sequence[str] | str | None, secret_mounts: object) -> dict[str, Any]:
    """The installer options pip packages, requirements, uv projects and scripts share."""
    if not isinstance(pre, bool):
        raise SpecError("pre must be True or False", argument="pre")
    return {
        "index_url": None if index_url is None else validate.index_url(index_url,
                                                                       argument="index_url"),
        "extra_index_urls": tuple(
            validate.index_url(url, argument="extra_index_urls")
            for url in validate.string_list(extra_index_urls, argument="extra_index_urls")),
        "pre": pre,
        "extra_args": validate.extra_args(extra_args),
        "secret_mounts": _secrets(secret_mounts),
    }


def _secrets(values: object) -> tuple[SecretMount, ...]:
    from imagebuild_nb.spec.secrets import secret_mounts as parse

    return parse(values)


@dataclass(frozen=True)
class Requirements(Layer):
    kind: ClassVar[str] = "requirements"
    path: str
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    pre: bool = False
    extra_args: tuple[str, ...] = ()
    secret_mounts: tuple[SecretMount, ...] = ()

    @classmethod
    def create(cls, path: str | os.PathLike[str],
               index_url: str | None = None,
               extra_index_urls: Sequence[str] | str | None = (), pre: bool = False,
               extra_args: Sequence[str] | str | None = (),
               secret_mounts: object = None) -> Requirements:
        return cls(str(validate.local_path(path, argument="path", kind="file")),
                   **pip_options(index_url, extra_index_urls, pre, extra_args, secret_mounts))

    @property
    def files(self) -> tuple[str, ...]:
        return (self.path,)


@dataclass(frozen=True)
class Commands(Layer):
    kind: ClassVar[str] = "commands"
    commands: tuple[str, ...]
    secret_mounts: tuple[SecretMount, ...] = ()

    @classmethod
    def create(cls, commands: Sequence[str] | str,
               secret_mounts: object = None) -> Commands:
        if isinstance(commands, str):
            commands = [commands]  # Flyte's meaning: one command
        if not isinstance(commands, Sequence):
            raise SpecError("with_commands() takes a command or a list of commands",
                            argument="commands")
        if not commands:
            raise SpecError("with_commands() needs at least one command", argument="commands")
        return cls(tuple(validate.command(c) for c in commands), _secrets(secret_mounts))


@dataclass(frozen=True)
class EnvVars(Layer):
    kind: ClassVar[str] = "env_vars"
    env: tuple[tuple[str, str], ...]

    @classmethod
    def create(cls, env: Mapping[str, str]) -> EnvVars:
        return cls(validate.env_vars(env))


@dataclass(frozen=True)
class Workdir(Layer):
    kind: ClassVar[str] = "workdir"
    path: str

    @classmethod
    def create(cls, path: str) -> Workdir:
        return cls(validate.image_path(path, argument="path", absolute=True).rstrip("/") or "/")


@dataclass(frozen=True)
class SourceFolder(Layer):
    kind: ClassVar[str] = "source_folder"
    src: str
    dst: str = "."

    @classmethod
    def create(cls, src: str | os.PathLike[str], dst: str = ".") -> SourceFolder:
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
    def create(cls, src: str | os.PathLike[str], dst: str = ".") -> SourceFile:
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
    def create(cls, path: str | os.PathLike[str]) -> DockerIgnore:
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
    def create(cls, paths: Sequence[str | os.PathLike[str]]) -> CACertificates:
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


_LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


@dataclass(frozen=True)
class Labels(Layer):
    """Image labels (metadata in the image config); Flyte's default images carry two."""

    kind: ClassVar[str] = "labels"
    labels: tuple[tuple[str, str], ...]

    @classmethod
    def create(cls, labels: Mapping[str, str]) -> Labels:
        if not isinstance(labels, Mapping) or not labels:
            raise SpecError("labels must be a non-empty dict of str to str", argument="labels")
        items = []
        for key, value in labels.items():
            if not isinstance(key, str) or not _LABEL_KEY_RE.fullmatch(key):
                raise SpecError(f"labels: {key!r} is not a label key", argument="labels",
                                hint="e.g. 'org.opencontainers.image.source'")
            if not isinstance(value, str) or any(ch in value for ch in "\n\r\0"):
                raise SpecError(f"labels[{key!r}] must be a one-line string", argument="labels")
            items.append((key, value))
        return cls(tuple(items))


LAYER_TYPES: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (AptPackages, PipPackages, Requirements, Commands, EnvVars, Workdir, SourceFolder,
                SourceFile, DockerIgnore, CACertificates, Labels)
}


def _register_projects() -> None:
    from imagebuild_nb.spec.projects import PoetryProject, UVProject, UVScript

    for cls in (UVProject, PoetryProject, UVScript):
        LAYER_TYPES.setdefault(cls.kind, cls)


def layer_from_dict(data: Mapping[str, Any]) -> Layer:
    """Rebuild (and re-validate) a layer from :meth:`Layer.to_dict` output."""
    if not isinstance(data, Mapping) or "type" not in data:
        raise SpecError(f"a layer must be an object with a 'type', got {data!r}",
                        argument="layers")
    kind = data["type"]
    _register_projects()
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
