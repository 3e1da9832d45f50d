"""A widget from exploration to a proven image: "Freeze this kernel", build, "Verify".

    w = FreezeWidget(name="frozen")
    w.freeze_button.click()      # fills w.image and shows the build widget below
    w.verify_button.click()      # after a build: the per-module table

Freeze fills the spec (an ordinary Image, also in ``w.image``) and puts the usual
:class:`~imagebuild_nb.notebook.widget.ImageBuildWidget` for it below (Check, Build, Cancel,
log). Verify imports the kernel's modules in a container of the built image and shows
:class:`~imagebuild_nb.verify.VerifyResult`'s table; an image not built yet says so.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.notebook.outcome import readable
from imagebuild_nb.notebook.widget import ImageBuildWidget
from imagebuild_nb.settings import Settings


class FreezeWidget(widgets.VBox):
    """``freeze_options`` go to ``Image.from_environment`` (e.g. ``registry=``);
    ``modules`` to verify (default: what this kernel imported)."""

    def __init__(self, *, name: str = "frozen", only_imported: bool = False,
                 engine: ImageBuildEngine | None = None, settings: Settings | None = None,
                 freeze_options: Mapping[str, Any] | None = None,
                 modules: Sequence[str] | None = None,
                 build_widget_options: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self.image: Any = None
        self.result: Any = None
        self.build_widget: ImageBuildWidget | None = None
        self._engine, self._settings = engine, settings
        self._freeze_options = dict(freeze_options or {})
        self._modules = list(modules) if modules is not None else None
        self._build_options = dict(build_widget_options or {})
        fit = widgets.Layout(width="auto")
        self.name = widgets.Text(value=name, description="name", layout=widgets.Layout(
            width="320px"))
        self.only_imported = widgets.Checkbox(value=only_imported, description="only imported",
                                              indent=False, layout=fit,
                                              tooltip="only distributions of imported modules")
        self.freeze_button = widgets.Button(description="Freeze this kernel", icon="snowflake-o",
                                            button_style="primary", layout=fit)
        self.verify_button = widgets.Button(description="Verify", icon="check", disabled=True,
                                            layout=fit, tooltip="import the kernel's modules "
                                            "in a container of the built image")
        self.spec = widgets.HTML()
        self.table = widgets.HTML()
        self.build_area = widgets.VBox()
        controls = widgets.HBox([self.name, self.only_imported, self.freeze_button,
                                 self.verify_button],
                                layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        super().__init__(children=[controls, self.spec, self.build_area, self.table], **kwargs)
        self.freeze_button.on_click(self._guarded(self._on_freeze))
        self.verify_button.on_click(self._guarded(self._on_verify))

    def _on_freeze(self, _button: Any) -> None:
        from imagebuild_nb import Image

        self.image = Image.from_environment(name=self.name.value.strip() or "frozen",
                                            only_imported=self.only_imported.value,
                                            **self._freeze_options)
        pins = [text for layer in self.image.layers for text in getattr(layer, "packages", ())]
        self.spec.value = (f"<div><b>{html.escape(self.image.uri)}</b>: {len(pins)} pinned "
                           f"distribution(s), Python {html.escape(self.image.base.python_version)}"
                           f"<pre style='max-height:12em;overflow:auto'>"
                           f"{html.escape(chr(10).join(pins))}</pre></div>")
        if self.build_widget is not None:
            self.build_widget.close()
        self.build_widget = ImageBuildWidget(self.image, engine=self._engine,
                                             settings=self._settings, **self._build_options)
        self.build_area.children = [self.build_widget]
        self.verify_button.disabled = False
        self.table.value = ""

    def _on_verify(self, _button: Any) -> None:
        from imagebuild_nb.verify import verify

        self.table.value = "<i>verifying...</i>"
        self.result = verify(self.image, self._modules)
        self.table.value = self.result._repr_html_()

    def _guarded(self, callback: Any) -> Any:
        def run(argument: Any) -> None:
            try:
                callback(argument)
            except Exception as error:  # noqa: BLE001 - a readable message, not a dead widget
                self.table.value = (f"<pre style='color:var(--jp-error-color1, red)'>"
                                    f"{html.escape(readable(error))}</pre>")
        return run

    def close(self) -> None:
        if self.build_widget is not None:
            self.build_widget.close()
        super().close()
