"""Content identity: sha256 over a canonical, type-tagged, versioned JSON document.

The document holds the base, the platform, every layer as ``{"type": ..., fields}`` with local
paths replaced by content digests, the .dockerignore rules and the template version. Names,
registries, explicit tags and absolute paths are not in it, so the same spec gives the same
hash on any machine and from any working directory.

:func:`snapshot` walks the files once; rendering reuses the same walk for the build context.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagebuild_nb.spec.base import DockerfileBase
from imagebuild_nb.spec.files import (
    TreeEntry,
    file_digest,
    folder_rules,
    tree_digest,
    unreadable,
    walk_tree,
)
from imagebuild_nb.spec.ignore import IgnoreRules
from imagebuild_nb.spec.layers import (
    CACertificates,
    DockerIgnore,
    Layer,
    Requirements,
    SourceFile,
    SourceFolder,
)

if TYPE_CHECKING:
    from imagebuild_nb.spec.image import Image

IDENTITY_VERSION = 1
# Bump whenever render/ changes the Dockerfile it produces for the same spec.
TEMPLATE_VERSION = 2  # 2: requirements and source files under fixed names (issue 12)


@dataclass(frozen=True)
class Snapshot:
    """An image spec resolved against the file system at one moment."""

    spec_hash: str
    document: dict[str, Any]
    # Per layer index: the files it contributes (empty for layers without files).
    layer_files: tuple[tuple[TreeEntry, ...], ...]
    # Dockerfile images: the Dockerfile text and the filtered context tree.
    dockerfile_text: str | None = None
    context_entries: tuple[TreeEntry, ...] = ()


def image_rules(layers: tuple[Layer, ...]) -> IgnoreRules:
    rules = IgnoreRules()
    for layer in layers:
        if isinstance(layer, DockerIgnore):
            rules = rules + IgnoreRules.parse(_read_text(layer.path, "path"), source=layer.path)
    return rules


def _read_text(path: str, argument: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise unreadable(path, error, argument) from error


def _single(path: str, argument: str) -> TreeEntry:
    """A file the user named: a link to it is followed (they chose that file), so the entry's
    source is the resolved path and the context never opens a link."""
    try:
        source = os.path.realpath(path)
        st = os.stat(source)
        digest = file_digest(source, st)
    except OSError as error:
        raise unreadable(path, error, argument) from error
    return TreeEntry(os.path.basename(path), "file", source, size=st.st_size,
                     executable=bool(st.st_mode & 0o111), digest=digest)


def _layer(layer: Layer, rules: IgnoreRules) -> tuple[dict[str, Any], tuple[TreeEntry, ...]]:
    from imagebuild_nb.spec.projects import PROJECT_LAYERS, project_document

    if isinstance(layer, PROJECT_LAYERS):
        return project_document(layer, rules)
    doc = layer.to_dict()
    if isinstance(layer, SourceFolder):
        entries = walk_tree(Path(layer.src), folder_rules(Path(layer.src), rules))
        doc = {"type": layer.kind, "dst": layer.dst, "tree": tree_digest(entries)}
        return doc, tuple(entries)
    if isinstance(layer, SourceFile):
        entry = _single(layer.src, "src")
        return {"type": layer.kind, "dst": layer.dst, "sha256": entry.digest,
                "executable": entry.executable}, (entry,)
    if isinstance(layer, Requirements):
        entry = _single(layer.path, "path")
        options = {k: v for k, v in doc.items() if k != "path" and v not in (None, [], False)}
        return {**options, "sha256": entry.digest}, (entry,)
    if isinstance(layer, CACertificates):
        certificates = tuple(_single(path, "paths") for path in layer.paths)
        return {"type": layer.kind, "sha256": [e.digest for e in certificates]}, certificates
    if isinstance(layer, DockerIgnore):
        parsed = IgnoreRules.parse(_read_text(layer.path, "path"), source=layer.path)
        return {"type": layer.kind, "rules": parsed.canonical}, ()
    return doc, ()


def snapshot(image: Image) -> Snapshot:
    rules = image_rules(image.layers)
    layer_docs, layer_files = [], []
    for layer in image.layers:
        doc, files = _layer(layer, rules)
        layer_docs.append(doc)
        layer_files.append(files)
    base = image.base
    dockerfile_text = None
    context_entries: tuple[TreeEntry, ...] = ()
    if isinstance(base, DockerfileBase):
        dockerfile_text = _read_text(base.dockerfile, "path")
        context = Path(base.context)
        context_entries = tuple(walk_tree(context, folder_rules(context, argument="context"),
                                          argument="context"))
        base_doc: dict[str, Any] = {
            "type": base.kind,
            "dockerfile_sha256": hashlib.sha256(dockerfile_text.encode()).hexdigest(),
            "context": tree_digest(list(context_entries)),
            "build_args": [list(pair) for pair in base.build_args],
        }
    else:
        base_doc = base.to_dict()
    document = {
        "identity": IDENTITY_VERSION,
        "template": TEMPLATE_VERSION,
        "platform": image.platform,
        "base": base_doc,
        "layers": layer_docs,
    }
    return Snapshot(spec_hash=canonical_hash(document), document=document,
                    layer_files=tuple(layer_files), dockerfile_text=dockerfile_text,
                    context_entries=context_entries)


def canonical_hash(document: dict[str, Any]) -> str:
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()
