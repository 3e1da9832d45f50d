"""Existence checks answered by the service, with the service host's registry credentials.

The kernel asks the service instead of the registry when only the service can see the registry
(or holds the credentials). The answer is the checkers' tri-state ``ExistenceResult`` as JSON.
One checker serves the service's lifetime, so its connections and tokens are reused.

    status, body = await check_existence("localhost:5001/library/busybox:latest", checker)
    body["state"]   # "exists" | "missing" | "unknown"
"""

from __future__ import annotations

from typing import Any

from imagebuild_nb.checkers import ExistenceChecker
from imagebuild_nb.errors import SpecError
from imagebuild_nb.spec.reference import ImageReference


async def check_existence(reference: str, checker: ExistenceChecker, *,
                          spec_hash: str | None = None,
                          platform: str | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for ``GET /imagebuild/api/existence?reference=...``."""
    try:
        ref = ImageReference.parse(reference, argument="reference")
        # acheck: the wait happens on the service's loop without blocking it. No cache: many
        # clients build through this service, and a cached "missing" would outlive their push.
        result = await checker.acheck(ref, spec_hash=spec_hash, platform=platform,
                                      use_cache=False)
    except SpecError as error:  # a malformed reference or platform
        return 400, {"message": str(error)}
    return 200, result.to_dict()
