"""A ``flyte.Image`` as an imagebuild-nb :class:`~imagebuild_nb.spec.image.Image`, same meaning.

flyte stays optional: nothing here imports it; an object is a flyte image only when flyte's
``_image`` module is loaded already and the object is an instance of its ``Image``. Each Flyte
layer maps to the layer of ours that builds the same thing; a layer with no counterpart raises
a :class:`SpecError` naming it and what to write instead, never a different image. What differs
without changing the files or packages (Flyte's builder runs the result as ``USER flyte``, asks
for two platforms) is kept in :attr:`Image.origin`, which dry runs and results show.

>>> import flyte                                                       # doctest: +SKIP
>>> from_flyte(flyte.Image.from_base("alpine:3.18")).uri               # doctest: +SKIP
'alpine:3.18'
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imagebuild_nb.errors import SpecError
from imagebuild_nb.spec import layers as L
from imagebuild_nb.spec.image import Image
from imagebuild_nb.spec.projects import PoetryProject, UVProject, UVScript
from imagebuild_nb.spec.secrets import SecretMount

_CREATE_USER_MARK = "useradd --create-home --shell /bin/bash flyte"


def is_flyte_image(obj: object) -> bool:
    module = sys.modules.get("flyte._image")
    return module is not None and isinstance(obj, module.Image)


def from_flyte(image: Any) -> Image:
    """Convert; raises SpecError naming the first Flyte layer that has no counterpart."""
    notes: list[str] = []
    if getattr(image, "_ref_name", None):
        raise SpecError(f"flyte.Image.from_ref_name({image._ref_name!r}) names an image in "
                        "Flyte's configuration, which imagebuild-nb cannot read",
                        argument="image",
                        hint="pass that image's URI instead: Image.from_base('<registry>/<name>:"
                             "<tag>')")
    platform = _platform(tuple(getattr(image, "platform", ()) or ()), notes)
    layers = tuple(getattr(image, "_layers", ()) or ())
    name, registry = image.name, image.registry
    if image.dockerfile is not None:
        result = Image.from_dockerfile(image.dockerfile, registry=registry, name=name,
                                       platform=platform)
    elif not getattr(image, "_is_cloned", False) and not layers:
        # Flyte: an unmodified image is its base, assumed to exist and never built.
        if not image.base_image:
            raise SpecError("the flyte.Image has no base image URI", argument="image",
                            hint="give flyte.Image.from_base() a full URI")
        result = Image.from_base(image.base_image, platform=platform)
    else:
        if not image.base_image:
            raise SpecError("the flyte.Image has neither a base image nor a Dockerfile",
                            argument="image")
        result = Image.from_base(image.base_image, name=name, registry=registry,
                                 tag=getattr(image, "_tag", None), platform=platform)
        for index, layer in enumerate(layers):
            for ours in _convert(index, layer, notes):
                result = result._add(ours)
    if any(isinstance(layer, L.Commands) and any(_CREATE_USER_MARK in c for c in layer.commands)
           for layer in result.layers):
        notes.append("Flyte's builder would switch to USER flyte at the end; this image runs as "
                     "root (files and packages are the same)")
    origin = f"flyte.Image {_flyte_uri(image)}"
    if notes:
        origin += " (" + "; ".join(notes) + ")"
    import dataclasses

    return dataclasses.replace(result, origin=origin)


def _flyte_uri(image: Any) -> str:
    try:
        return str(image.uri)
    except Exception:  # flyte's uri reads files and config; the origin is only a label
        return f"{image.registry + '/' if image.registry else ''}{image.name or image.base_image}"


def _platform(platforms: tuple[str, ...], notes: list[str]) -> str | None:
    if len(platforms) == 1:
        return platforms[0]
    if platforms:
        notes.append(f"Flyte asks for {', '.join(platforms)}; built for the engine's platform")
    return None


def _convert(index: int, layer: Any, notes: list[str]) -> list[L.Layer]:
    kind = type(layer).__name__
    handler = _HANDLERS.get(kind)
    if handler is None:
        raise SpecError(f"flyte layer {index} ({kind}) has no imagebuild-nb counterpart",
                        argument="image", hint=_UNSUPPORTED.get(
                            kind, "express it with with_commands(...) or a Dockerfile"))
    try:
        return handler(layer, notes)
    except SpecError as error:
        raise SpecError(f"flyte layer {index} ({kind}): {error.message}",
                        argument=error.argument, hint=error.hint) from None


def _secrets(values: Any) -> tuple[SecretMount, ...]:
    mounts = []
    for value in values or ():
        if isinstance(value, str) and "/" not in value:
            # Flyte's meaning of a bare name: Secret(key=name), i.e. the variable NAME (upper
            # case) or the file /etc/secrets/name, seen by the step as the variable NAME.
            mounts.append(SecretMount("flyte", value, env=value.replace("-", "_").upper()))
        else:
            mounts.append(SecretMount.parse(value))
    for mount in mounts:
        mount.validate()
    return tuple(mounts)


def _pip(layer: Any) -> dict[str, Any]:
    return {"index_url": layer.index_url, "extra_index_urls": tuple(layer.extra_index_urls or ()),
            "pre": bool(layer.pre), "extra_args": shlex.split(layer.extra_args or ""),
            "secret_mounts": _secrets(layer.secret_mounts)}


def _pip_packages(layer: Any, notes: list[str]) -> list[L.Layer]:
    if not layer.packages:
        raise SpecError("a pip layer without packages", argument="packages",
                        hint="name the packages: with_pip_packages('pandas')")
    return [L.PipPackages.create(tuple(layer.packages), **_pip(layer))]


def _requirements(layer: Any, notes: list[str]) -> list[L.Layer]:
    return [L.Requirements.create(layer.file, **_pip(layer))]


def _copy(layer: Any, notes: list[str]) -> list[L.Layer]:
    if layer.path_type == 1:
        # Flyte's with_source_folder already chose dst (./<name> unless copy_contents_only);
        # its COPY puts the folder's contents there, as ours does.
        return [L.SourceFolder.create(Path(layer.src), layer.dst or ".")]
    return [L.SourceFile.create(Path(layer.src), layer.dst or ".")]


def _docker_lines(layer: Any, notes: list[str]) -> list[L.Layer]:
    labels: dict[str, str] = {}
    for line in layer.lines:
        words = shlex.split(line)
        if not words or words[0].upper() != "LABEL" or not all("=" in w for w in words[1:]):
            raise SpecError(f"raw Dockerfile line {line!r}", argument="image",
                            hint="Flyte marks these internal; use with_commands(...) or a "
                                 "Dockerfile")
        labels.update(word.split("=", 1) for word in words[1:])  # type: ignore[misc]
    return [L.Labels.create(labels)]


_HANDLERS: dict[str, Callable[[Any, list[str]], list[L.Layer]]] = {
    "AptPackages": lambda layer, n: [L.AptPackages.create(tuple(layer.packages),
                                                          _secrets(layer.secret_mounts))],
    "Commands": lambda layer, n: [L.Commands.create(tuple(layer.commands),
                                                    _secrets(layer.secret_mounts))],
    "PipPackages": _pip_packages,
    "Requirements": _requirements,
    "Env": lambda layer, n: [L.EnvVars.create(dict(layer.env_vars))] if layer.env_vars else [],
    "WorkDir": lambda layer, n: [L.Workdir.create(layer.workdir)],
    "CopyConfig": _copy,
    "DockerIgnore": lambda layer, n: [L.DockerIgnore.create(os.fspath(layer.path))],
    "_DockerLines": _docker_lines,
    "UVProject": lambda layer, n: [UVProject.create(
        layer.pyproject, layer.uvlock, project_install_mode=layer.project_install_mode,
        **_pip(layer))],
    "PoetryProject": lambda layer, n: [PoetryProject.create(
        layer.pyproject, layer.poetry_lock, shlex.split(layer.extra_args or ""),
        _secrets(layer.secret_mounts), layer.project_install_mode)],
    "UVScript": lambda layer, n: [UVScript.create(layer.script, **_pip(layer))],
}

_UNSUPPORTED = {
    "PythonWheels": "build the wheel and install it with with_source_file(...) and "
                    "with_commands(['/opt/venv/bin/pip install /path/x.whl'])",
    "PixiProject": "pixi is not supported; use with_uv_project(...) or a Dockerfile",
    "PixiScript": "pixi is not supported; use from_uv_script(...) or a Dockerfile",
    "CodeBundleLayer": "Flyte resolves code bundles at run time; copy the code with "
                       "with_source_folder(...)",
}
