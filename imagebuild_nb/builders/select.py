"""Choosing a builder by name: "local" (BuildKit CLI when usable, else the Engine API) and
plug-ins registered in the ``imagebuild_nb.builders`` entry-point group.

A plug-in's entry point names a factory ``(settings) -> Builder``::

    [project.entry-points."imagebuild_nb.builders"]
    remote = "imagebuild_nb.builders.remote:RemoteBuilder"

>>> from imagebuild_nb.settings import Settings
>>> get_builder("local", Settings(local_driver="docker-api")).driver
'docker-api'
"""

from __future__ import annotations

import logging
import os
import threading
from importlib.metadata import entry_points
from typing import Any

from imagebuild_nb.builders.base import Builder
from imagebuild_nb.builders.buildkit_cli import BuildKitCliBuilder, find_cli
from imagebuild_nb.builders.docker_api import DockerApiBuilder
from imagebuild_nb.builders.podman import podman_builder
from imagebuild_nb.errors import BuilderUnavailableError
from imagebuild_nb.settings import Settings

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "imagebuild_nb.builders"
_ENGINE_ENV = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
_lock = threading.Lock()
_cache: dict[tuple[Any, ...], Builder] = {}


def local_builder(settings: Settings) -> Builder:
    """The local driver the settings ask for; ``auto`` takes BuildKit when a CLI supports it."""
    silence = settings.build_silence_timeout
    if settings.local_driver == "docker-api":
        return DockerApiBuilder(silence_timeout=silence)
    cli = find_cli(settings.docker_cli)
    if cli is not None:
        return BuildKitCliBuilder(cli, docker_cli=settings.docker_cli, silence_timeout=silence)
    if settings.local_driver == "buildkit":  # raises when used
        return BuildKitCliBuilder(None, docker_cli=settings.docker_cli, silence_timeout=silence)
    log.info("no docker CLI with BuildKit found; building through the Engine API")
    return DockerApiBuilder(silence_timeout=silence)


def builder_names() -> list[str]:
    return sorted({"local", "local-podman",
                   *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})


def get_builder(name: str, settings: Settings) -> Builder:
    """The builder called ``name``, reused while the settings and engine environment stay put."""
    key = (name, settings, *(os.environ.get(var) for var in _ENGINE_ENV))
    with _lock:
        if key in _cache:
            return _cache[key]
    if name == "local":
        builder = local_builder(settings)
    elif name == "local-podman":
        builder = podman_builder(settings)
    else:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not found:
            raise BuilderUnavailableError(
                f"no builder named {name!r}",
                hint=f"use one of {', '.join(builder_names())}, or install the package that "
                f"registers it in the {ENTRY_POINT_GROUP!r} entry-point group",
            )
        builder = found[0].load()(settings)
    with _lock:
        return _cache.setdefault(key, builder)


def close_builders() -> None:
    """Forget the cached builders and release what they hold (clients, connections)."""
    with _lock:
        builders = list(_cache.values())
        _cache.clear()
    for builder in builders:
        close = getattr(builder, "close", None)
        if callable(close):
            close()
