"""Assembling a multi-platform image: one index (manifest list) over pushed per-platform images.

The Docker engine's classic image store holds one platform per tag, so a two-platform build
pushes each platform's image on its own, then this module PUTs an index naming them (by digest,
with their platform) under the one tag, through the project's registry client (the same hosts,
TLS, proxies and credentials as the existence check).

The index takes the family of its entries: a Docker manifest list over Docker v2 manifests
(what ``docker push`` writes), an OCI index over OCI manifests.

>>> body, media_type = index_document([IndexEntry("linux/arm64", "sha256:" + "a" * 64, 10,
...     "application/vnd.oci.image.manifest.v1+json")])
>>> media_type, json.loads(body)["manifests"][0]["platform"]
('application/vnd.oci.image.index.v1+json', {'architecture': 'arm64', 'os': 'linux'})
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from imagebuild_nb.errors import RegistryError
from imagebuild_nb.registry.client import RegistryClient
from imagebuild_nb.registry.manifests import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    OCI_INDEX,
    Platform,
    config_descriptor,
    index_entries,
)
from imagebuild_nb.spec.reference import ImageReference


@dataclass(frozen=True)
class IndexEntry:
    """One platform's image manifest, as the index names it."""

    platform: str
    digest: str
    size: int
    media_type: str


def index_document(entries: Sequence[IndexEntry]) -> tuple[bytes, str]:
    """The index body and its media type; entries keep their order."""
    docker = all(entry.media_type == DOCKER_MANIFEST for entry in entries)
    media_type = DOCKER_LIST if docker else OCI_INDEX
    manifests = []
    for entry in entries:
        platform = Platform.parse(entry.platform)
        described: dict[str, str] = {"architecture": platform.architecture, "os": platform.os}
        if platform.variant:
            described["variant"] = platform.variant
        manifests.append({"mediaType": entry.media_type, "digest": entry.digest,
                          "size": entry.size, "platform": described})
    document = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    return json.dumps(document, indent=2, sort_keys=True).encode(), media_type


async def describe(client: RegistryClient, ref: ImageReference, platform: str,
                   reference: str) -> IndexEntry:
    """The entry for the image manifest ``reference`` (a tag or digest in ``ref``'s repo)."""
    manifest = await client.get_manifest(ref, reference)
    if manifest is None:
        raise RegistryError(f"{ref.repository}@{reference} ({platform}) is not in the registry",
                            reference=str(ref), status_code=404)
    if manifest.media_type in INDEX_TYPES:
        raise RegistryError(f"{ref.repository}@{reference} ({platform}) is an index, not an image",
                            reference=str(ref))
    # The index must not claim a platform its image is not for (a builder that ignored the
    # platform would otherwise go unnoticed until the job starts on the other architecture).
    descriptor = config_descriptor(manifest.json())
    have = Platform.from_json(await client.get_blob_json(ref, descriptor.digest)) \
        if descriptor else None
    if have is None or not Platform.parse(platform).matches(have):
        raise RegistryError(f"{ref.repository}@{reference} was built for {have or 'no platform'}, "
                            f"not {platform}", reference=str(ref))
    return IndexEntry(platform, manifest.digest, len(manifest.body), manifest.media_type)


async def push_index(client: RegistryClient, ref: ImageReference,
                     images: Sequence[tuple[str, str]]) -> tuple[str, tuple[IndexEntry, ...]]:
    """PUT an index under ``ref`` over ``images`` ((platform, tag or digest) pairs, all in
    ``ref``'s repository); returns the index digest and its entries."""
    entries = tuple([await describe(client, ref, platform, reference)
                     for platform, reference in images])
    body, media_type = index_document(entries)
    digest = await client.put_manifest(ref, body, media_type)
    return digest, entries


async def platform_digests(client: RegistryClient, ref: ImageReference) -> dict[str, str]:
    """``{platform: image digest}`` of the index under ``ref`` (empty for a single image)."""
    manifest = await client.get_manifest(ref)
    if manifest is None or manifest.media_type not in INDEX_TYPES:
        return {}
    return {str(entry.platform): entry.digest
            for entry in index_entries(manifest.json()) if entry.platform}
