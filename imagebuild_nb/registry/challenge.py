"""``WWW-Authenticate`` challenges (RFC 7235) as registries send them.

>>> c = parse_challenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"')
>>> (c.scheme, c.realm, c.service, c.scope)
('bearer', 'https://auth.example/token', 'reg', 'repository:a/b:pull')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
_SCHEME = re.compile(r"[\s,]*([A-Za-z][A-Za-z0-9_-]*)(?=[\s,]|$)\s*")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic" or "bearer"
    params: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scope(self) -> str | None:
        return self.params.get("scope")

    @property
    def error(self) -> str | None:
        return self.params.get("error")


def parse_challenge(header: str | None) -> Challenge | None:
    """The first Basic or Bearer challenge in the header, or None."""
    if not header:
        return None
    for challenge in _split(header):
        if challenge.scheme in ("basic", "bearer"):
            return challenge
    return None


def _split(header: str) -> list[Challenge]:
    challenges: list[Challenge] = []
    position = 0
    while position < len(header):
        scheme_match = _SCHEME.match(header, position)
        if scheme_match is None:
            break
        scheme = scheme_match.group(1).lower()
        position = scheme_match.end()
        params: dict[str, str] = {}
        while True:
            param = _PARAM.match(header, position)
            if param is None:
                break
            # A bare word followed by "=" would be ambiguous with the next scheme; params win.
            quoted, bare = param.group(2), param.group(3)
            value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            params[param.group(1).lower()] = value
            position = param.end()
        challenges.append(Challenge(scheme, params))
        if position < len(header) and header[position] == ",":
            position += 1
    return challenges
