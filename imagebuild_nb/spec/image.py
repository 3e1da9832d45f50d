"""The immutable, fluent Image spec: its fields, constructors, identity and serialization.

The ``with_*`` methods that add layers live in :mod:`imagebuild_nb.spec.layer_methods`
(a mixin of :class:`Image`).

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
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagebuild_nb.errors import SpecError
from imagebuild_nb.spec import layers as L
from imagebuild_nb.spec.base import Base, DebianBase, DockerfileBase, RegistryBase, base_from_dict
from imagebuild_nb.spec.identity import Snapshot, snapshot
from imagebuild_nb.spec.layer_methods import LayerMethods
from imagebuild_nb.spec.reference import (
    ImageReference,
    validate_name,
    validate_registry,
    validate_tag,
)

if TYPE_CHECKING:
    from imagebuild_nb.render.context import BuildContext
    from imagebuild_nb.settings import Settings

PlatformArg = str | tuple[str, ...] | None
# Used when an image with layers was given no name.
DEFAULT_NAME = "imagebuild-nb"
CONTENT_TAG_LENGTH = 32
SERIAL_VERSION = 1
_PLATFORM_PARTS = 3


@dataclass(frozen=True)
class Image(LayerMethods):
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
    # What this spec was converted from (e.g. a flyte.Image), shown in dry runs and results;
    # not part of the identity or of equality.
    origin: str | None = dataclasses.field(default=None, compare=False, repr=False)

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def from_debian_base(cls, python_version: tuple[int, int] | str | None = None,
                         flyte_version: str | None = None, install_flyte: bool = False,
                         registry: str | None = None, registry_secret: object = None,
                         name: str | None = None, platform: PlatformArg = None, *,
                         tag: str | None = None) -> Image:
        """The official ``python:<version>-slim`` image (a mirror may serve it; see Settings).

        Flyte's signature. ``python_version`` is ``(3, 12)`` or ``"3.12"``; by default the
        version of the Python running this code. ``install_flyte=True`` adds
        ``pip install flyte`` (``flyte_version`` pins it). ``registry_secret`` is accepted for
        Flyte's sake: credentials come from the Docker CLI's config (``docker login``).

        >>> Image.from_debian_base(python_version="3.12").uri
        'python:3.12-slim'
        >>> Image.from_debian_base(python_version=(3, 12)).uri
        'python:3.12-slim'
        """
        image = cls._new(DebianBase.create(_python_version(python_version)), name, registry, tag,
                         platform)
        if flyte_version is not None and not isinstance(flyte_version, str):
            raise SpecError("flyte_version must be a string such as '2.12.1'",
                            argument="flyte_version")
        if install_flyte:
            version = (flyte_version or "").lstrip("v")
            image = image.with_pip_packages(f"flyte=={version}" if version else "flyte")
        return image

    @classmethod
    def from_base(cls, image_uri: str, *, name: str | None = None, registry: str | None = None,
                  tag: str | None = None, platform: PlatformArg = None) -> Image:
        """Any image as the base; layers may be added directly.

        >>> Image.from_base("localhost:5001/base:1", name="x", registry="localhost:5001"
        ...                 ).with_commands(["true"]).uri.startswith("localhost:5001/x:")
        True
        """
        return cls._new(RegistryBase.create(image_uri), name, registry, tag, platform)

    @classmethod
    def from_dockerfile(cls, file: str | os.PathLike[str], registry: str | None = None,
                        name: str | None = None, platform: PlatformArg = None, *,
                        context: str | os.PathLike[str] | None = None,
                        build_args: Mapping[str, str] | None = None,
                        tag: str | None = None) -> Image:
        """A Dockerfile; the build context is its folder unless ``context`` is given.

        The tag covers the Dockerfile, the (.dockerignore-filtered) context and the build args.
        """
        return cls._new(DockerfileBase.create(file, context, build_args), name, registry, tag,
                        platform)

    @classmethod
    def from_uv_script(cls, script: str | os.PathLike[str], *, name: str,
                       registry: str | None = None, registry_secret: object = None,
                       python_version: tuple[int, int] | str | None = None,
                       index_url: str | None = None,
                       extra_index_urls: Sequence[str] | str | None = None, pre: bool = False,
                       extra_args: Sequence[str] | str | None = None,
                       platform: PlatformArg = None, secret_mounts: object = None,
                       tag: str | None = None) -> Image:
        """The Debian/Python base plus the dependencies the script declares (PEP 723)::

            # /// script
            # dependencies = ["polars"]
            # ///
        """
        from imagebuild_nb.spec.projects import UVScript

        base = cls.from_debian_base(python_version, registry=registry, name=name,
                                    platform=platform, tag=tag)
        return base._add(UVScript.create(script, index_url=index_url,
                                         extra_index_urls=extra_index_urls, pre=pre,
                                         extra_args=extra_args, secret_mounts=secret_mounts))

    @classmethod
    def from_environment(cls, **options: Any) -> Image:
        """Freeze the running Python environment (e.g. a notebook's kernel): the same Python
        minor version, every distribution pinned as a lock; ``only_imported=True`` keeps what
        imported modules need. See :func:`imagebuild_nb.freeze.from_environment`."""
        from imagebuild_nb.freeze import from_environment

        return from_environment(**options)

    def clone(self, registry: str | None = None, registry_secret: object = None,
              name: str | None = None, base_image: str | None = None,
              python_version: tuple[int, int] | str | None = None,
              addl_layer: L.Layer | None = None, extendable: bool | None = None,
              platform: PlatformArg = None, *, tag: str | None = None) -> Image:
        """A copy with another registry, name, base, Python version, platform or one more layer.

        Flyte's signature; ``None`` keeps the current value. Every Image here can take layers
        (``extendable`` is accepted and changes nothing) except one built from a Dockerfile.
        """
        image = self
        if base_image is not None or python_version is not None:
            if isinstance(self.base, DockerfileBase):
                raise SpecError("a Dockerfile image has no base to replace", argument="base_image",
                                hint="edit the Dockerfile's FROM line")
            base: Base = self.base
            if base_image is not None:
                base = RegistryBase.create(base_image)
            elif isinstance(base, DebianBase):
                base = DebianBase.create(_python_version(python_version))
            image = dataclasses.replace(image, base=base)
        changed = Image._new(image.base, name if name is not None else image.name,
                             registry if registry is not None else image.registry,
                             tag if tag is not None else image.explicit_tag,
                             platform if platform is not None else image.platform)
        image = dataclasses.replace(image, name=changed.name, registry=changed.registry,
                                    explicit_tag=changed.explicit_tag, platform=changed.platform)
        if addl_layer is not None:
            if not isinstance(addl_layer, L.Layer):
                raise SpecError(f"addl_layer must be a layer of imagebuild_nb, got "
                                f"{type(addl_layer).__name__}", argument="addl_layer",
                                hint="use the with_* methods, or imagebuild_nb.as_image() on a "
                                     "flyte.Image")
            image = image._add(addl_layer)
        return image

    def with_registry(self, registry: str | None) -> Image:
        """The same spec, pushed to ``registry`` (None: kept in the local engine).

        The content tag does not change: registry and name are not part of the identity.
        """
        if registry is not None:
            validate_registry(registry, argument="registry")
        return dataclasses.replace(self, registry=registry)

    @classmethod
    def _new(cls, base: Base, name: str | None, registry: str | None, tag: str | None,
             platform: PlatformArg) -> Image:
        if name is not None:
            validate_name(name, argument="name")  # Docker's rules: 'localhost/x' names a host
        if registry is not None:
            validate_registry(registry, argument="registry")
        if tag is not None:
            validate_tag(tag, argument="tag")
        platform = canonical_platform(platform)
        return cls(base=base, name=name, registry=registry, explicit_tag=tag, platform=platform)

    # -- layers (the with_* methods are in LayerMethods) --------------------------------------

    def _add(self, layer: L.Layer) -> Image:
        if isinstance(self.base, DockerfileBase):
            raise SpecError("layers cannot be added to an Image built from a Dockerfile",
                            argument="self", hint="add the step to the Dockerfile, or start "
                            "from Image.from_base(...) and add layers there")
        return dataclasses.replace(self, layers=self.layers + (layer,))

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
    def platforms(self) -> tuple[str, ...]:
        """The requested platforms (``platform`` holds them as one string, comma-joined)."""
        return tuple(self.platform.split(",")) if self.platform else ()

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
        return self.reference_for(None)

    def reference_for(self, snap: Snapshot | None) -> ImageReference:
        """The reference, with the content tag taken from ``snap`` (one walk per call)."""
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
        tag = self.tag if snap is None or self.explicit_tag is not None or self.is_default_base \
            else snap.spec_hash[:CONTENT_TAG_LENGTH]
        return ImageReference(host, repository, tag)

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
            **({"origin": self.origin} if self.origin else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Image:
        """Rebuild an Image from :meth:`to_dict` output, validating everything again."""
        from imagebuild_nb.spec.layers import layer_from_dict

        if not isinstance(data, Mapping):
            raise SpecError("an image spec must be a JSON object", argument="data")
        allowed = {"version", "base", "name", "registry", "tag", "platform", "layers", "origin"}
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
        origin = data.get("origin")
        return dataclasses.replace(image, layers=tuple(layer_from_dict(item) for item in layers),
                                   origin=origin if isinstance(origin, str) else None)

    # -- display -----------------------------------------------------------------------------

    def __repr__(self) -> str:
        from imagebuild_nb.spec.display import image_text

        return image_text(self)

    def _repr_html_(self) -> str:
        from imagebuild_nb.spec.display import image_html

        return image_html(self)


def _python_version(value: tuple[int, int] | str | None) -> str:
    """Flyte's forms: ``(3, 12)``, ``"3.12"``; None is the running interpreter's version."""
    if value is None:
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}.{value[1]}"
    if isinstance(value, str):
        return value
    raise SpecError(f"python_version={value!r} is not a Python version",
                    argument="python_version", hint="e.g. python_version=(3, 12) or '3.12'")


def canonical_platform(platform: PlatformArg) -> str | None:
    """The platform set as one canonical string: a str (``"linux/amd64"``, or the CLI form
    ``"linux/amd64,linux/arm64"``) or Flyte's tuple; sorted and without repeats, so the content
    tag covers the set, not the order. Several platforms build one multi-platform index."""
    if platform is None:
        return None
    items = list(platform) if isinstance(platform, (tuple, list)) else (
        platform.split(",") if isinstance(platform, str) else [platform])
    if not items:
        raise SpecError("platform=() names no platform", argument="platform",
                        hint="e.g. platform='linux/amd64' or ('linux/amd64', 'linux/arm64')")
    for item in items:
        _validate_platform(item)
    return ",".join(sorted(set(items)))


def _validate_platform(platform: str) -> None:
    parts = platform.split("/") if isinstance(platform, str) else []
    if not (2 <= len(parts) <= _PLATFORM_PARTS) or not all(p.isalnum() for p in parts):
        raise SpecError(f"platform={platform!r} is not a platform", argument="platform",
                        hint="use os/arch[/variant], e.g. 'linux/amd64' or 'linux/arm64/v8'")
