"""``as_image(obj) -> Image``: the one input step in front of the engine, magics, widget and CLI.

>>> from imagebuild_nb import Image
>>> img = Image.from_base("localhost:5001/library/busybox:latest")
>>> as_image(img) is img
True
>>> as_image("busybox")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
SpecError: builtins.str is not an image spec
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagebuild_nb.errors import SpecError
from imagebuild_nb.spec.image import Image

if TYPE_CHECKING:
    import flyte

    ImageLike = Image | flyte.Image
else:
    ImageLike = Any


def as_image(obj: ImageLike) -> Image:
    """An :class:`Image` for ``obj``: itself, or the conversion of a ``flyte.Image``."""
    if isinstance(obj, Image):
        return obj
    from imagebuild_nb.spec.flyte import from_flyte, is_flyte_image

    if is_flyte_image(obj):
        return from_flyte(obj)
    kind = type(obj)
    raise SpecError(f"{kind.__module__}.{kind.__qualname__} is not an image spec",
                    argument="image",
                    hint="pass an imagebuild_nb.Image (Image.from_debian_base(...)) or a "
                         "flyte.Image; for an existing reference use Image.from_base('<ref>')")
