"""Whether the widget offers the remote builder, and how it says why not.

:func:`remote_unavailable` gives the reason remote builds cannot be used ("" when they can: a
``remote_url`` is set, or the kernel runs in a JupyterHub server, whose build service is looked
up when a build starts). :func:`builder_controls` makes the builder choice from that reason.

>>> from imagebuild_nb.settings import Settings
>>> remote_unavailable(Settings(remote_url="http://builds.example:8890"), None)
''
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import ipywidgets as widgets

from imagebuild_nb.builders.hub_discovery import in_hub
from imagebuild_nb.notebook import widget_html
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


def builder_controls(reason: str) -> tuple[widgets.ToggleButtons, widgets.Button, widgets.HTML]:
    """The builder choice, the disabled remote button and its note, for ``reason`` ("" when
    remote can be used: then it is a choice and the button and note are hidden)."""
    # Without a build service, remote is no choice at all: a disabled button beside the
    # choices, its reason in its tooltip and in a note next to it.
    choices = ["local", "local-podman"] + ([] if reason else ["remote"])
    choice = widgets.ToggleButtons(
        options=choices, value="local",
        tooltips=["Build with the local Docker engine", "Build with podman on this machine",
                  "Build on the remote build service"][:len(choices)],
        style={"button_width": "auto"})
    button = widgets.Button(
        description="remote", disabled=True, tooltip=reason,
        layout=widgets.Layout(width="auto", margin="2px 4px 2px 0",
                              display=None if reason else "none"))
    button.add_class("imagebuild-remote")
    note = widgets.HTML(
        f'<div class="imagebuild-remote-note" style="color: {widget_html.muted()}; '
        f'font-size: 12px; line-height: 1.3" title="{html.escape(reason, quote=True)}">'
        "remote: no build service configured<br>(set IMAGEBUILD_NB_REMOTE_URL)</div>"
        if reason else "")
    return choice, button, note
