"""Reading an untrusted tar with bounded memory: extended headers are sized before they are read.

The stdlib reads a PAX (``x``) or GNU long-name (``L``/``K``) header whole into memory, whatever
size it declares: 1.5 MB of gzip declaring a 1.5 GiB header took a service to 1.7 GB. Here the
declared size is checked first (per header and summed over the archive), chains of extended
headers are bounded, and the forms a build context never needs (global PAX headers, GNU sparse
files, whose maps the stdlib also reads unbounded) are refused before their content is read.

>>> import io
>>> info = tarfile.TarInfo("x"); info.type, info.size = tarfile.XHDTYPE, 10**9
>>> open_bounded(io.BytesIO(info.tobuf() + bytes(1024)), max_header_bytes=65536,
...              max_metadata_bytes=2**20)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
imagebuild_nb.service.bounded_tar.HeaderTooLargeError: ... declares 1000000000 bytes; ...
"""

from __future__ import annotations

import tarfile
from typing import IO, Any

_EXTENDED = (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
             tarfile.GNUTYPE_LONGLINK)
# A member has at most a PAX header, a long name and a long link name in front of it.
_MAX_CHAIN = 3


class HeaderTooLargeError(ValueError):
    """An extended header, or all of them together, exceed the bound."""


class RefusedHeaderError(ValueError):
    """A header a build context never needs: global PAX, GNU sparse, long header chains."""


class _Budget:
    def __init__(self, max_header_bytes: int, max_metadata_bytes: int) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_metadata_bytes = max_metadata_bytes
        self.used = 0
        self.depth = 0

    def spend(self, size: int, what: str) -> None:
        self.used += size
        if self.used > self.max_metadata_bytes:
            raise HeaderTooLargeError(
                f"the archive's names and headers exceed {self.max_metadata_bytes} bytes ({what})"
            )


class _BoundedTarInfo(tarfile.TarInfo):
    def _proc_member(self, tarfile_: tarfile.TarFile) -> Any:
        budget: _Budget = tarfile_._imagebuild_budget  # type: ignore[attr-defined]
        if self.type == tarfile.XGLTYPE:
            raise RefusedHeaderError(
                f"archive has a global PAX header at offset {self.offset}; build contexts "
                "never need one"
            )
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise RefusedHeaderError(f"archive member {self.name!r} is a GNU sparse file")
        if self.type not in _EXTENDED:
            return super()._proc_member(tarfile_)  # type: ignore[misc]  # private, no stub
        if self.size > budget.max_header_bytes:
            raise HeaderTooLargeError(
                f"archive header at offset {self.offset} declares {self.size} bytes; at most "
                f"{budget.max_header_bytes} are accepted"
            )
        budget.spend(self.size, f"header at offset {self.offset}")
        budget.depth += 1
        try:
            if budget.depth > _MAX_CHAIN:
                raise RefusedHeaderError(
                    f"archive has more than {_MAX_CHAIN} extended headers in a row at offset "
                    f"{self.offset}"
                )
            return super()._proc_member(tarfile_)  # type: ignore[misc]  # private, no stub
        finally:
            budget.depth -= 1

    def _proc_gnusparse_10(self, next: Any, pax_headers: Any, tarfile_: Any) -> None:
        # Its sparse map is read from the member's data, unbounded: refuse before reading.
        raise RefusedHeaderError(f"archive member {next.name!r} is a GNU sparse file")


class _BoundedTarFile(tarfile.TarFile):
    tarinfo = _BoundedTarInfo
    _imagebuild_limits = (0, 0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The first member is read inside TarFile.__init__: the budget must exist before.
        self._imagebuild_budget = _Budget(*self._imagebuild_limits)
        super().__init__(*args, **kwargs)


def open_bounded(fileobj: IO[bytes], *, max_header_bytes: int,
                 max_metadata_bytes: int) -> tarfile.TarFile:
    """Open a (possibly gzip/bz2/xz-compressed) tar for reading with bounded headers.

    Iterating it raises ``HeaderTooLargeError`` or ``RefusedHeaderError`` (both ValueErrors)
    before an over-sized or refused header's content is read; a member that comes back carries
    ``sparse`` only if its sparse map was small (callers refuse sparse members)."""
    cls: type[_BoundedTarFile] = type(
        "BoundedTarFile", (_BoundedTarFile,),
        {"_imagebuild_limits": (max_header_bytes, max_metadata_bytes)})
    return cls.open(fileobj=fileobj, mode="r:*")
