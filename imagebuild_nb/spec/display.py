"""Text and HTML views of an Image for notebooks: uri, layers and the rendered Dockerfile."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from imagebuild_nb.errors import ImageBuildError

if TYPE_CHECKING:
    from imagebuild_nb.spec.image import Image


def _describe_layer(data: dict[str, object]) -> str:
    kind = data.pop("type")
    shown = ", ".join(f"{k}={v!r}" for k, v in data.items() if v not in (None, [], (), False, {}))
    return f"{kind}({shown})"


def _facts(image: Image) -> tuple[str, list[str], str]:
    try:
        uri = image.uri
        dockerfile = image.dockerfile()
    except ImageBuildError as error:  # a file vanished: show the problem, never raise in repr
        uri = dockerfile = f"<unavailable: {error.message}>"
    base = image.base.to_dict()
    layers = [_describe_layer(dict(base))] + [_describe_layer(layer.to_dict())
                                              for layer in image.layers]
    return uri, layers, dockerfile


def image_text(image: Image) -> str:
    uri, layers, dockerfile = _facts(image)
    lines = [f"Image({uri})"] + [f"  {n}. {layer}" for n, layer in enumerate(layers)]
    lines += ["  Dockerfile:"] + [f"    {line}" for line in dockerfile.splitlines()]
    return "\n".join(lines)


def image_html(image: Image) -> str:
    uri, layers, dockerfile = _facts(image)
    items = "".join(f"<li><code>{html.escape(layer)}</code></li>" for layer in layers)
    return (f"<div class='imagebuild-nb-image'><b>Image</b> <code>{html.escape(uri)}</code>"
            f"<ol start='0'>{items}</ol><details><summary>Dockerfile</summary>"
            f"<pre>{html.escape(dockerfile)}</pre></details></div>")
