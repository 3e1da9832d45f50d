"""Whether the widget can offer remote builds (the JupyterHub case: test_widget_hub.py)."""

from __future__ import annotations

import doctest
import subprocess
import sys

import pytest

from imagebuild_nb.notebook import remote_availability as remote_availability_module
from imagebuild_nb.notebook.remote_availability import remote_unavailable
from imagebuild_nb.settings import Settings


def test_doctests() -> None:
    assert doctest.testmod(remote_availability_module).failed == 0


def test_without_a_service_the_reason_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    assert "IMAGEBUILD_NB_REMOTE_URL" in remote_unavailable(Settings(), None)


def test_checking_imports_no_widgets() -> None:
    code = ("import sys; from imagebuild_nb.notebook.remote_availability import "
            "remote_unavailable; print('ipywidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.strip()
    assert out == "False"
