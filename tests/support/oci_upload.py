"""Push images and indexes straight through the registry API (blobs, manifests, an index)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_TYPES = (OCI_MANIFEST, "application/vnd.oci.image.config.v1+json",
             "application/vnd.oci.image.layer.v1.tar+gzip")
DOCKER_TYPES = ("application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(content: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("proof")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


class Uploader:
    """``Uploader(client, "http://localhost:5001")``; the client carries any auth needed."""

    def __init__(self, client: httpx.Client, base_url: str) -> None:
        self.client = client
        self.base = base_url.rstrip("/")

    def blob(self, repository: str, data: bytes) -> dict[str, object]:
        digest = _digest(data)
        started = self.client.post(f"{self.base}/v2/{repository}/blobs/uploads/")
        started.raise_for_status()
        location = started.headers["Location"]
        if location.startswith("/"):
            location = self.base + location
        # Keep the upload state in the Location's query: passing params= would replace it.
        target = httpx.URL(location).copy_merge_params({"digest": digest})
        done = self.client.put(target, content=data,
                               headers={"Content-Type": "application/octet-stream"})
        done.raise_for_status()
        return {"digest": digest, "size": len(data)}

    def manifest(self, repository: str, reference: str, media_type: str,
                 data: dict[str, object]) -> str:
        body = json.dumps(data).encode()
        response = self.client.put(f"{self.base}/v2/{repository}/manifests/{reference}",
                                   content=body, headers={"Content-Type": media_type})
        response.raise_for_status()
        return _digest(body)

    def image(self, repository: str, reference: str, *, architecture: str = "amd64",
              labels: dict[str, str] | None = None, variant: str | None = None,
              docker_media_types: bool = False) -> dict[str, object]:
        """Upload a one-layer OCI image (or Docker v2 schema 2 with ``docker_media_types``);
        returns its descriptor (digest, size, platform)."""
        types = DOCKER_TYPES if docker_media_types else OCI_TYPES
        layer = self.blob(repository, _layer(f"{architecture} {reference}".encode()))
        config_data = {"architecture": architecture, "os": "linux",
                       "config": {"Labels": labels or {}},
                       "rootfs": {"type": "layers", "diff_ids": []}}
        if variant:
            config_data["variant"] = variant
        config = self.blob(repository, json.dumps(config_data).encode())
        manifest = {
            "schemaVersion": 2, "mediaType": types[0],
            "config": {"mediaType": types[1], **config},
            "layers": [{"mediaType": types[2], **layer}],
        }
        body = json.dumps(manifest).encode()
        digest = self.manifest(repository, reference, types[0], manifest)
        platform = {"os": "linux", "architecture": architecture}
        if variant:
            platform["variant"] = variant
        return {"mediaType": types[0], "digest": digest, "size": len(body), "platform": platform}

    def index(self, repository: str, tag: str, architectures: list[str], *,
              labels: dict[str, str] | None = None) -> str:
        """Upload one image per architecture, then an OCI index over them under ``tag``."""
        entries = [self.image(repository, _digest(f"{tag}-{arch}".encode()).split(":")[1][:20],
                              architecture=arch, labels=labels) for arch in architectures]
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        return self.manifest(repository, tag, OCI_INDEX, index)

    def delete(self, repository: str, digest: str) -> None:
        response = self.client.delete(f"{self.base}/v2/{repository}/manifests/{digest}")
        response.raise_for_status()
