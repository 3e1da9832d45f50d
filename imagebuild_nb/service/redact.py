"""Keep the service's secrets (its token, its registry credentials) out of events and responses.

Build output can echo anything (a failing ``docker login``, a URL with credentials, an error
from the push); every event's text passes through a ``Redactor`` before it is stored or sent.

>>> Redactor(["hunter22"]).text("login with hunter22 failed")
'login with *** failed'
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from imagebuild_nb.events import BuildEvent

log = logging.getLogger(__name__)

MASK = "***"
_MIN_SECRET_LENGTH = 4


class Redactor:
    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        unique = {secret for secret in secrets if secret and len(secret) >= _MIN_SECRET_LENGTH}
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted(unique, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def event(self, event: BuildEvent) -> BuildEvent:
        changes: dict[str, Any] = {}  # field name -> its redacted str or tuple of str
        for spec in dataclasses.fields(event):
            value = getattr(event, spec.name)
            if isinstance(value, str):
                cleaned = self.text(value)
                if cleaned != value:
                    changes[spec.name] = cleaned
            elif isinstance(value, tuple) and all(isinstance(item, str) for item in value):
                cleaned_items = tuple(self.text(item) for item in value)
                if cleaned_items != value:
                    changes[spec.name] = cleaned_items
        return dataclasses.replace(event, **changes) if changes else event


def docker_config_secrets(environ: dict[str, str] | None = None) -> list[str]:
    """Every credential string in the Docker config the service builds and pushes with."""
    environ = dict(os.environ) if environ is None else environ
    directory = Path(environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    path = directory / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    secrets: list[str] = []
    for entry in (config.get("auths") or {}).values():
        if not isinstance(entry, dict):
            continue
        for key in ("auth", "password", "identitytoken", "registrytoken"):
            value = entry.get(key)
            if isinstance(value, str):
                secrets.append(value)
        encoded = entry.get("auth")
        if isinstance(encoded, str):
            try:
                decoded = base64.b64decode(encoded).decode()
            except (ValueError, UnicodeDecodeError):
                continue
            secrets.append(decoded)
            secrets.append(decoded.partition(":")[2])
    return secrets
