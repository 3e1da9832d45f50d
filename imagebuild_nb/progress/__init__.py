"""One progress model for every view of a build, and the renderers that draw it.

``Progress`` folds a build's events into steps (the user's numbering, states, durations, folded
log tails); ``View`` is its immutable picture. The renderers are thin: ``text`` (the command's
TTY and plain output, the magic's text), ``html`` (the magic's live view and result card, the
widget, the service page); ``follow`` is the one foreground loop (Ctrl-C cancels and waits).
"""

from __future__ import annotations

from imagebuild_nb.progress.model import Progress
from imagebuild_nb.progress.plan import StepPlan
from imagebuild_nb.progress.view import Failure, StepView, View

__all__ = ["Failure", "Progress", "StepPlan", "StepView", "View"]
