"""``BuildPlan``: what one engine call works from, computed once and shared by its steps.

An engine call (check, dry run, build) turns its input into a plan: the :class:`Image` (a
``flyte.Image`` converted, placed in the configured registry), one snapshot of its files
(identity), and, when a step needs it, the rendered Dockerfile and build context for the chosen
driver. The existence check, the dry run and the build read the same plan, so they can never
disagree about which files or which tag they mean.

>>> from imagebuild_nb import Image
>>> from imagebuild_nb.settings import Settings
>>> plan = BuildPlan.make(Image.from_base("busybox:1.36", name="demo").with_commands("true"),
...                       Settings())
>>> plan.uri == f"demo:{plan.tag}" and plan.spec_hash == plan.snapshot.spec_hash
True
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from imagebuild_nb.builders.target import BuildTarget
from imagebuild_nb.errors import BuilderUnavailableError, SpecError
from imagebuild_nb.settings import Settings
from imagebuild_nb.spec.base import DockerfileBase, mirrored
from imagebuild_nb.spec.convert import as_image
from imagebuild_nb.spec.image import Image
from imagebuild_nb.spec.reference import ImageReference
from imagebuild_nb.spec.secrets import SecretMount, resolve

if TYPE_CHECKING:
    from imagebuild_nb.builders.base import BuildRequest
    from imagebuild_nb.spec.convert import ImageLike
    from imagebuild_nb.spec.identity import Snapshot


@dataclass(frozen=True)
class BuildPlan:
    """One call's view of one image: identity now, rendering on first use."""

    settings: Settings
    image: Image | None  # None for a ready BuildTarget
    target_given: BuildTarget | None
    snapshot: Snapshot | None
    uri: str
    tag: str
    spec_hash: str | None
    platform: str | None
    is_default_base: bool
    explicit_tag: bool
    origin: str | None = None
    _targets: dict[str, BuildTarget] = dataclasses.field(default_factory=dict, compare=False,
                                                         repr=False)

    @classmethod
    def make(cls, obj: ImageLike | BuildTarget, settings: Settings,
             driver: str | None = None) -> BuildPlan:
        """``driver``: of the builder that will build it (the legacy one puts build CAs in the
        image, and so in the tag)."""
        if isinstance(obj, BuildTarget):
            return cls(settings, None, obj, None, obj.uri, obj.tag, obj.spec_hash,
                       obj.platform, obj.is_default_base, obj.explicit_tag)
        image = _placed(as_image(obj), settings, driver)
        snap = image.snapshot()  # the one walk of the spec's files for this call
        reference = image.reference_for(snap)
        return cls(settings, image, None, snap, str(reference), reference.tag or "latest",
                   snap.spec_hash, image.platform, image.is_default_base,
                   image.explicit_tag is not None, image.origin)

    @property
    def check_spec_hash(self) -> str | None:
        """The spec hash an existing image must carry: only when the user pinned the tag."""
        return self.spec_hash if self.explicit_tag else None

    @functools.cached_property
    def secrets(self) -> tuple[SecretMount, ...]:
        if self.image is None:
            return ()
        seen: dict[str, SecretMount] = {}
        for layer in self.image.layers:
            for mount in layer.secrets:
                seen.setdefault(mount.id, mount)
        return tuple(seen.values())

    def target(self, driver: str) -> BuildTarget:
        """Rendered for ``driver`` from this plan's snapshot (once per driver)."""
        if self.target_given is not None:
            return self.target_given
        if driver not in self._targets:
            from imagebuild_nb.builders.from_image import target_from_image

            assert self.image is not None
            self._targets[driver] = target_from_image(self.image, driver=driver,
                                                      settings=self.settings, snap=self.snapshot)
        return self._targets[driver]

    def request(self, driver: str, *, force: bool, with_secrets: bool) -> BuildRequest:
        """The builder's request; secrets are looked up on this machine only when building."""
        target = self.target(driver)
        if with_secrets and self.secrets:
            if driver == "docker-api":
                names = ", ".join(mount.name for mount in self.secrets)
                raise BuilderUnavailableError(
                    f"the docker-api driver (legacy builder) cannot pass build secrets ({names})",
                    hint="build with BuildKit: local_driver='buildkit' (a docker CLI with "
                         "BuildKit, see the docs), or remove secret_mounts")
            target = dataclasses.replace(target, secrets={
                mount.id: _source(mount) for mount in self.secrets})
        return target.request(driver, network_mode=self.settings.network_mode, no_cache=force)

    def refuse_upstream_tag(self) -> None:
        """No build may tag the image it starts from (or any upstream it names)."""
        if self.image is None or isinstance(self.image.base, DockerfileBase):
            return
        base = self.image.base.reference
        candidates = {str(ImageReference.parse(base)),
                      str(ImageReference.parse(mirrored(base, self.settings.base_image_mirror)))}
        if self.is_default_base or str(ImageReference.parse(self.uri)) in candidates:
            raise SpecError(
                f"nothing to build: {self.uri} is the unmodified base image {base}, and building "
                "it would overwrite that image in the engine", argument="image",
                hint="add a layer, or give the image a name of its own (name='my-image') to "
                     "build a copy")


def _source(mount: SecretMount) -> str:
    resolved = resolve(mount)
    return f"env:{resolved.env}" if resolved.env else str(resolved.file)


def _placed(image: Image, settings: Settings, driver: str | None) -> Image:
    """An image that names no registry goes to the configured one (``settings.registry``);
    with none configured it stays in the local engine (the embedded default)."""
    if settings.registry and image.registry is None and not image.is_default_base:
        image = image.with_registry(settings.registry)
    from imagebuild_nb.render.build_ca import placed  # legacy builder: build CAs join the tag

    return placed(image, settings, driver)
