"""Build secrets of a remote build: the client names them, the service's operator supplies them.

A client never sends a secret's value. Its submission carries ``secrets``: BuildKit secret id
(what the Dockerfile's ``RUN --mount=type=secret,id=..`` names) -> secret name. The service
looks each name up in its own configuration (``ImageBuildServiceApp.build_secrets``: name ->
``{"env": VAR}`` or ``{"file": PATH}`` on the service host) when it runs the build; a name it
does not have is refused at submission. Only names are ever stored; the values are read by the
docker CLI itself, and kept in the service's memory only to scrub them from logs.

The name a client sends (:func:`imagebuild_nb.spec.secrets.remote_name`): an environment
variable secret's variable name (``"GITHUB_PAT"``), a file secret's file name
(``"/home/me/deploy_key"`` -> ``"deploy_key"``), a flyte secret's ``group_key``.

>>> secrets = ServiceSecrets.from_config({"GITHUB_PAT": {"env": "SERVICE_PAT"}})
>>> secrets.missing({"env-GITHUB_PAT-0123456789ab": "GITHUB_PAT", "x": "NPM_TOKEN"})
['NPM_TOKEN']
>>> secrets.sources({"env-GITHUB_PAT-0123456789ab": "GITHUB_PAT"})
{'env-GITHUB_PAT-0123456789ab': 'env:SERVICE_PAT'}
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# What a submission's ids and names may look like: one token each, nothing a CLI could misread.
ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_MIN_SCRUBBED = 4  # shorter values would scrub ordinary words from logs


class SecretConfigError(ValueError):
    """``build_secrets`` is malformed; the message names the entry and the accepted form."""


@dataclass(frozen=True)
class ServiceSecret:
    """Where the service host keeps one secret: an environment variable or a file."""

    env: str | None = None
    file: str | None = None

    def source(self) -> str:
        """The BuildKit CLI's source: ``env:VAR`` (it reads the variable) or a file path."""
        return f"env:{self.env}" if self.env else str(self.file)

    def value(self) -> str | None:
        """The value now, only so logs can be scrubbed of it; None when unset/unreadable."""
        if self.env:
            return os.environ.get(self.env)
        try:
            with open(str(self.file), encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return None


@dataclass(frozen=True)
class ServiceSecrets:
    """The secrets this service lends to builds, by name."""

    entries: Mapping[str, ServiceSecret]

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> ServiceSecrets:
        entries: dict[str, ServiceSecret] = {}
        form = 'name -> {"env": "VARIABLE"} or {"file": "/path/on/the/service/host"}'
        for name, where in (config or {}).items():
            if not isinstance(name, str) or not NAME_RE.fullmatch(name):
                raise SecretConfigError(f"build_secrets: {name!r} is not a usable secret name "
                                        "(letters, digits, '.', '_', '-')")
            if not isinstance(where, Mapping) or len(where) != 1 or not (
                    set(where) <= {"env", "file"}) or not isinstance(
                    next(iter(where.values())), str):
                raise SecretConfigError(f"build_secrets[{name!r}] must be {form}")
            env, file = where.get("env"), where.get("file")
            if env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
                raise SecretConfigError(f"build_secrets[{name!r}]: {env!r} is not a variable name")
            if file is not None and not os.path.isabs(file):
                raise SecretConfigError(
                    f"build_secrets[{name!r}]: {file!r} is not an absolute path")
            entries[name] = ServiceSecret(env=env, file=file)
        return cls(entries)

    def missing(self, secrets: Mapping[str, str]) -> list[str]:
        """The names of ``secrets`` (id -> name) this service does not have, sorted."""
        return sorted({name for name in secrets.values() if name not in self.entries})

    def sources(self, secrets: Mapping[str, str]) -> dict[str, str]:
        """id -> the BuildKit CLI's source, for a build's request (names must all be known)."""
        return {secret_id: self.entries[name].source() for secret_id, name in secrets.items()}

    def values(self) -> list[str]:
        """Every configured value readable now, for the service's log redactor."""
        values: list[str] = []
        for entry in self.entries.values():
            value = entry.value()
            for candidate in (value, value.strip() if value else None):
                if candidate and len(candidate) >= _MIN_SCRUBBED:
                    values.append(candidate)
        return values


def read_config_file(path: str) -> dict[str, Any]:
    """``build_secrets`` from a JSON file (checked); SecretConfigError naming the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        raise SecretConfigError(f"build_secrets file {path}: {error}") from None
    if not isinstance(data, dict):
        raise SecretConfigError(f"build_secrets file {path} must hold a JSON object")
    ServiceSecrets.from_config(data)
    return data


def check_submitted(secrets: Any) -> dict[str, str]:
    """A submission's ``secrets`` field as id -> name; ValueError naming what is wrong."""
    if secrets is None:
        return {}
    if not isinstance(secrets, dict) or len(secrets) > 100:
        raise ValueError("secrets must be a JSON object of at most 100 secret id -> name")
    for secret_id, name in secrets.items():
        if not ID_RE.fullmatch(secret_id) or not isinstance(name, str) or not NAME_RE.fullmatch(
                name):
            raise ValueError(f"secrets: {secret_id!r} -> {name!r} is not a secret id and name "
                             "(letters, digits, '.', '_', '-')")
    return dict(secrets)


def missing_message(missing: list[str]) -> str:
    """The refusal for names the service lacks: which ones, and who fixes it how."""
    names = ", ".join(missing)
    return (f"the build service has no build secret named {names}: ask its operator to add "
            f"{'it' if len(missing) == 1 else 'them'} to ImageBuildServiceApp.build_secrets "
            '(name -> {"env": VAR} or {"file": PATH} on the service host), or build locally '
            "with builder='local'")
