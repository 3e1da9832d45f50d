"""How a widget job's end reads: an exception as one message, a finished build as a settlement.

The widget's workers post these to the view state (:mod:`~imagebuild_nb.notebook.viewstate`):
:func:`readable` is the text of every ``Problem`` (and of a failed build's message), with the
``hint`` the project's errors carry; :func:`settlement` reads a build handle once ``wait()``
returned.

>>> from imagebuild_nb.errors import SpecError
>>> print(readable(SpecError("no base image", hint="call Image.from_base(...)")))
SpecError: no base image
Hint: call Image.from_base(...)
>>> readable(ValueError())
'ValueError: ValueError'
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from imagebuild_nb.notebook.viewstate import BuildSettled

if TYPE_CHECKING:
    from imagebuild_nb.build import ImageBuild


def settlement(handle: ImageBuild) -> BuildSettled:
    """How the build ended, read from the handle once ``wait()`` returned."""
    if handle.found:
        return BuildSettled(status="exists", digest=handle.digest,
                            message="already built, nothing to do", at=time.time())
    message = ""
    if handle.status == "failed" and handle.error is not None:
        message = readable(handle.error)
    return BuildSettled(status=handle.status, digest=handle.digest, message=message,
                        at=time.time())


def readable(error: BaseException) -> str:
    """One readable message for an exception: its text plus the hint our errors carry."""
    text = str(error) or type(error).__name__
    hint = getattr(error, "hint", None)
    if hint and str(hint) not in text:
        text = f"{text}\nhint: {hint}"
    return f"{type(error).__name__}: {text}"
