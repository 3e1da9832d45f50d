"""The picture of a build's progress: immutable values the renderers draw without further logic.

:class:`View` is what :meth:`~imagebuild_nb.progress.model.Progress.view` returns: the build's
status and headline, a :class:`StepView` per row, a :class:`PlatformView` per platform of a
multi-platform build and the :class:`Failure` when it failed. :func:`header` and
:func:`lane_summary` word the headlines, the same in every face of the project.

>>> header("failed", 4.2, 1, 2, Failure("boom", "2/2"))
'Failed at step 2/2 after 4.2 s'
>>> lane_summary("building", 4.2, 1, 3, None)
'Building 1/3 4.2s'
"""

from __future__ import annotations

from dataclasses import dataclass

from imagebuild_nb.progress.states import seconds, spaced


@dataclass(frozen=True)
class StepView:
    """One row: ``label`` is "2/5", "prepare" or "push"."""

    label: str
    instruction: str
    state: str  # queued | running | cached | done | failed | cancelled | skipped
    duration: float | None
    lines: int  # log lines seen under this row
    tail: tuple[str, ...]  # its last lines
    open: bool  # unfolded: the running step, the failing one
    number: int | None = None  # the user's step number (None for prepare and push)
    platform: str = ""  # the platform it was built for, in a multi-platform build


@dataclass(frozen=True)
class Failure:
    message: str
    step: str | None = None  # the row label that failed ("2/5", "push") when known
    exit_code: int | None = None
    lines: tuple[str, ...] = ()
    platform: str = ""  # in a multi-platform build, the platform that failed


@dataclass(frozen=True)
class PlatformView:
    """One platform's part of a multi-platform build: ``linux/arm64  Building 1/3 4.2s``."""

    platform: str
    status: str  # building | built | failed | cancelled
    summary: str
    elapsed: float | None
    done: int
    total: int | None


@dataclass(frozen=True)
class View:
    """An immutable picture of a build's progress; renderers only draw it."""

    status: str  # waiting | building | built | failed | cancelled
    header: str
    elapsed: float | None
    done: int  # user steps finished (done or cached)
    total: int | None  # user steps in the build, when known
    steps: tuple[StepView, ...]
    uri: str = ""
    builder: str = ""
    reason: str = ""
    digest: str | None = None
    pushed: bool = False
    failure: Failure | None = None
    clipped: int = 0
    lines: int = 0
    current: str = ""  # the running row's label and instruction, for one-line status
    platforms: tuple[PlatformView, ...] = ()  # one per platform of a multi-platform build

    @property
    def finished(self) -> bool:
        return self.status in ("built", "failed", "cancelled")



def header(status: str, elapsed: float | None, done: int, total: int | None,
            failure: Failure | None) -> str:
    count = f" ({done}/{total})" if total else ""
    if status == "built":
        return f"Built in {spaced(elapsed)}"
    if status == "failed":
        where = ""
        if failure is not None and failure.step:
            where = " at step " + failure.step if failure.step[0].isdigit() else \
                f" at {failure.step}"
            if failure.platform:
                where = f" at {failure.platform}" + where.removeprefix(" at")
        return f"Failed{where} after {spaced(elapsed)}"
    if status == "cancelled":
        return f"Cancelled after {spaced(elapsed)}{count}"
    if status == "waiting":
        return "Waiting for the build to start"
    return f"Building {seconds(elapsed)}{count}"


def lane_summary(status: str, elapsed: float | None, done: int, total: int | None,
                  failed: str | None) -> str:
    """A platform's line: ``Built 3/3 in 2.1 s``, ``Building 1/3 4.2s``."""
    count = f" {done}/{total}" if total else ""
    if status == "built":
        return f"Built{count} in {spaced(elapsed)}"
    if status == "failed":
        where = f" at step {failed}" if failed and failed[0].isdigit() else \
            (f" at {failed}" if failed else "")
        return f"Failed{where} after {spaced(elapsed)}"
    if status == "cancelled":
        return f"Cancelled{count} after {spaced(elapsed)}"
    return f"Building{count} {seconds(elapsed)}"
