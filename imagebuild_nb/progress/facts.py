"""Facts a result card shows that the build's events do not carry (asked after the build)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def local_size(uri: str) -> int | None:
    """The image's size in the local engine (as ``docker images`` shows it), None if unknown."""
    try:
        from imagebuild_nb.builders.docker_engine import connect

        client = connect(timeout=5)
        try:
            return int(client.inspect_image(uri)["Size"])
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - a card without a size beats a failed card
        log.debug("no size for %s in the local engine", uri, exc_info=True)
        return None
