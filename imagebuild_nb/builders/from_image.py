"""From an ``Image`` spec to a :class:`BuildTarget`: the rendered Dockerfile and its context.

The rendering (``imagebuild_nb.render``) is pure; this only picks the Dockerfile form the
driver needs (BuildKit or plain) and adapts the context to the builders' tar-writer protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from imagebuild_nb.builders.target import FORMS, BuildTarget
from imagebuild_nb.labels import VERSION_LABEL
from imagebuild_nb.settings import Settings

if TYPE_CHECKING:
    from imagebuild_nb.render import BuildContext


@dataclass(frozen=True)
class RenderedContext:
    """A rendered build context (Dockerfile included) as a builder context source."""

    context: BuildContext

    def write_tar(self, stream: IO[bytes]) -> None:
        self.context.write_tar(stream)

    def file_list(self) -> list[str]:
        return [entry.path for entry in self.context.entries if entry.kind != "directory"]


def target_from_image(image: Any, *, driver: str, settings: Settings,
                      snap: Any = None) -> BuildTarget:
    from imagebuild_nb import __version__
    from imagebuild_nb.render import build_context

    form = FORMS.get(driver, "buildkit")
    context = build_context(image, buildkit=form == "buildkit", settings=settings, snap=snap)
    return BuildTarget(
        uri=context.uri,
        dockerfiles={form: context.dockerfile},
        context=RenderedContext(context),
        dockerfile_path=context.dockerfile_path,
        dockerfile_in_context=True,
        build_args=dict(context.build_args),
        labels={**context.labels, VERSION_LABEL: __version__},
        spec_hash=context.spec_hash,
        platform=context.platform,
        is_default_base=bool(image.is_default_base),
        explicit_tag=getattr(image, "explicit_tag", None) is not None,
    )
