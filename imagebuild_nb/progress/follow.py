"""Follow a build in the foreground: the one loop the magic and the command share.

Events go into a :class:`~imagebuild_nb.progress.model.Progress`; the sink sees every event
(the command's plain output prints log lines) and a fresh view at most every ``interval``
seconds (the TTY frame, the notebook's display). Ctrl-C cancels the build, waits for its
clean-up (the builder removes its containers) and raises :class:`Interrupted`.
"""

from __future__ import annotations

import time
from typing import Protocol

from imagebuild_nb.build import ImageBuild
from imagebuild_nb.events import BuildEvent
from imagebuild_nb.progress.model import Progress
from imagebuild_nb.progress.view import View

CANCEL_WAIT = 60.0


class Sink(Protocol):
    def event(self, event: BuildEvent, progress: Progress) -> None: ...

    def draw(self, view: View) -> None: ...

    def note(self, text: str) -> None: ...


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a followed build; ``clean`` is False when its clean-up did not finish."""

    def __init__(self, build: ImageBuild, clean: bool) -> None:
        super().__init__(f"build {build.id} cancelled by interrupt")
        self.build, self.clean = build, clean


def follow(build: ImageBuild, sink: Sink, *, progress: Progress | None = None,
           interval: float = 0.25, cancel: bool = True) -> Progress:
    """Feed ``build``'s events to ``progress`` and ``sink`` until it ends; returns the progress.

    With ``cancel=False`` Ctrl-C only stops following (``logs --follow``) and propagates.
    """
    progress = progress if progress is not None else Progress()
    last_seq = 0
    last_draw = 0.0
    try:
        for event in build.follow(idle_tick=min(interval, 0.2)):
            if event is not None:
                last_seq = event.seq
                progress.feed(event)
                sink.event(event, progress)
            now = time.monotonic()
            if now - last_draw >= interval:
                last_draw = now
                sink.draw(progress.view())
    except KeyboardInterrupt:
        if not cancel:
            sink.draw(progress.view())
            raise
        sink.note("Interrupted: cancelling the build ...")
        build.cancel()
        clean = True
        try:
            build.wait(timeout=CANCEL_WAIT, raise_on_error=False)
        except (KeyboardInterrupt, TimeoutError):
            clean = False
            sink.note("Gave up waiting for the build to clean up; it may leave a container.")
        for event in build.events:  # what arrived while cancelling
            if event.seq > last_seq:
                progress.feed(event)
                sink.event(event, progress)
        sink.draw(progress.view())
        raise Interrupted(build, clean) from None
    sink.draw(progress.view())
    return progress
