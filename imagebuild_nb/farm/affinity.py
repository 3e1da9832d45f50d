"""Which engine should build an image: cache affinity by image family, else rendezvous hashing.

A build's *family* is its image repository without the tag (``localhost:5001/team/app``): builds
of one family share most layers. The family goes to the engine that last built it while that
engine is alive (its layer cache is warm); otherwise to the engine with the highest rendezvous
score ``sha256(family, engine)``, so families spread evenly and adding or losing an engine moves
only its share.

>>> family("localhost:5001/team/app:v2")
'localhost:5001/team/app'
>>> choose("localhost:5001/team/app", ["a", "b"], last_engine="b")
'b'
>>> choose("x", ["a", "b"]) == choose("x", ["b", "a"])
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from imagebuild_nb.spec.reference import ImageReference


def family(uri: str) -> str:
    """The image repository of ``uri`` (registry and name, no tag or digest)."""
    try:
        reference = ImageReference.parse(uri)
    except Exception:  # noqa: BLE001 -- an odd URI still gets a family: itself
        return uri
    return f"{reference.registry}/{reference.repository}" if reference.registry else \
        reference.repository


def score(family_name: str, engine: str) -> int:
    digest = hashlib.sha256(f"{len(family_name)}:{family_name}|{engine}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def choose(family_name: str, engines: Iterable[str], *,
           last_engine: str | None = None) -> str | None:
    """The engine for ``family_name`` among the alive ``engines`` (None when there is none)."""
    alive = sorted(set(engines))
    if last_engine is not None and last_engine in alive:
        return last_engine
    if not alive:
        return None
    return max(alive, key=lambda engine: score(family_name, engine))


__all__ = ["choose", "family", "score"]
