"""A build context of one Dockerfile as an uploaded tar, and its digest (the service's and
the farm's stores keep contexts by this digest)."""

from __future__ import annotations

import hashlib
import io
import tarfile


def context_tar(dockerfile: str) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = dockerfile.encode()
        member = tarfile.TarInfo("Dockerfile")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    raw = buffer.getvalue()
    return raw, "sha256:" + hashlib.sha256(raw).hexdigest()
