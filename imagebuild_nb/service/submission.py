"""Build submissions: the JSON body of ``POST /imagebuild/api/builds``, checked field by field.

Unknown fields, wrong types and invalid values raise ``SubmissionError`` naming the field, which
the handler turns into a 400. ``dedup_key`` identifies identical builds: same target, same
context bytes, same Dockerfile and options (``force`` excluded: a forced build is always new).

>>> sub = Submission.from_json({"uri": "localhost:5001/demo:1", "context": "sha256:" + "a" * 64})
>>> (sub.dockerfile, sub.push, sub.force)
('Dockerfile', True, False)
>>> Submission.from_json({"uri": "x:1", "context": "sha256:" + "a" * 64, "colour": "red"})
Traceback (most recent call last):
...
imagebuild_nb.service.submission.SubmissionError: unknown field(s) in the build submission: colour
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from imagebuild_nb.errors import SpecError
from imagebuild_nb.service.build_secrets import check_submitted
from imagebuild_nb.spec.image import Image, canonical_platform
from imagebuild_nb.spec.reference import ImageReference

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_FIELDS = {"uri", "context", "dockerfile", "push", "force", "spec", "secrets", "platform"}
# os/arch[/variant] as the engines name them, comma-separated for a multi-platform index.
MAX_PLATFORMS = 8
PLATFORM_RE = re.compile(r"^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?(,[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?)*$")
# A submission is a few levels deep (an Image spec: 4). The limit stops hostile nesting before
# anything recursive (decoding, validation, hashing, storing) walks it.
MAX_JSON_DEPTH = 32


class SubmissionError(ValueError):
    """The submission is malformed; the message names the field and what is expected."""


class UserLimitError(SubmissionError):
    """The submitting user has as many unfinished builds as one user may have (HTTP 429)."""


def user_limit_message(owner: str, unfinished: int, limit: int) -> str:
    return (f"{owner} already has {unfinished} unfinished build(s) on this service, the most one "
            f"user may have (max_builds_per_user={limit}): wait for one to end or cancel one, "
            "or ask the service's operator to raise the limit")


def parse_json_body(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The request body as JSON; SubmissionError for non-JSON and for nesting past ``max_depth``.

    >>> parse_json_body(b"[" * 40 + b"]" * 40)
    Traceback (most recent call last):
    ...
    imagebuild_nb.service.submission.SubmissionError: the body is nested too deeply: JSON \
objects and arrays may nest at most 32 levels
    """
    too_deep = SubmissionError(
        "the body is nested too deeply: "
        f"JSON objects and arrays may nest at most {max_depth} levels"
    )
    try:
        data = json.loads(body or b"null")
    except RecursionError:  # deeper than the interpreter's stack: the decoder gives up
        raise too_deep from None
    except ValueError:
        raise SubmissionError("the body must be JSON") from None
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:  # iterative: the check itself must not recurse
        value, depth = pending.pop()
        if isinstance(value, (dict, list)):
            if depth > max_depth:
                raise too_deep
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)
    return data


@dataclass(frozen=True)
class Submission:
    uri: str
    context: str
    dockerfile: str = "Dockerfile"
    push: bool = True
    force: bool = False
    spec: dict[str, Any] | None = None
    # Build secrets the RUN steps mount: BuildKit id -> name in the service's configuration.
    # Names only: a client never sends a value (see build_secrets).
    secrets: dict[str, str] = field(default_factory=dict)
    # The target platform(s), canonical (sorted, no repeats); None: the engine's own.
    platform: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> Submission:
        if not isinstance(data, dict):
            raise SubmissionError("the build submission must be a JSON object")
        unknown = sorted(set(data) - _FIELDS)
        if unknown:
            raise SubmissionError(f"unknown field(s) in the build submission: {', '.join(unknown)}")
        for name in ("uri", "context"):
            if name not in data:
                raise SubmissionError(f"the build submission needs the field {name!r}")
        uri = _string(data, "uri")
        try:
            reference = ImageReference.parse(uri, argument="uri")
        except SpecError as error:
            raise SubmissionError(str(error)) from None
        if reference.digest or not reference.tag:
            raise SubmissionError("uri must name a tag to build, e.g. 'localhost:5001/demo:1'")
        context = _string(data, "context")
        if not DIGEST_RE.match(context):
            raise SubmissionError("context must be 'sha256:' followed by 64 lowercase hex digits")
        dockerfile = _string(data, "dockerfile", "Dockerfile")
        parts = dockerfile.split("/")
        if dockerfile.startswith("/") or ".." in parts or not dockerfile or "\x00" in dockerfile:
            raise SubmissionError("dockerfile must be a relative path inside the context")
        spec = data.get("spec")
        if spec is not None:
            if not isinstance(spec, dict):
                raise SubmissionError("spec must be a JSON object (Image.to_dict())")
            _check_spec(spec)
        try:
            secrets = check_submitted(data.get("secrets"))
        except ValueError as error:
            raise SubmissionError(str(error)) from None
        return cls(
            uri=uri,
            context=context,
            dockerfile=dockerfile,
            push=_bool(data, "push", True),
            force=_bool(data, "force", False),
            spec=spec,
            secrets=secrets,
            platform=_platform(data),
        )

    @property
    def dedup_key(self) -> str:
        identity = {
            "uri": self.uri,
            "context": self.context,
            "dockerfile": self.dockerfile,
            "push": self.push,
            "spec": self.spec,
            **({"secrets": self.secrets} if self.secrets else {}),
            **({"platform": self.platform} if self.platform else {}),
        }
        encoded = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(encoded.encode()).hexdigest()


def _check_spec(spec: dict[str, Any]) -> None:
    """Validate with the client's own decoder (``Image.from_dict``: fields, version, every
    layer's values), so the service stores and shows only a spec the client could have sent."""
    try:
        Image.from_dict(spec)
    except (SpecError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise SubmissionError(f"spec is not a valid image spec: {error}") from None


def _platform(data: dict[str, Any]) -> str | None:
    if data.get("platform") is None:
        return None
    value = _string(data, "platform")
    if not PLATFORM_RE.fullmatch(value):
        raise SubmissionError(
            f"platform {value!r} is not a platform: use os/arch[/variant] in lower case, "
            "comma-separated for several, e.g. 'linux/amd64' or 'linux/amd64,linux/arm64'")
    platforms = canonical_platform(value) or ""
    if platforms.count(",") >= MAX_PLATFORMS:  # each one is a build of its own (qemu: slow)
        raise SubmissionError(f"platform names more than {MAX_PLATFORMS} platforms")
    return platforms


def _string(data: dict[str, Any], name: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise SubmissionError(f"{name} must be a string")
    if len(value) > 1024:
        raise SubmissionError(f"{name} is too long (at most 1024 characters)")
    return value


def _bool(data: dict[str, Any], name: str, default: bool) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise SubmissionError(f"{name} must be true or false")
    return value
