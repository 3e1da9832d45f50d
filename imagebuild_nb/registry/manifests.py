"""Manifest media types, and platforms as OCI indexes describe them.

>>> Platform.parse("linux/arm64").matches(Platform("linux", "arm64", "v8"))
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagebuild_nb.errors import SpecError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

# All four, as separate Accept headers: without the index types an OCI index looks "missing",
# without any a registry may down-convert to schema1 with another digest.
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})

_DEFAULT_VARIANTS = {"arm64": "v8"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().lower().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise SpecError(
                f"platform={text!r} is not a platform",
                argument="platform",
                hint="write os/architecture[/variant], e.g. 'linux/amd64' or 'linux/arm/v7'",
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Platform | None:
        os_name, arch = data.get("os"), data.get("architecture")
        if not isinstance(os_name, str) or not isinstance(arch, str):
            return None
        variant = data.get("variant")
        return cls(os_name, arch, variant if isinstance(variant, str) and variant else None)

    def matches(self, other: Platform) -> bool:
        """``self`` is the wanted platform; a variant is compared only when wanted."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        if self.variant is None:
            return True
        have = other.variant or _DEFAULT_VARIANTS.get(other.architecture)
        return self.variant == have

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Descriptor:
        platform = data.get("platform")
        return cls(
            media_type=str(data.get("mediaType", "")),
            digest=str(data["digest"]),
            size=int(data.get("size", 0)),
            platform=Platform.from_json(platform) if isinstance(platform, dict) else None,
        )


def index_entries(manifest: Mapping[str, Any]) -> tuple[Descriptor, ...]:
    """The image manifests of an index, without attestation entries (``unknown/unknown``)."""
    entries = []
    for raw in manifest.get("manifests") or ():
        if not isinstance(raw, dict) or "digest" not in raw:
            continue
        descriptor = Descriptor.from_json(raw)
        if descriptor.platform and descriptor.platform.os == "unknown":
            continue
        entries.append(descriptor)
    return tuple(entries)


def config_descriptor(manifest: Mapping[str, Any]) -> Descriptor | None:
    config = manifest.get("config")
    if isinstance(config, dict) and "digest" in config:
        return Descriptor.from_json(config)
    return None
