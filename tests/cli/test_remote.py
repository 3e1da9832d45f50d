"""``imagebuild status``'s text for a build record."""

from __future__ import annotations

from imagebuild_nb.cli._remote import _record_text


def test_a_failed_builds_status_names_its_step_exit_code_and_last_lines() -> None:
    text = _record_text({"id": "0123456789abcdef", "uri": "r/x:1", "status": "failed",
                         "error": "exit status 3", "step": "step 3: RUN make", "exit_code": 3,
                         "log_tail": ["compiling", "make: *** [all] Error 3"]}, "http://svc")
    assert "     step: step 3: RUN make" in text and "exit code: 3" in text
    assert text.endswith("last log lines:\n  compiling\n  make: *** [all] Error 3")
    assert "exit code" not in _record_text({"id": "x", "status": "succeeded"}, "http://svc")
