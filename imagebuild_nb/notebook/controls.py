"""The widget's controls: how each looks, what its tooltip says, and enabling them.

The builder choice offers remote only when a build service can be used; otherwise remote is a
disabled button beside the choices, with the reason
(:func:`~imagebuild_nb.notebook.remote_availability.remote_unavailable`) in its tooltip and in a
note next to it. The options apply to one build and reset after it (their tooltips say so).

>>> choice, button, note = builder_controls("no remote build service configured")
>>> choice.options, button.disabled, "IMAGEBUILD_NB_REMOTE_URL" in note.value
(('local', 'local-podman'), True, True)
>>> builder_controls("")[0].options
('local', 'local-podman', 'remote')
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from imagebuild_nb.notebook import widget_html


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


def build_options() -> tuple[widgets.Checkbox, widgets.Checkbox]:
    """The dry-run and force boxes (options of one build: both reset after it)."""
    dry_run = widgets.Checkbox(description="dry run", indent=False,
                               tooltip="render only, build nothing (this build only)",
                               layout=widgets.Layout(width="auto", margin="0 8px 0 4px"))
    force = widgets.Checkbox(description="force", indent=False,
                             tooltip="rebuild without cache (this build only)",
                             layout=widgets.Layout(width="auto", margin="0 8px 0 0"))
    return dry_run, force


def action_buttons() -> tuple[widgets.Button, widgets.Button, widgets.Button,
                              widgets.ToggleButton]:
    """Check, Build, Cancel (disabled until a build runs) and the Full log toggle."""
    fit = widgets.Layout(width="auto")
    check = widgets.Button(description="Check", icon="search", layout=fit,
                           tooltip="Does this image exist already?")
    build = widgets.Button(description="Build", icon="play", layout=fit,
                           button_style="primary", tooltip="Build the image")
    cancel = widgets.Button(description="Cancel", icon="stop", disabled=True,
                            button_style="danger", tooltip="Stop the build", layout=fit)
    full_log = widgets.ToggleButton(description="Full log", icon="list",
                                    tooltip="Page through the whole build log", layout=fit)
    return check, build, cancel, full_log


def set_disabled(control: widgets.DOMWidget, disabled: bool) -> None:
    """Enable or disable ``control``, sending a message only when that changes it."""
    if control.disabled != disabled:
        with control.hold_sync():
            control.disabled = disabled
