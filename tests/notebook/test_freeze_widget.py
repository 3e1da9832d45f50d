"""FreezeWidget headless (ipywidgets' no-op comm): Freeze fills the spec, Build goes through the
usual widget on the real engine, Verify shows the per-module table."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from imagebuild_nb import ImageBuildEngine
from imagebuild_nb.notebook.freeze_widget import FreezeWidget
from imagebuild_nb.settings import Settings
from tests.support.pip_target import pip_install_target

pytestmark = [pytest.mark.engine]


def _six_version() -> str:
    import six

    return str(six.__version__)


def test_freeze_build_verify_from_the_widget(
        sent: list[Any], pip_site: Callable[..., Path], unique_name: str,
        remove_images: list[str], python_base: str, ca_bundle: Path) -> None:
    site = pip_site(f"six=={_six_version()}")
    settings = Settings.from_env().replace(base_image_mirror="localhost:5001",
                                           network_mode="host", extra_ca_files=(str(ca_bundle),))
    engine = ImageBuildEngine(settings)
    widget = FreezeWidget(name=unique_name, engine=engine, settings=settings,
                          freeze_options={"path": [str(site)]}, modules=["six", "yaml_not_here"],
                          build_widget_options={"flush_interval": None})
    try:
        assert widget.verify_button.disabled  # nothing to verify before a freeze
        widget.freeze_button.click()
        assert widget.image is not None and widget.image.name == unique_name
        remove_images.append(widget.image.uri)
        assert f"six=={_six_version()}" in widget.spec.value
        assert widget.build_widget is not None and widget.build_area.children
        widget.verify_button.click()  # not built yet: says so, the widget stays usable
        assert "build it first" in widget.table.value
        widget.build_widget.build_button.click()
        assert widget.build_widget.wait_idle(300)
        widget.build_widget.flush()
        assert widget.build_widget.status == "built", widget.build_widget.summary()
        widget.verify_button.click()
        states = {c.module: c.state for c in widget.result.checks}
        assert states == {"six": "same", "yaml_not_here": "fails"}
        assert "<table>" in widget.table.value and "yaml_not_here" in widget.table.value
    finally:
        widget.close()


@pytest.fixture
def pip_site(tmp_path: Path) -> Callable[..., Path]:
    return partial(pip_install_target, tmp_path / "site")
