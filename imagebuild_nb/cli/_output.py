"""Where the command's results go: text on stdout, or one JSON document; errors on stderr.

>>> import io
>>> out = Output(json_mode=True, stdout=io.StringIO(), stderr=io.StringIO())
>>> out.emit({"uri": "r/x:1"}, "ignored in JSON mode")
>>> out.finish(ExitCode.OK)
>>> json.loads(out.stdout.getvalue())
{'uri': 'r/x:1', 'exit_code': 0}
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import IO, Any

from imagebuild_nb.errors import (
    BuildCancelledError,
    BuilderUnavailableError,
    BuildFailedError,
    ImageBuildError,
    SpecError,
)


class ExitCode(enum.IntEnum):
    """The exit codes ``imagebuild --help`` documents."""

    OK = 0
    FAILED = 1
    USAGE = 2
    MISSING = 3
    UNKNOWN = 4
    UNAVAILABLE = 5
    ERROR = 6
    INTERRUPTED = 130


def code_for(error: BaseException) -> ExitCode:
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(error, SpecError):
        return ExitCode.USAGE
    if isinstance(error, BuilderUnavailableError):
        return ExitCode.UNAVAILABLE
    if isinstance(error, (BuildFailedError, BuildCancelledError)):
        return ExitCode.FAILED
    return ExitCode.ERROR


@dataclass
class Output:
    json_mode: bool
    stdout: IO[str]
    stderr: IO[str]
    document: dict[str, Any] = field(default_factory=dict)

    @property
    def tty(self) -> bool:
        """Is stderr (where progress goes) a terminal?"""
        return bool(getattr(self.stderr, "isatty", lambda: False)())

    def emit(self, document: dict[str, Any], text: str = "") -> None:
        """A result: merged into the JSON document, or ``text`` printed on stdout."""
        self.document.update(document)
        if not self.json_mode and text:
            self.stdout.write(text.rstrip("\n") + "\n")
            self.stdout.flush()

    def warn(self, text: str) -> None:
        self.stderr.write(text.rstrip("\n") + "\n")
        self.stderr.flush()

    def error(self, error: ImageBuildError) -> None:
        """Message and hint on stderr (for a failed build also its step and log tail)."""
        details: dict[str, Any] = {}
        if isinstance(error, BuildFailedError):
            details = {"step": error.step, "exit_code": error.exit_code,
                       "log_tail": error.log_tail}
        self.error_text(f"imagebuild: error: {error}", kind=type(error).__name__,
                        message=error.message, hint=error.hint, **details)

    def error_text(self, text: str, *, kind: str, message: str, **details: Any) -> None:
        self.warn(text)
        self.document["error"] = {"type": kind, "message": message, **details}

    def finish(self, code: int) -> None:
        if self.json_mode:
            document = {**self.document, "exit_code": int(code)}
            self.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
            self.stdout.flush()
