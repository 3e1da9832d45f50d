"""Receiving a build context: stream to a private temp file, verify digest and archive, then keep.

The upload is content addressed (``PUT /imagebuild/api/contexts/sha256:<hex>``): a client that
sends the same reproducible context twice uploads it once. Until the bytes match the digest
and the archive passes ``inspect_archive``, nothing is visible in the context store; a refused
upload leaves no file behind. A service killed mid-upload cannot clean up: the next start removes
what it left (``remove_partial_uploads``).

>>> upload = ContextUpload(Path("/tmp"), "sha256:" + "0" * 64, max_bytes=10)
>>> upload.write(b"x" * 11)
Traceback (most recent call last):
...
imagebuild_nb.service.archive.ArchiveTooLargeError: the context upload is larger than 10 bytes
>>> upload.abort()
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from imagebuild_nb.service.archive import (
    ArchiveLimits,
    ArchiveSummary,
    ArchiveTooLargeError,
    UnsafeArchiveError,
    inspect_archive,
)

PARTIAL_PREFIX = ".upload-"


def remove_partial_uploads(directory: Path) -> int:
    """Delete the temp files of uploads that never finished; how many. Call it at start only:
    the one service owning ``directory`` has no upload in progress then."""
    removed = 0
    for path in directory.glob(f"{PARTIAL_PREFIX}*"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


class ContextUpload:
    def __init__(self, directory: Path, digest: str, *, max_bytes: int) -> None:
        self.digest = digest
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()
        descriptor, name = tempfile.mkstemp(prefix=PARTIAL_PREFIX, dir=directory)
        self._path = Path(name)
        self._file = os.fdopen(descriptor, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise ArchiveTooLargeError(f"the context upload is larger than {self.max_bytes} bytes")
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self, destination: Path, limits: ArchiveLimits) -> ArchiveSummary:
        """Verify and move into place. Blocking (reads the archive): call it off the event loop."""
        try:
            self._file.close()
            actual = "sha256:" + self._hash.hexdigest()
            if actual != self.digest:
                raise UnsafeArchiveError(
                    f"the uploaded bytes have digest {actual}, not {self.digest} as in the URL"
                )
            with self._path.open("rb") as handle:
                summary = inspect_archive(handle, limits)
            os.replace(self._path, destination)
            return summary
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._path.unlink(missing_ok=True)
