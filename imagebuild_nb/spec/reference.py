"""Image references (``registry/name:tag@digest``) per the OCI / distribution reference grammar."""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagebuild_nb.errors import SpecError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"  # Go's \w is ASCII
_DIGEST = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}"

# Used with fullmatch: ``$`` alone also matches before a trailing newline.
PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
DOMAIN_RE = re.compile(_DOMAIN)
TAG_RE = re.compile(_TAG)
DIGEST_RE = re.compile(_DIGEST)
_MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference. ``registry`` is None for a reference without a domain part.

    >>> ref = ImageReference.parse("localhost:5001/team/app:1.0")
    >>> (ref.registry, ref.repository, ref.tag)
    ('localhost:5001', 'team/app', '1.0')
    """

    registry: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        # The text form must mean this reference: "localhost/x" without a registry would be
        # read back (by Docker too) as the repository "x" on the registry "localhost".
        if self.registry is None and names_registry(self.repository):
            raise SpecError(f"the repository {self.repository!r} starts with a registry host",
                            argument="name", hint=_NAME_HINT)

    @classmethod
    def parse(cls, text: str, *, argument: str = "reference") -> ImageReference:
        if not isinstance(text, str) or not text.strip():
            raise SpecError(
                f"{argument} must be a non-empty image reference such as 'registry:5000/name:tag'",
                argument=argument,
            )
        remainder = text.strip()
        digest = None
        if "@" in remainder:
            remainder, digest = remainder.split("@", 1)
            if not DIGEST_RE.fullmatch(digest):
                raise SpecError(
                    f"{argument}={text!r} has an invalid digest {digest!r}",
                    argument=argument,
                    hint="a digest looks like 'sha256:' followed by 64 hex digits",
                )
        tag = None
        last = remainder.rsplit("/", 1)[-1]
        if ":" in last:
            remainder, tag = remainder.rsplit(":", 1)
            validate_tag(tag, argument=argument)
        registry, _, path = remainder.partition("/")
        if not path or not _looks_like_domain(registry):
            registry, path = None, remainder  # type: ignore[assignment]
        elif not DOMAIN_RE.fullmatch(registry):
            raise SpecError(f"{argument}={text!r} has an invalid registry host {registry!r}",
                            argument=argument)
        validate_repository(path, argument=argument, original=text)
        return cls(registry=registry, repository=path, tag=tag, digest=digest)

    @property
    def name(self) -> str:
        """``registry/repository`` (or just the repository when there is no registry)."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str) -> ImageReference:
        validate_tag(tag, argument="tag")
        return ImageReference(self.registry, self.repository, tag, None)

    # -- how a registry client addresses it ----------------------------------------------------

    @property
    def registry_host(self) -> str:
        """The host to talk to: Docker Hub references go to its API host."""
        if self.registry in (None, DOCKER_HUB, "index.docker.io"):
            return DOCKER_HUB_API_HOST
        return self.registry

    @property
    def api_repository(self) -> str:
        """The repository as the registry API names it (``library/`` prefix on Docker Hub)."""
        if self.registry_host == DOCKER_HUB_API_HOST and "/" not in self.repository:
            return f"library/{self.repository}"
        return self.repository

    @property
    def manifest_reference(self) -> str:
        """What goes after ``/manifests/``: the digest when pinned, else the tag (``latest``)."""
        return self.digest or self.tag or "latest"


def _looks_like_domain(component: str) -> bool:
    # distribution's rule: the first component is a registry if it has a '.' or ':',
    # is 'localhost', or has upper-case letters (which repository paths may not).
    return "." in component or ":" in component or component == "localhost" or (
        component != component.lower()
    )


def names_registry(name: str) -> bool:
    """Whether Docker reads the first component of ``name`` as a registry host.

    >>> names_registry("localhost/x"), names_registry("team/x"), names_registry("localhost")
    (True, False, False)
    """
    first, slash, _ = name.partition("/")
    return bool(slash) and _looks_like_domain(first)


_NAME_HINT = ("give the registry separately: name='x', registry='localhost:5001' (Docker reads a "
              "first part with a '.' or ':', or equal to 'localhost', as a registry host, and "
              "'localhost' alone means port 443, or 80 over plain HTTP); to keep the image in "
              "the local engine, use a name whose first part is not a host, e.g. 'local/x'")


def validate_name(name: str, *, argument: str = "name") -> str:
    """An image name without registry: a repository whose first part is not a host."""
    if isinstance(name, str) and names_registry(name):
        raise SpecError(
            f"{argument}={name!r} starts with the registry host {name.partition('/')[0]!r}",
            argument=argument, hint=_NAME_HINT)
    return validate_repository(name, argument=argument)


def validate_tag(tag: str, *, argument: str = "tag") -> str:
    if not isinstance(tag, str) or not TAG_RE.fullmatch(tag):
        raise SpecError(
            f"{argument}={tag!r} is not a valid image tag",
            argument=argument,
            hint="a tag is 1-128 characters of letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-'",
        )
    return tag


def validate_repository(path: str, *, argument: str = "name", original: str | None = None) -> str:
    shown = original if original is not None else path
    if not isinstance(path, str) or not PATH_RE.fullmatch(path):
        raise SpecError(
            f"{argument}={shown!r} is not a valid image name",
            argument=argument,
            hint="use lower-case letters, digits and separators ('.', '_', '__', '-') between "
            "them, with '/' between path components, e.g. 'team/analysis'",
        )
    if len(path) > _MAX_NAME_LENGTH:
        raise SpecError(f"{argument}={shown!r} is longer than {_MAX_NAME_LENGTH} characters",
                        argument=argument)
    return path


def validate_registry(registry: str, *, argument: str = "registry") -> str:
    """``host[:port]`` optionally followed by a namespace (``ghcr.io/org``) that joins the name."""
    host, _, namespace = registry.partition("/") if isinstance(registry, str) else ("", "", "")
    if not DOMAIN_RE.fullmatch(host) or (namespace and not PATH_RE.fullmatch(namespace)):
        raise SpecError(
            f"{argument}={registry!r} is not a valid registry host",
            argument=argument,
            hint="give host[:port] without a scheme, e.g. 'localhost:5001' or 'ghcr.io/org' "
            "(a path after the host goes into the image name)",
        )
    return registry
