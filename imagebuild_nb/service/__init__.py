"""The build service (the "remote" side): a Jupyter Server extension that builds next to a Docker
engine. Its HTTP API is described in ``openapi.yaml`` next to this file.

Importing this package needs ``jupyter_server`` (the ``service`` extra) only for ``app``,
``handlers`` and ``page``; the manager, store and runners are plain Python.
"""

from __future__ import annotations


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    from imagebuild_nb.service.app import ImageBuildServiceApp

    return [{"module": "imagebuild_nb.service.app", "app": ImageBuildServiceApp}]
