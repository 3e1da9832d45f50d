"""The picture's values and headlines, the same words in every view."""

from __future__ import annotations

import doctest

from imagebuild_nb.progress import view as view_module
from imagebuild_nb.progress.view import Failure, View, header, lane_summary


def test_doctests() -> None:
    assert doctest.testmod(view_module).failed == 0


def test_headers() -> None:
    assert header("built", 4.2, 2, 2, None) == "Built in 4.2 s"
    assert header("failed", 4.2, 1, 2, Failure("boom", "push")) == "Failed at push after 4.2 s"
    assert header("failed", 4.2, 1, 2, Failure("boom", "2/2", platform="linux/arm64")) == \
        "Failed at linux/arm64 step 2/2 after 4.2 s"
    assert header("cancelled", 3.0, 1, 2, None) == "Cancelled after 3.0 s (1/2)"
    assert header("waiting", None, 0, None, None) == "Waiting for the build to start"
    assert header("building", 3.0, 1, 2, None) == "Building 3.0s (1/2)"


def test_lane_summaries() -> None:
    assert lane_summary("built", 2.1, 3, 3, None) == "Built 3/3 in 2.1 s"
    assert lane_summary("failed", 2.1, 1, 3, "2/3") == "Failed at step 2/3 after 2.1 s"
    assert lane_summary("cancelled", 2.1, 1, 3, None) == "Cancelled 1/3 after 2.1 s"


def test_a_view_is_finished_once_settled() -> None:
    view = View("building", "", 1.0, 0, None, ())
    assert not view.finished
    assert View("cancelled", "", 1.0, 0, None, ()).finished
