"""The widget inside a JupyterHub server: remote is a choice without any setting, and making
the widget asks the Hub nothing (the service is looked up when a build starts)."""

from __future__ import annotations

from typing import Any

import pytest

from imagebuild_nb.notebook.remote_availability import remote_unavailable
from imagebuild_nb.settings import Settings
from tests.support.scripted_http import ScriptedRequest, scripted_server
from tests.support.widgets import scripted


def test_remote_is_a_choice_in_a_hub_server_and_the_hub_is_not_asked(
        make_widget: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def answer(request: ScriptedRequest) -> None:
        request.reply(500, {}, b"")

    with scripted_server(answer) as hub:
        monkeypatch.setenv("JUPYTERHUB_API_URL", f"{hub.url}/hub/api")
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
        widget = make_widget(scripted(), settings=Settings())
        assert widget.builder.options == ("local", "local-podman", "remote")
        assert widget.remote_button.layout.display == "none" and not widget.remote_note.value
        assert hub.requests == []
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN")  # half a Hub environment is none
    assert "IMAGEBUILD_NB_REMOTE_URL" in remote_unavailable(Settings(), None)
