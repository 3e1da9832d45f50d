"""The checker seam: one async question per reference, three possible answers.

Contract for implementations (the one Flyte's checkers got wrong):

- ``exists`` only when the image was seen, with its digest;
- ``missing`` only when the source positively said "not there" (404, "No such image");
- ``unknown`` with a reason for everything else. Never raise for an expected failure
  (network, auth, daemon down); never turn "can't tell" into "exists".
"""

from __future__ import annotations

import time
from typing import Any, Protocol, runtime_checkable

from imagebuild_nb.checkers.result import ExistenceResult, State
from imagebuild_nb.labels import SPEC_HASH_LABEL
from imagebuild_nb.spec.reference import ImageReference


@runtime_checkable
class Checker(Protocol):
    """Answers for one kind of source (a registry, the local engine, a build service)."""

    name: str

    async def check(
        self, ref: ImageReference, *, spec_hash: str | None = None, platform: str | None = None
    ) -> ExistenceResult: ...


class Stopwatch:
    """Builds results stamped with the checker's name and the time since creation."""

    def __init__(self, ref: ImageReference, checker: str) -> None:
        self.ref = ref
        self.checker = checker
        self.started = time.perf_counter()

    def result(
        self,
        state: State,
        *,
        digest: str | None = None,
        platforms: tuple[str, ...] = (),
        reason: str | None = None,
        spec_hash_matches: bool | None = None,
    ) -> ExistenceResult:
        return ExistenceResult(
            reference=str(self.ref),
            state=state,
            digest=digest,
            platforms=platforms,
            reason=reason,
            checker=self.checker,
            elapsed=time.perf_counter() - self.started,
            spec_hash_matches=spec_hash_matches,
        )

    def unknown(self, reason: str) -> ExistenceResult:
        return self.result("unknown", reason=reason)


def spec_hash_verdict(
    config: dict[str, Any], spec_hash: str | None
) -> tuple[bool | None, str | None]:
    """Compare an image config's spec-hash label with ``spec_hash``: (matches, reason)."""
    if spec_hash is None:
        return None, None
    labels = (config.get("config") or {}).get("Labels") or {}
    found = labels.get(SPEC_HASH_LABEL)
    if found == spec_hash:
        return True, None
    if found is None:
        return False, f"the image has no {SPEC_HASH_LABEL} label: it was not built from this spec"
    return False, (f"built from a different spec ({SPEC_HASH_LABEL}={found}, "
                   f"this spec is {spec_hash})")
