"""Whether the widget can offer the remote builder, and if not, why.

:func:`remote_unavailable` gives the reason remote builds cannot be used, or "" when they can: a
``remote_url`` is set, or the kernel runs in a JupyterHub server, whose build service is looked
up when a build starts (so making the widget asks the Hub nothing). The widget shows the reason
beside a disabled remote button (:func:`~imagebuild_nb.notebook.controls.builder_controls`).

>>> from imagebuild_nb.settings import Settings
>>> remote_unavailable(Settings(remote_url="http://builds.example:8890"), None)
''
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagebuild_nb.builders.hub_discovery import in_hub
from imagebuild_nb.notebook.outcome import readable
from imagebuild_nb.settings import Settings

if TYPE_CHECKING:
    from imagebuild_nb.engine import ImageBuildEngine


def remote_unavailable(settings: Settings | None, engine: ImageBuildEngine | None) -> str:
    """Why the remote builder cannot be used ("" when it can)."""
    if settings is None and engine is not None:
        settings = engine.settings
    if settings is None:
        try:
            from imagebuild_nb.engine import ImageBuildEngine

            settings = ImageBuildEngine.default().settings
        except Exception as error:  # noqa: BLE001 - a bad setting must not break the widget
            return f"settings could not be read: {readable(error)}"
    # Inside JupyterHub the Hub's service is looked up when a build starts (no request here).
    if settings.remote_url or in_hub():
        return ""
    return ("no remote build service configured: set IMAGEBUILD_NB_REMOTE_URL "
            "(or the remote_url setting) to the service's URL")

