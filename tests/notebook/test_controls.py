"""The widget's controls: the builder choice with remote's reason, options, buttons."""

from __future__ import annotations

import doctest

from imagebuild_nb.notebook import controls as controls_module
from imagebuild_nb.notebook.controls import action_buttons, build_options, builder_controls


def test_doctests() -> None:
    assert doctest.testmod(controls_module).failed == 0


def test_without_a_service_remote_is_a_disabled_button_with_its_reason() -> None:
    choice, button, note = builder_controls('no service: set "X" & <Y>')
    assert choice.value == "local" and "remote" not in choice.options
    assert button.disabled and button.tooltip == 'no service: set "X" & <Y>'
    assert button.layout.display is None
    assert 'title="no service: set &quot;X&quot; &amp; &lt;Y&gt;"' in note.value  # escaped
    choice, button, note = builder_controls("")
    assert "remote" in choice.options and button.layout.display == "none" and note.value == ""


def test_options_and_buttons() -> None:
    dry_run, force = build_options()
    assert (dry_run.value, force.value) == (False, False)
    assert "this build only" in dry_run.tooltip and "this build only" in force.tooltip
    check, build, cancel, full_log = action_buttons()
    assert [b.description for b in (check, build, cancel, full_log)] == [
        "Check", "Build", "Cancel", "Full log"]
    assert cancel.disabled and not build.disabled and full_log.value is False
