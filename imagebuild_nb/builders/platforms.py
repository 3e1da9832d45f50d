"""Multi-platform builds (``platform="linux/amd64,linux/arm64"``): one index under one tag.

Builders that build an index themselves (podman's ``--manifest``) say so with
:class:`BuildsIndexes`. For the Docker engine, whose classic image store holds one platform per
tag, :class:`PerPlatformBuilder` runs one build per platform (a foreign one runs under qemu
through binfmt_misc), pushes each under ``<tag>-<os>-<arch>``, then PUTs the index over them
under the tag through the project's registry client (:mod:`imagebuild_nb.registry.index`).
The remote builder hands the platforms to the build service, which does the same on its engine.
A builder that can do neither (the Engine-API driver) gets a clear error naming those that can.

>>> from imagebuild_nb.builders.context import InMemoryContext
>>> request = BuildRequest(dockerfile="", context=InMemoryContext({}), tags=("r:5000/a:1",),
...                        platform="linux/amd64,linux/arm64", push=True)
>>> [r.tags[0] for _, r in per_platform_requests(request)]
['r:5000/a:1-linux-amd64', 'r:5000/a:1-linux-arm64']
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from imagebuild_nb.builders.base import Builder, BuildRequest
from imagebuild_nb.errors import BuilderUnavailableError, ImageBuildError
from imagebuild_nb.events import (
    BuildCancelled,
    BuildEvent,
    BuildFailed,
    BuildFinished,
    LogLine,
    StepStarted,
)
from imagebuild_nb.registry import default_keychain
from imagebuild_nb.registry.client import RegistryClient
from imagebuild_nb.registry.index import push_index
from imagebuild_nb.settings import Settings
from imagebuild_nb.spec.reference import ImageReference

CAPABLE = "builder='local' (the Docker engine, one build per platform through qemu) or " \
          "builder='local-podman' (podman --manifest)"


@runtime_checkable
class BuildsIndexes(Builder, Protocol):
    """A builder whose ``build`` makes and pushes a multi-platform index by itself."""

    def builds_indexes(self) -> bool: ...


def platforms_of(request: BuildRequest) -> list[str]:
    return [p for p in (request.platform or "").split(",") if p]


def per_platform_requests(request: BuildRequest) -> list[tuple[str, BuildRequest]]:
    """One single-platform request per platform, tagged ``<tag>-<os>-<arch>[-<variant>]``."""
    tag = request.primary_tag
    return [(platform, dataclasses.replace(request, platform=platform,
                                           tags=(f"{tag}-{platform.replace('/', '-')}",)))
            for platform in platforms_of(request)]


def for_request(builder: Builder, request: BuildRequest, settings: Settings) -> Builder:
    """The builder that builds ``request``: ``builder`` itself for one platform or when it
    builds indexes, else one build per platform around it."""
    if len(platforms_of(request)) < 2 or isinstance(builder, BuildsIndexes):
        return builder
    if builder.driver == "docker-api":
        raise BuilderUnavailableError(
            f"the Engine-API driver (the legacy builder) builds for the engine's own platform "
            f"only, so it cannot build {request.platform}",
            hint="use local_driver='buildkit' (or 'auto') with a docker CLI that has BuildKit, "
                 "or builder='local-podman'")
    return PerPlatformBuilder(builder, settings)


class PerPlatformBuilder:
    """One build per platform with ``inner``, then the index; see the module docstring."""

    def __init__(self, inner: Builder, settings: Settings) -> None:
        self.inner = inner
        self.settings = settings
        self.name = inner.name
        self.driver = inner.driver

    def ensure_available(self) -> None:
        self.inner.ensure_available()

    def describe(self, request: BuildRequest) -> str:
        lines = [f"{platform}: {self.inner.describe(sub)}"
                 for platform, sub in per_platform_requests(request)]
        lines.append(f"then an index of {', '.join(platforms_of(request))} pushed as "
                     f"{request.primary_tag} through the registry API")
        return "\n".join(lines)

    def build(self, request: BuildRequest, cancel: threading.Event) -> Iterator[BuildEvent]:
        reference = ImageReference.parse(request.primary_tag)
        if not request.push or reference.registry is None:
            yield BuildFailed(
                message=f"a multi-platform image ({request.platform}) needs a registry: the "
                        "Docker engine's image store holds one platform per tag",
                step="push", lines=("set registry=... on the image or the registry setting, "
                                    f"or build one platform; or use {CAPABLE}",))
            return
        pushed: list[tuple[str, str]] = []
        for platform, sub in per_platform_requests(request):
            yield LogLine(text=f"building {platform} as {sub.primary_tag}")
            for event in self.inner.build(sub, cancel):
                if isinstance(event, StepStarted):  # the platform names the stage
                    yield dataclasses.replace(event, stage=platform)
                elif isinstance(event, BuildFinished):
                    if not event.digest:
                        yield BuildFailed(message=f"{platform}: the push of {sub.primary_tag} "
                                          "reported no digest", step="push")
                        return
                    pushed.append((platform, event.digest))
                elif isinstance(event, BuildFailed):
                    yield dataclasses.replace(event, message=f"{platform}: {event.message}")
                    return
                elif isinstance(event, BuildCancelled):
                    yield event
                    return
                else:
                    yield event
        if cancel.is_set():
            yield BuildCancelled(message="cancelled before the index was pushed")
            return
        yield LogLine(text=f"pushing the index of {', '.join(p for p, _ in pushed)} as "
                           f"{request.primary_tag}")
        try:
            digest, _ = asyncio.run(self._push_index(reference, pushed))
        except ImageBuildError as error:
            yield BuildFailed(message=f"pushing the index {request.primary_tag} failed: {error}",
                              step="push")
            return
        yield BuildFinished(uri=request.primary_tag, digest=digest, pushed=True,
                            platform_digests=dict(pushed))

    async def _push_index(self, reference: ImageReference, pushed: list[tuple[str, str]]
                          ) -> tuple[str, object]:
        from imagebuild_nb.checkers.existence import registry_hosts

        async with RegistryClient(keychain=default_keychain(),
                                  timeout=self.settings.registry_timeout,
                                  hosts=registry_hosts(self.settings)) as client:
            return await push_index(client, reference, pushed)

    def close(self) -> None:
        """The inner builder is the engine's (cached, closed with it): nothing of ours."""
