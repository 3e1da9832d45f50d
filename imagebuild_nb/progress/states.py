"""One wording and one colour for every state, in every view (magic, widget, command, page).

Colours are CSS built from JupyterLab's theme variables. No single ``--jp-*`` state colour reads
well on both themes (``--jp-error-color0`` is 6.6:1 on the light theme's white but 3.9:1 on the
dark theme's #111), so each state colour is the theme's mid tone mixed with the theme's own text
colour: darker on a light theme, lighter on a dark one, at least 4.5:1 on either (WCAG AA; the
browser tests measure it on the rendered page). The fallbacks after the variables are the light
theme's values, for pages outside JupyterLab that define no variables.

>>> label("exists"), tone("exists")
('exists', 'success')
>>> seconds(12.34), seconds(125)
('12.3s', '2m05s')
"""

from __future__ import annotations

from typing import Literal

Tone = Literal["success", "error", "warn", "info", "neutral"]

# Build and check states (badges, headers) and step states (rows), with the tone each takes.
_TONES: dict[str, Tone] = {
    # builds and checks
    "not-checked": "neutral", "checking": "info", "exists": "success", "missing": "warn",
    "unknown": "warn", "waiting": "info", "building": "info", "running": "info",
    "built": "success", "failed": "error", "cancelled": "warn", "dry-run": "neutral",
    # steps
    "queued": "neutral", "cached": "neutral", "done": "success", "skipped": "neutral",
}

# What users read; the key is what code and tests match on (``data-state`` in HTML).
_LABELS = {
    "not-checked": "not checked yet", "dry-run": "dry run", "waiting": "starting",
}

_MIDTONE = {
    "success": ("--jp-success-color1", "#388e3c"),
    "error": ("--jp-error-color1", "#d32f2f"),
    "warn": ("--jp-warn-color1", "#f57c00"),
    "info": ("--jp-brand-color1", "#1976d2"),
}
_TEXT = "var(--jp-content-font-color0, #000)"
_MUTED = "var(--jp-content-font-color2, rgba(0, 0, 0, 0.54))"


def tone(state: str) -> Tone:
    return _TONES.get(state, "neutral")


def label(state: str) -> str:
    """The words a state is shown with."""
    return _LABELS.get(state, state)


def colour(state: str) -> str:
    """CSS colour of a state's text (see the module docstring for why it is mixed)."""
    which = tone(state)
    if which == "neutral":
        return f"color-mix(in srgb, {_MUTED} 80%, {_TEXT})"
    variable, fallback = _MIDTONE[which]
    return f"color-mix(in srgb, var({variable}, {fallback}) 62%, {_TEXT})"


def muted() -> str:
    """CSS colour for secondary text (hints, counts, durations) that still reads at 4.5:1."""
    return f"color-mix(in srgb, {_MUTED} 80%, {_TEXT})"


# Marks in front of a step in text views (ASCII-safe where terminals are not).
MARKS = {"queued": "·", "running": "▸", "cached": "=", "done": "✓", "failed": "✗",
         "cancelled": "■", "skipped": "-"}


def seconds(value: float | None) -> str:
    """A duration the way every view shows it: ``12.3s`` under a minute, ``2m05s`` above."""
    if value is None:
        return ""
    if value < 60:
        return f"{max(0.0, value):.1f}s"
    whole = int(value)
    return f"{whole // 60}m{whole % 60:02d}s"


def spaced(value: float | None) -> str:
    """The same duration for sentences: ``Built in 12.3 s``."""
    text = seconds(value)
    return text[:-1] + " s" if text.endswith("s") and "m" not in text else text


def size(value: int | None) -> str:
    """Bytes for people: ``4.3 MB`` (powers of 1000, as ``docker images`` shows them)."""
    if value is None:
        return ""
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} TB"
