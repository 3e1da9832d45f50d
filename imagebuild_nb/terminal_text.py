"""Text as a terminal shows it: without escape sequences or stray control characters, and
after carriage returns (a progress bar's last state). Shared by every view of build output:
the notebook's log, the step model and the failure tails.

>>> strip_ansi("\\x1b[1;31merror\\x1b[0m: \\x1b]0;title\\x07boom")
'error: boom'
>>> collapse_cr("10%\\r50%\\r100%")
'100%'
"""

from __future__ import annotations

import re

# CSI (colours, cursor moves, erase line), OSC (titles, hyperlinks) and two-byte escapes.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
# Other C0 controls except tab, newline and carriage return: a stray byte must not break the
# HTML or the log file.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences and stray control characters (keeps ``\\r`` and ``\\n``)."""
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return _CONTROL.sub("", text)


def collapse_cr(segment: str) -> str:
    """What a terminal shows for one line holding carriage returns: the last non-empty overwrite.

    >>> collapse_cr("100%\\r")
    '100%'
    """
    if "\r" not in segment:
        return segment
    for part in reversed(segment.split("\r")):
        if part:
            return part
    return ""


__all__ = ["collapse_cr", "strip_ansi"]
