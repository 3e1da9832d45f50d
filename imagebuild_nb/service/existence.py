"""Existence checks answered by the service, with the service host's registry credentials.

The kernel asks the service instead of the registry when only the service can see the registry
(or holds the credentials). The answer is the checkers' tri-state ``ExistenceResult`` as JSON.

    status, body = await check_existence("localhost:5001/library/busybox:latest", settings)
    body["state"]   # "exists" | "missing" | "unknown"
"""

from __future__ import annotations

import inspect
from typing import Any

from imagebuild_nb.errors import SpecError
from imagebuild_nb.settings import Settings
from imagebuild_nb.spec.reference import ImageReference


async def check_existence(reference: str, settings: Settings) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for ``GET /imagebuild/api/existence?reference=...``."""
    try:
        ref = ImageReference.parse(reference, argument="reference")
    except SpecError as error:
        return 400, {"message": str(error)}
    try:
        from imagebuild_nb.checkers import ExistenceChecker  # type: ignore[attr-defined]
    except ImportError:
        return 501, {"message": "this service has no existence checker installed"}
    checker = ExistenceChecker(settings)
    try:
        result = checker.check(ref)
        if inspect.isawaitable(result):
            result = await result
    finally:
        closer = getattr(checker, "aclose", None) or getattr(checker, "close", None)
        if closer is not None:
            closed = closer()
            if inspect.isawaitable(closed):
                await closed
    return 200, result.to_dict()  # type: ignore[no-any-return]
