"""The build context of an Image: Dockerfile text plus the sorted list of files to send.

Layout of the tar for a spec-built image (no user file can collide with ``Dockerfile``)::

    Dockerfile
    layers/<index>/...        the files of layer <index> (source folder contents, a file, ...)
    build-ca/bundle.crt       BuildKit: the CA bundle mounted into RUN steps
    build-ca/apt.conf         (Settings.extra_ca_files; not part of the image or its identity,
                              see render.build_ca)

For ``Image.from_dockerfile`` the user's (filtered) context is the tar root, so their COPY
lines work unchanged, and the Dockerfile (with the spec-hash LABEL appended) is added under
``.imagebuild-nb/Dockerfile`` (another name if the user's context already has that one).

>>> from imagebuild_nb.spec.image import Image
>>> ctx = Image.from_base("busybox:1.36", name="demo").with_commands(["true"]).build_context()
>>> ctx.dockerfile_path, [e.path for e in ctx.entries]
('Dockerfile', ['Dockerfile'])
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from imagebuild_nb.labels import SPEC_HASH_LABEL
from imagebuild_nb.render import build_ca
from imagebuild_nb.render import dockerfile as df
from imagebuild_nb.render.tar import ContextEntry, TarStream, iter_tar, write_tar
from imagebuild_nb.spec import layers as L
from imagebuild_nb.spec.base import DockerfileBase, mirrored
from imagebuild_nb.spec.files import TreeEntry
from imagebuild_nb.spec.identity import Snapshot

if TYPE_CHECKING:
    from imagebuild_nb.settings import Settings
    from imagebuild_nb.spec.image import Image

DOCKERFILE = "Dockerfile"
DOCKERFILE_DIR = ".imagebuild-nb"


@dataclass(frozen=True)
class BuildContext:
    """Everything a builder needs: Dockerfile, context entries, tags, args and labels.

    >>> # ctx = img.build_context(); client.api.build(fileobj=ctx.tar_stream(),
    >>> #     custom_context=True, dockerfile=ctx.dockerfile_path, tag=ctx.uri, ...)
    """

    uri: str
    spec_hash: str
    dockerfile: str
    dockerfile_path: str
    entries: tuple[ContextEntry, ...]
    base_image: str | None
    buildkit: bool
    platform: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def files(self) -> list[ContextEntry]:
        return [entry for entry in self.entries if entry.kind == "file"]

    @property
    def total_size(self) -> int:
        return sum(entry.size for entry in self.entries)

    def iter_tar(self) -> Iterator[bytes]:
        return iter_tar(self.entries)

    def tar_stream(self) -> TarStream:
        return TarStream(self.entries)

    def write_tar(self, fileobj: IO[bytes]) -> int:
        return write_tar(self.entries, fileobj)

    def summary(self) -> dict[str, Any]:
        """What a dry run reports: no file contents, just paths, sizes and digests."""
        return {
            "uri": self.uri,
            "spec_hash": self.spec_hash,
            "base_image": self.base_image,
            "dockerfile_path": self.dockerfile_path,
            "files": len(self.files),
            "bytes": self.total_size,
            "entries": [[e.path, e.kind, e.size, e.digest] for e in self.entries],
        }


def _from_tree(prefix: str, entries: tuple[TreeEntry, ...]) -> list[ContextEntry]:
    head = f"{prefix}/" if prefix else ""
    return [ContextEntry(head + e.path, e.kind, e.source, e.size, e.digest, e.executable,
                         e.linkname, root=_walked_root(e)) for e in entries]


def _walked_root(entry: TreeEntry) -> str | None:
    """The folder a walked file is below (its ``path`` is its place there), so the tar opens
    the rest following no link; None for a file the user named or a renamed one."""
    tail = "/" + entry.path
    if entry.kind != "file" or not entry.source.endswith(tail):
        return None
    return entry.source[: -len(tail)] or "/"


def _parents(paths: list[str]) -> list[ContextEntry]:
    seen: set[str] = set()
    for path in paths:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            seen.add("/".join(parts[:i]))
    return [ContextEntry.directory(path) for path in sorted(seen)]


def _sorted(entries: list[ContextEntry]) -> tuple[ContextEntry, ...]:
    present = {e.path for e in entries}
    parents = [p for p in _parents([e.path for e in entries]) if p.path not in present]
    return tuple(sorted(entries + parents, key=lambda entry: entry.path))


def build_context(image: Image, *, buildkit: bool = True,
                  settings: Settings | None = None, snap: Snapshot | None = None) -> BuildContext:
    """Resolve ``image`` against the files now and lay out its build context (pure)."""
    snap = snap or image.snapshot()
    labels = {SPEC_HASH_LABEL: snap.spec_hash}
    common = dict(uri=str(image.reference_for(snap)), spec_hash=snap.spec_hash, buildkit=buildkit,
                  platform=image.platform, labels=labels)
    if isinstance(image.base, DockerfileBase):
        return _dockerfile_context(image.base, snap, common)
    extra_ca = tuple(settings.extra_ca_files) if settings else ()
    if extra_ca and not buildkit:
        # The legacy builder cannot mount: the CA files become the spec's first layer, in the
        # image and in its tag (the engine's plan places them the same way).
        placed = build_ca.with_build_ca(image, extra_ca)
        if placed is not image:
            return build_context(placed, buildkit=False, settings=settings)
    mirror = settings.base_image_mirror if settings else None
    base_image = mirrored(image.base.reference, mirror)
    items: list[df.RenderLayer] = []
    entries: list[ContextEntry] = []
    mounted_ca = bool(extra_ca) and buildkit
    if mounted_ca:  # bind-mounted into each RUN step, never copied: not in the image or tag
        entries += build_ca.context_entries(extra_ca, image)
    for index, (layer, files) in enumerate(zip(image.layers, snap.layer_files, strict=True)):
        prefix = f"layers/{index}"
        if isinstance(layer, L.CACertificates):
            files = tuple(_renamed(files, [f"{k}.crt" for k in range(len(files))]))
        if isinstance(layer, L.DockerIgnore):
            files = ()
        if isinstance(layer, (L.Requirements, L.SourceFile)):  # the user's name stays out
            name = df.CONTEXT_REQUIREMENTS if isinstance(layer, L.Requirements) else df.CONTEXT_FILE
            files = tuple(entry._replace(path=name) for entry in files)
        items.append(df.RenderLayer(layer, prefix, files, index))
        if isinstance(layer, L.SourceFolder):
            entries.append(ContextEntry.directory(prefix))  # COPY needs it even when empty
        entries += _from_tree(prefix, files)
    text = df.render(base_image=base_image, base=image.base, layers=items,
                     spec_hash=snap.spec_hash, buildkit=buildkit, build_ca=mounted_ca,
                     installer=settings.installer if settings else "uv")
    entries.append(ContextEntry.generated(DOCKERFILE, text.encode()))
    return BuildContext(dockerfile=text, dockerfile_path=DOCKERFILE, entries=_sorted(entries),
                        base_image=base_image, **common)  # type: ignore[arg-type]


def _renamed(entries: Any, names: list[str]) -> list[TreeEntry]:
    return [TreeEntry(name, e.kind, e.source, e.size, False, e.digest) for e, name in
            zip(entries, names, strict=True)]


def _dockerfile_context(base: DockerfileBase, snap: Snapshot,
                        common: dict[str, Any]) -> BuildContext:
    assert snap.dockerfile_text is not None
    text = snap.dockerfile_text
    if not text.endswith("\n"):
        text += "\n"
    text += df.label_suffix(snap.spec_hash)
    entries = _from_tree("", snap.context_entries)
    taken = {e.path.split("/", 1)[0] for e in entries}
    folder, n = DOCKERFILE_DIR, 1
    while folder in taken:
        folder, n = f"{DOCKERFILE_DIR}-{n}", n + 1
    path = f"{folder}/{DOCKERFILE}"
    entries.append(ContextEntry.generated(path, text.encode()))
    return BuildContext(dockerfile=text, dockerfile_path=path, entries=_sorted(entries),
                        base_image=None, build_args=dict(base.build_args), **common)
