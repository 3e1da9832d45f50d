"""The error tree. Every error carries its context as attributes and a ``hint`` saying what to do.

    ImageBuildError
    ├── SpecError                 bad input to the Image spec (names the argument)
    │   └── FreezeError           an environment cannot be frozen (names the distributions)
    ├── RegistryError             talking to an OCI registry failed
    │   └── RegistryAuthError     credentials missing or refused
    ├── BuilderUnavailableError   no Docker engine / no build service to build with
    ├── BuildFailedError          the build ran and failed (failing step, exit code, log tail)
    ├── BuildCancelledError       the build was cancelled by the user
    └── ServiceError              the remote build service answered with an error or is gone
"""

from __future__ import annotations

from collections.abc import Sequence


class ImageBuildError(Exception):
    """Base of all imagebuild-nb errors."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nHint: {self.hint}"
        return self.message


class SpecError(ImageBuildError, ValueError):
    """An Image spec was given invalid input; ``argument`` names which."""

    def __init__(self, message: str, *, argument: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.argument = argument


class FreezeError(SpecError):
    """An environment cannot be frozen as asked; ``distributions`` names the ones at fault."""

    def __init__(self, message: str, *, distributions: Sequence[str] = (),
                 argument: str | None = None, hint: str | None = None):
        super().__init__(message, argument=argument, hint=hint)
        self.distributions = tuple(distributions)


class RegistryError(ImageBuildError):
    """A registry request failed in a way that is not simply "not found"."""

    def __init__(
        self,
        message: str,
        *,
        reference: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.reference = reference
        self.status_code = status_code
        self.code = code


class RegistryAuthError(RegistryError):
    """The registry wants credentials we do not have, or refused the ones we sent."""


class BuilderUnavailableError(ImageBuildError):
    """The chosen builder cannot be used (engine down, CLI missing, service unreachable)."""


class BuildFailedError(ImageBuildError):
    """A build ran and failed. ``step`` is the failing instruction, ``log_tail`` its last lines."""

    def __init__(
        self,
        message: str,
        *,
        step: str | None = None,
        exit_code: int | None = None,
        log_tail: Sequence[str] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.step = step
        self.exit_code = exit_code
        self.log_tail = list(log_tail)

    def __str__(self) -> str:
        text = self.message
        if self.step:
            text += f"\nFailing step: {self.step}"
        if self.exit_code is not None:
            text += f" (exit code {self.exit_code})"
        if self.log_tail:
            text += "\nLast log lines:\n" + "\n".join(f"  {line}" for line in self.log_tail)
        if self.hint:
            text += f"\nHint: {self.hint}"
        return text


class BuildCancelledError(ImageBuildError):
    """The build was cancelled (Cancel button, ``cancel()`` or a kernel interrupt)."""


class ServiceError(ImageBuildError):
    """The remote build service failed, refused the request, or lost the build."""

    def __init__(self, message: str, *, status_code: int | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status_code = status_code
