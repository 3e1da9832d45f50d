"""The immutable, fluent Image spec.

>>> img = (Image.from_debian_base(python_version="3.11", name="analysis",
...                               registry="localhost:5001")
...        .with_apt_packages("git")
...        .with_pip_packages("six")
...        .with_env_vars({"MODE": "prod"}))
>>> img.uri.startswith("localhost:5001/analysis:")
True
>>> img.with_workdir("/app") is not img
True
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagebuild_nb.errors import SpecError
from imagebuild_nb.spec import layers as L
from imagebuild_nb.spec.base import Base, DebianBase, DockerfileBase, RegistryBase, base_from_dict
from imagebuild_nb.spec.identity import Snapshot, snapshot
from imagebuild_nb.spec.reference import (
    ImageReference,
    validate_registry,
    validate_repository,
    validate_tag,
)

if TYPE_CHECKING:
    from imagebuild_nb.render.context import BuildContext
    from imagebuild_nb.settings import Settings

# Used when an image with layers was given no name.
DEFAULT_NAME = "imagebuild-nb"
CONTENT_TAG_LENGTH = 32
SERIAL_VERSION = 1
_PLATFORM_PARTS = 3


@dataclass(frozen=True)
class Image:
    """A container image described in Python. Every ``with_*`` returns a new Image.

    Build one with :meth:`from_debian_base`, :meth:`from_base` or :meth:`from_dockerfile`.
    ``uri``/``tag``/``spec_hash`` re-read referenced files on every access (a stat-keyed digest
    cache keeps that cheap), so an edited file gives a new tag at once.
    """

    base: Base
    name: str | None = None
    registry: str | None = None
    explicit_tag: str | None = None
    platform: str | None = None
    layers: tuple[L.Layer, ...] = ()

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def from_debian_base(cls, python_version: str = "3.11", *, name: str | None = None,
                         registry: str | None = None, tag: str | None = None,
                         platform: str | None = None) -> Image:
        """The official ``python:<version>-slim`` image (a mirror may serve it; see Settings).

        >>> Image.from_debian_base(python_version="3.12").uri
        'python:3.12-slim'
        """
        return cls._new(DebianBase.create(python_version), name, registry, tag, platform)

    @classmethod
    def from_base(cls, reference: str, *, name: str | None = None, registry: str | None = None,
                  tag: str | None = None, platform: str | None = None) -> Image:
        """Any image as the base; layers may be added directly.

        >>> Image.from_base("localhost:5001/base:1", name="x", registry="localhost:5001"
        ...                 ).with_commands(["true"]).uri.startswith("localhost:5001/x:")
        True
        """
        return cls._new(RegistryBase.create(reference), name, registry, tag, platform)

    @classmethod
    def from_dockerfile(cls, path: str | os.PathLike[str], *, name: str | None = None,
                        registry: str | None = None, context: str | os.PathLike[str] | None = None,
                        build_args: Mapping[str, str] | None = None, tag: str | None = None,
                        platform: str | None = None) -> Image:
        """A Dockerfile; the build context is its folder unless ``context`` is given.

        The tag covers the Dockerfile, the (.dockerignore-filtered) context and the build args.
        """
        return cls._new(DockerfileBase.create(path, context, build_args), name, registry, tag,
                        platform)

    @classmethod
    def _new(cls, base: Base, name: str | None, registry: str | None, tag: str | None,
             platform: str | None) -> Image:
        if name is not None:
            if isinstance(name, str) and ("/" in name and ("." in name.split("/")[0]
                                                             or ":" in name.split("/")[0])):
                raise SpecError(f"name={name!r} contains a registry host", argument="name",
                                hint="pass the host separately: name='app', "
                                "registry='localhost:5001'")
            validate_repository(name, argument="name")
        if registry is not None:
            validate_registry(registry, argument="registry")
        if tag is not None:
            validate_tag(tag, argument="tag")
        if platform is not None:
            _validate_platform(platform)
        return cls(base=base, name=name, registry=registry, explicit_tag=tag, platform=platform)

    # -- layers ------------------------------------------------------------------------------

    def _add(self, layer: L.Layer) -> Image:
        if isinstance(self.base, DockerfileBase):
            raise SpecError("layers cannot be added to an Image built from a Dockerfile",
                            argument="self", hint="add the step to the Dockerfile, or start "
                            "from Image.from_base(...) and add layers there")
        return dataclasses.replace(self, layers=self.layers + (layer,))

    def with_apt_packages(self, *packages: str) -> Image:
        """``apt-get install`` the packages (lists cleaned): ``.with_apt_packages("git", "jq")``."""
        return self._add(L.AptPackages.create(packages))

    def with_pip_packages(self, *packages: str, index_url: str | None = None,
                          extra_index_urls: Sequence[str] | str | None = (), pre: bool = False,
                          extra_args: Sequence[str] | str | None = ()) -> Image:
        """``pip install`` into the image's virtual environment (/opt/venv, on PATH).

        >>> _ = Image.from_debian_base().with_pip_packages("pandas==2.2.3", pre=True)
        """
        return self._add(L.PipPackages.create(packages, index_url, extra_index_urls, pre,
                                              extra_args))

    def with_requirements(self, path: str | os.PathLike[str]) -> Image:
        """``pip install -r`` a requirements file (its content counts for the tag)."""
        return self._add(L.Requirements.create(path))

    def with_commands(self, commands: Sequence[str]) -> Image:
        """One ``RUN`` per shell command, in order: ``.with_commands(["make", "make test"])``."""
        return self._add(L.Commands.create(commands))

    def with_env_vars(self, env: Mapping[str, str]) -> Image:
        """Set environment variables; values are kept verbatim (no ``$`` expansion)."""
        return self._add(L.EnvVars.create(env))

    def with_workdir(self, path: str) -> Image:
        """Set the working directory (an absolute path) for later steps and at runtime."""
        return self._add(L.Workdir.create(path))

    def with_source_folder(self, src: str | os.PathLike[str], dst: str = ".") -> Image:
        """Copy a folder's contents to ``dst`` (relative to the workdir unless absolute).

        Junk (.git, __pycache__, *.pyc, .ipynb_checkpoints, .venv) is skipped; the folder's own
        .dockerignore and rules from :meth:`with_dockerignore` apply.
        """
        return self._add(L.SourceFolder.create(src, dst))

    def with_source_file(self, src: str | os.PathLike[str], dst: str = ".") -> Image:
        """Copy one file; a ``dst`` ending in '/' (or '.') keeps the file's name."""
        return self._add(L.SourceFile.create(src, dst))

    def with_dockerignore(self, path: str | os.PathLike[str]) -> Image:
        """Apply a .dockerignore file's rules to every source folder of this image."""
        return self._add(L.DockerIgnore.create(path))

    def with_registry(self, registry: str | None) -> Image:
        """The same spec, pushed to ``registry`` (None: kept in the local engine).

        The content tag does not change: registry and name are not part of the identity.
        """
        if registry is not None:
            validate_registry(registry, argument="registry")
        return dataclasses.replace(self, registry=registry)

    def with_ca_certificates(self, *paths: str | os.PathLike[str]) -> Image:
        """Trust extra CA certificates (PEM) in later RUN steps and at runtime.

        Put it first when a TLS-inspecting proxy sits between the build and PyPI/Debian:
        ``.with_ca_certificates("/etc/ssl/certs/ca-certificates.crt")``.
        """
        return self._add(L.CACertificates.create(paths))

    # -- identity ----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Resolve the spec against the files now (one walk): hash, document, file lists."""
        return snapshot(self)

    @property
    def spec_hash(self) -> str:
        """sha256 hex of the canonical spec document (recorded as an image label)."""
        return self.snapshot().spec_hash

    @property
    def is_default_base(self) -> bool:
        """An unmodified base image with no name of its own: nothing to build."""
        return not self.layers and self.name is None and not isinstance(self.base, DockerfileBase)

    @property
    def tag(self) -> str:
        """The explicit tag if one was given, else the content tag."""
        if self.explicit_tag is not None:
            return self.explicit_tag
        if self.is_default_base:
            return ImageReference.parse(self.base.reference).tag or "latest"  # type: ignore[union-attr]
        return self.spec_hash[:CONTENT_TAG_LENGTH]

    @property
    def reference(self) -> ImageReference:
        if self.is_default_base and self.explicit_tag is None and self.registry is None:
            return ImageReference.parse(self.base.reference)  # type: ignore[union-attr]
        repository = self.name or (
            ImageReference.parse(self.base.reference).repository  # type: ignore[union-attr]
            if self.is_default_base else DEFAULT_NAME)
        host = None
        if self.registry:
            host, _, namespace = self.registry.partition("/")
            if namespace:
                repository = f"{namespace}/{repository}"
        return ImageReference(host, repository, self.tag)

    @property
    def uri(self) -> str:
        """``registry/name:tag``, e.g. ``localhost:5001/analysis:3f2a...``."""
        return str(self.reference)

    # -- rendering ---------------------------------------------------------------------------

    def build_context(self, *, buildkit: bool = True,
                      settings: Settings | None = None) -> BuildContext:
        """The Dockerfile and the files of the build context (see imagebuild_nb.render)."""
        from imagebuild_nb.render.context import build_context

        return build_context(self, buildkit=buildkit, settings=settings)

    def dockerfile(self, *, buildkit: bool = True, settings: Settings | None = None) -> str:
        return self.build_context(buildkit=buildkit, settings=settings).dockerfile

    # -- serialization -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (no file contents: those travel in the build context)."""
        return {
            "version": SERIAL_VERSION,
            "base": self.base.to_dict(),
            "name": self.name,
            "registry": self.registry,
            "tag": self.explicit_tag,
            "platform": self.platform,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Image:
        """Rebuild an Image from :meth:`to_dict` output, validating everything again."""
        from imagebuild_nb.spec.layers import layer_from_dict

        if not isinstance(data, Mapping):
            raise SpecError("an image spec must be a JSON object", argument="data")
        allowed = {"version", "base", "name", "registry", "tag", "platform", "layers"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise SpecError(f"unknown fields in image spec: {unknown}", argument="data",
                            hint=f"allowed fields: {sorted(allowed)}")
        if data.get("version") != SERIAL_VERSION:
            raise SpecError(f"unsupported image spec version {data.get('version')!r}",
                            argument="version", hint=f"this library reads version {SERIAL_VERSION}")
        image = cls._new(base_from_dict(data.get("base")),  # type: ignore[arg-type]
                         data.get("name"), data.get("registry"), data.get("tag"),
                         data.get("platform"))
        layers = data.get("layers") or []
        if not isinstance(layers, list):
            raise SpecError("layers must be a list", argument="layers")
        return dataclasses.replace(image, layers=tuple(layer_from_dict(item) for item in layers))

    # -- display -----------------------------------------------------------------------------

    def __repr__(self) -> str:
        from imagebuild_nb.spec.display import image_text

        return image_text(self)

    def _repr_html_(self) -> str:
        from imagebuild_nb.spec.display import image_html

        return image_html(self)


def _validate_platform(platform: str) -> None:
    parts = platform.split("/") if isinstance(platform, str) else []
    if not (2 <= len(parts) <= _PLATFORM_PARTS) or not all(p.isalnum() for p in parts):
        raise SpecError(f"platform={platform!r} is not a platform", argument="platform",
                        hint="use os/arch[/variant], e.g. 'linux/amd64' or 'linux/arm64/v8'")
