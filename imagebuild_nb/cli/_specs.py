"""SPEC arguments into Images: ``path/to/module.py:variable``, a Dockerfile, or a reference.

>>> load("localhost:5001/library/busybox:latest", allow_many=True, allow_reference=True)[0].image
'localhost:5001/library/busybox:latest'
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagebuild_nb.errors import SpecError
from imagebuild_nb.spec.image import Image
from imagebuild_nb.spec.reference import ImageReference

SPEC_FORMS = ("path/to/module.py:variable (an Image; for check also a list or dict of Images), "
              "or a Dockerfile path (with --name, --registry, --context)")


@dataclass(frozen=True)
class Named:
    """One image to act on and how the user named it (``images.py:envs[train]``)."""

    label: str
    image: Any  # an Image, or (check only) an image reference string


@dataclass(frozen=True)
class SpecOptions:
    name: str | None = None
    registry: str | None = None
    context: str | None = None
    tag: str | None = None
    platform: str | None = None


def load(text: str, options: SpecOptions = SpecOptions(), *, allow_many: bool = False,
         allow_reference: bool = False) -> list[Named]:
    """The images SPEC ``text`` names, with the command line's overrides applied."""
    module, sep, variable = text.rpartition(":")
    if sep and module.endswith(".py"):
        if options.name is not None or options.context is not None:
            raise SpecError("--name and --context apply to Dockerfile specs only",
                            argument="SPEC", hint="set the name in the module's Image instead")
        found = _flatten(text, _variable(Path(module), variable), allow_many)
        return [Named(item.label, _override(item.image, options)) for item in found]
    if Path(text).is_file():
        image = Image.from_dockerfile(text, name=options.name, registry=options.registry,
                                      context=options.context, tag=options.tag,
                                      platform=options.platform)
        return [Named(text, image)]
    if allow_reference and _is_reference(text):
        return [Named(text, text)]
    raise SpecError(f"SPEC {text!r} is neither a module variable nor a file",
                    argument="SPEC", hint=f"give {SPEC_FORMS}")


def _variable(path: Path, variable: str) -> Any:
    if not path.is_file():
        raise SpecError(f"no such module: {path}", argument="SPEC",
                        hint="give the path of a Python file, e.g. images.py:image")
    if not variable.isidentifier():
        raise SpecError(f"{variable!r} is not a variable name", argument="SPEC",
                        hint=f"write {path}:NAME where NAME is a variable defined in {path}")
    namespace = _run_module(path.resolve())
    if variable not in namespace:
        defined = sorted(k for k, v in namespace.items()
                         if not k.startswith("_") and isinstance(v, (Image, list, tuple, dict)))
        raise SpecError(f"{path} defines no variable {variable!r}", argument="SPEC",
                        hint=f"variables there that could hold images: {', '.join(defined)}"
                        if defined else f"define {variable} = Image.from_... in {path}")
    return namespace[variable]


def _run_module(path: Path) -> dict[str, Any]:
    # Relative paths in the module are the module's own: run it from its folder (Image keeps
    # absolute paths, so they stay valid after we step back).
    with _inside(path.parent):
        try:
            return runpy.run_path(str(path), run_name="__imagebuild_spec__")
        except SpecError:
            raise
        except (Exception, SystemExit) as error:
            raise SpecError(f"{path} raised {type(error).__name__}: {error}", argument="SPEC",
                            hint=f"run `python {path}` to see the traceback") from None


@contextmanager
def _inside(folder: Path) -> Iterator[None]:
    before = os.getcwd()
    sys.path.insert(0, str(folder))
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)
        sys.path.remove(str(folder))


def _converted(value: Any) -> Any:
    """A flyte.Image becomes the same image as ours; anything else is left for the checks."""
    from imagebuild_nb.spec.flyte import from_flyte, is_flyte_image

    return from_flyte(value) if is_flyte_image(value) else value


def _flatten(text: str, value: Any, allow_many: bool) -> list[Named]:
    value = _converted(value)
    if isinstance(value, Image):
        return [Named(text, value)]
    if isinstance(value, Mapping):
        items = [(f"{text}[{key}]", _converted(item)) for key, item in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [(f"{text}[{index}]", _converted(item)) for index, item in enumerate(value)]
    else:
        raise SpecError(f"{text} is a {type(value).__name__}, not an Image", argument="SPEC",
                        hint="name a variable that holds an Image")
    if not allow_many:
        raise SpecError(f"{text} holds {len(items)} images; this command takes one",
                        argument="SPEC", hint="name a variable that holds a single Image")
    wrong = [label for label, item in items if not isinstance(item, Image)]
    if wrong:
        raise SpecError(f"{', '.join(wrong)} is not an Image", argument="SPEC",
                        hint="lists and dicts given to check must hold only Images")
    return [Named(label, item) for label, item in items]


def _override(image: Image, options: SpecOptions) -> Image:
    changes: dict[str, Any] = {}
    if options.registry is not None and image.registry is None:
        changes["registry"] = options.registry
    if options.tag is not None:
        changes["tag"] = options.tag
    if options.platform is not None:
        changes["platform"] = options.platform
    # Through from_dict so every override is validated like constructor input.
    return Image.from_dict({**image.to_dict(), **changes}) if changes else image


def _is_reference(text: str) -> bool:
    if ":" not in text and "@" not in text:
        return False
    try:
        ImageReference.parse(text)
    except (SpecError, ValueError):
        return False
    return True
