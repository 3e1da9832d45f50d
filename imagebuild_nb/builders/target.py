"""``BuildTarget``: one image to build, in builder terms (what the engine hands to a builder).

The engine makes one from an ``Image`` spec (rendered Dockerfile forms + its context); callers
with a Dockerfile of their own (tests, the CLI, plug-ins) can build one directly.

>>> from imagebuild_nb.builders.context import InMemoryContext
>>> target = BuildTarget(uri="localhost:5001/demo:1",
...                      dockerfiles={"plain": "FROM busybox\\n"}, context=InMemoryContext({}))
>>> target.request("buildkit", network_mode="host").dockerfile
'FROM busybox\\n'
"""

from __future__ import annotations

import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO

from imagebuild_nb.builders.base import BuildContextSource, BuildRequest
from imagebuild_nb.spec.reference import ImageReference

# The Dockerfile form each driver wants: BuildKit syntax (cache mounts, secrets) or plain.
FORMS = {"buildkit": "buildkit", "docker-api": "plain"}


@dataclass(frozen=True)
class PrefixedContext:
    """A context with extra files written first (e.g. the rendered Dockerfile).

    A tar is a sequence of members, so writing ours before the inner stream needs no copy.
    """

    inner: BuildContextSource
    files: Mapping[str, bytes]

    def write_tar(self, stream: IO[bytes]) -> None:
        for name in sorted(self.files):
            data = self.files[name]
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            stream.write(info.tobuf(format=tarfile.PAX_FORMAT))
            stream.write(data)
            stream.write(b"\0" * (-len(data) % tarfile.BLOCKSIZE))
        self.inner.write_tar(stream)

    def file_list(self) -> list[str]:
        return sorted(set(self.files) | set(self.inner.file_list()))


@dataclass(frozen=True)
class BuildTarget:
    uri: str
    # form ("buildkit" | "plain") -> Dockerfile text; a missing form falls back to the other.
    dockerfiles: Mapping[str, str]
    # The build context. With ``dockerfile_in_context`` False the engine adds the Dockerfile.
    context: BuildContextSource
    dockerfile_path: str = "Dockerfile"
    dockerfile_in_context: bool = False
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    spec_hash: str | None = None
    platform: str | None = None
    # An unmodified default base image: nothing to build, it exists upstream.
    is_default_base: bool = False
    # The user pinned the tag: existence must also match the spec hash label.
    explicit_tag: bool = False

    @property
    def reference(self) -> ImageReference:
        return ImageReference.parse(self.uri, argument="uri")

    @property
    def tag(self) -> str:
        return self.reference.tag or "latest"

    def dockerfile(self, driver: str) -> str:
        form = FORMS.get(driver, "buildkit")
        if form in self.dockerfiles:
            return self.dockerfiles[form]
        return next(iter(self.dockerfiles.values()))

    def request(self, driver: str, *, network_mode: str | None = None, no_cache: bool = False,
                push: bool | None = None) -> BuildRequest:
        text = self.dockerfile(driver)
        context = self.context
        if not self.dockerfile_in_context:
            context = PrefixedContext(context, {self.dockerfile_path: text.encode()})
        return BuildRequest(
            dockerfile=text, context=context, tags=(self.uri,),
            dockerfile_path=self.dockerfile_path, build_args=dict(self.build_args),
            labels=dict(self.labels), network_mode=network_mode, no_cache=no_cache,
            platform=self.platform, secrets=dict(self.secrets),
            push=self.reference.registry is not None if push is None else push,
        )
