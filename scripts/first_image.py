"""Build one real image on the local Debian/python base, push it, and find it by a manifest HEAD."""

from __future__ import annotations

import io
import sys

import docker
import httpx

REGISTRY = "localhost:5001"
BASE = f"{REGISTRY}/library/python:3.11-slim"
NAME = f"{REGISTRY}/quickstart/hello"
DOCKERFILE = f"FROM {BASE}\nRUN python3 -c \"print('hello from imagebuild-nb')\" > /hello.txt\n"


def main() -> int:
    client = docker.from_env()
    for record in client.api.build(
        fileobj=io.BytesIO(DOCKERFILE.encode()), tag=f"{NAME}:latest", rm=True, forcerm=True, decode=True
    ):
        if "error" in record:
            print(f"build failed: {record['error']}", file=sys.stderr)
            return 1
        print(record.get("stream", ""), end="")
    digest = None
    for record in client.api.push(NAME, tag="latest", stream=True, decode=True):
        if "error" in record:
            print(f"push failed: {record['error']}", file=sys.stderr)
            return 1
        digest = record.get("aux", {}).get("Digest", digest)
    head = httpx.head(
        f"http://{REGISTRY}/v2/quickstart/hello/manifests/latest",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    print(f"\nimage:  {NAME}:latest\ndigest: {digest}\nregistry HEAD: {head.status_code} "
          f"{head.headers.get('Docker-Content-Digest')}")
    return 0 if head.headers.get("Docker-Content-Digest") == digest else 1


if __name__ == "__main__":
    sys.exit(main())
