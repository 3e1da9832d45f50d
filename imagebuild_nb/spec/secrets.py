"""Build secrets: a value a RUN step may read and no layer, log, event or tag ever holds.

A :class:`SecretMount` names where the value comes from on the building machine and how the RUN
steps of its layer see it; the value itself is read only when the build starts (see
:func:`resolve`). Forms accepted by ``secret_mounts=``:

- ``"GITHUB_PAT"``: an environment variable of the building machine, seen by the step as the
  environment variable of the same name;
- ``"/path/to/file"`` (any string with a ``/``): a file of the building machine, seen by the step
  as the file ``/run/secrets/<file name>``;
- a ``flyte.Secret`` (key, group, as_env_var, mount), resolved the way Flyte's local builder does:
  the environment variable ``GROUP_KEY`` (upper case), else the file ``/etc/secrets/group_key``.

>>> SecretMount.parse("GITHUB_PAT").env
'GITHUB_PAT'
>>> SecretMount.parse("/tmp/token").target
'/run/secrets/token'
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from imagebuild_nb.errors import SpecError

_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TARGET_RE = re.compile(r"^/[A-Za-z0-9._/-]+$")
SECRETS_DIR = "/run/secrets"
FLYTE_SECRETS_DIR = "/etc/secrets"

SourceKind = Literal["env", "file", "flyte"]


@dataclass(frozen=True)
class SecretMount:
    """One secret for the RUN steps of a layer: its source (never its value) and its target.

    ``kind``: ``env`` (``source`` is a variable name), ``file`` (``source`` is a path) or
    ``flyte`` (``source`` is Flyte's ``group_key`` name: the variable ``GROUP_KEY``, else the
    file ``/etc/secrets/group_key``). The step sees it as the variable ``env`` or the file
    ``target``.
    """

    kind: SourceKind
    source: str
    env: str | None = None
    target: str | None = None

    @classmethod
    def parse(cls, value: object) -> SecretMount:
        if isinstance(value, SecretMount):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        if type(value).__name__ == "Secret" and hasattr(value, "key"):
            return _from_flyte(value)
        if not isinstance(value, (str, os.PathLike)):
            raise SpecError(f"secret_mounts: {value!r} is not a secret", argument="secret_mounts",
                            hint="give an environment variable name ('GITHUB_PAT'), a file path "
                                 "('/run/keys/pat') or a flyte.Secret")
        text = os.fspath(value)
        if "/" in text:
            path = os.path.abspath(text)
            name = os.path.basename(path)
            if not name or not _TARGET_RE.fullmatch(f"/{name}"):
                raise SpecError(f"secret_mounts: {text!r} has no usable file name",
                                argument="secret_mounts",
                                hint="name the file with letters, digits, '.', '_' or '-'")
            return cls("file", path, target=f"{SECRETS_DIR}/{name}")
        if not _ENV_RE.fullmatch(text):
            raise SpecError(f"secret_mounts: {text!r} is neither an environment variable name "
                            "nor a file path", argument="secret_mounts",
                            hint="e.g. secret_mounts=['GITHUB_PAT'] or ['/run/keys/pat']")
        return cls("env", text, env=text)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SecretMount:
        allowed = {"kind", "source", "env", "target"}
        unknown = sorted(set(data) - allowed)
        if unknown or data.get("kind") not in ("env", "file", "flyte"):
            raise SpecError(f"secret_mounts: {dict(data)!r} is not a secret mount",
                            argument="secret_mounts", hint=f"fields: {sorted(allowed)}")
        mount = cls(data["kind"], str(data.get("source", "")), data.get("env"),
                    data.get("target"))
        mount.validate()
        return mount

    def validate(self) -> None:
        if self.env is not None and not _ENV_RE.fullmatch(self.env):
            raise SpecError(f"secret_mounts: {self.env!r} is not a variable name",
                            argument="secret_mounts")
        if self.target is not None and (not _TARGET_RE.fullmatch(self.target)
                                        or ".." in self.target.split("/")):
            raise SpecError(f"secret_mounts: {self.target!r} is not a safe file path",
                            argument="secret_mounts")
        if (self.env is None) == (self.target is None):
            raise SpecError("secret_mounts: a secret is seen as a variable or as a file",
                            argument="secret_mounts")
        if not self.source or "\n" in self.source or "\0" in self.source:
            raise SpecError("secret_mounts: a secret needs a source", argument="secret_mounts")

    @property
    def id(self) -> str:
        """The BuildKit secret id: derived from the source's name, never from its value."""
        digest = hashlib.sha256(f"{self.kind}:{self.source}".encode()).hexdigest()[:12]
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(self.source))[:40]
        return f"{self.kind}-{stem}-{digest}"

    @property
    def name(self) -> str:
        """How errors and dry runs name it (its source, not its value)."""
        return {"env": f"${self.source}", "file": self.source,
                "flyte": f"{self.source} (flyte secret)"}[self.kind]

    @property
    def mount_path(self) -> str:
        """Where the RUN step's mount puts the value (an env-exposed one is read from here)."""
        return self.target or f"{SECRETS_DIR}/{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "env": self.env, "target": self.target}


def _from_flyte(secret: Any) -> SecretMount:
    key, group = str(secret.key), getattr(secret, "group", None)
    source = "_".join(part for part in (group, key) if part)
    mount = getattr(secret, "mount", None)
    env = getattr(secret, "as_env_var", None)
    if mount:
        return SecretMount("flyte", source, target=str(mount))
    result = SecretMount("flyte", source, env=env or source.replace("-", "_").upper())
    result.validate()
    return result


def secret_mounts(values: object) -> tuple[SecretMount, ...]:
    """``secret_mounts=`` in any accepted form (one item or a list) as a tuple of mounts."""
    if values is None:
        return ()
    if isinstance(values, (str, os.PathLike, Mapping)) or not isinstance(values, Iterable):
        values = [values]
    mounts = tuple(SecretMount.parse(value) for value in values)
    for mount in mounts:
        mount.validate()
    return mounts


@dataclass(frozen=True)
class ResolvedSecret:
    """A secret found on this machine: BuildKit's ``--secret id=..,env=..`` or ``src=..``."""

    id: str
    env: str | None = None
    file: str | None = None

    def cli_value(self) -> str:
        return f"id={self.id},env={self.env}" if self.env else f"id={self.id},src={self.file}"


def resolve(mount: SecretMount, environ: Mapping[str, str] | None = None) -> ResolvedSecret:
    """Where the value is now; raises SpecError naming the secret and the fix when it is not."""
    environ = os.environ if environ is None else environ
    if mount.kind == "env":
        if mount.source not in environ:
            raise SpecError(f"secret {mount.name} is not set on this machine",
                            argument="secret_mounts",
                            hint=f"export {mount.source}=... before building, or remove it "
                                 "from secret_mounts")
        return ResolvedSecret(mount.id, env=mount.source)
    if mount.kind == "file":
        if not os.path.isfile(mount.source):
            raise SpecError(f"secret file {mount.source} does not exist",
                            argument="secret_mounts", hint="create it, or fix the path")
        return ResolvedSecret(mount.id, file=mount.source)
    variable = mount.source.upper()
    if environ.get(variable):
        return ResolvedSecret(mount.id, env=variable)
    path = f"{FLYTE_SECRETS_DIR}/{mount.source}"
    if os.path.isfile(path):
        return ResolvedSecret(mount.id, file=path)
    raise SpecError(f"secret {mount.source!r} not found in the environment variable {variable} "
                    f"or the file {path}", argument="secret_mounts",
                    hint=f"export {variable}=... or write the value to {path}")


def secret_values(resolved: Iterable[ResolvedSecret],
                  environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The values themselves, only so logs can be scrubbed of them (never stored)."""
    environ = os.environ if environ is None else environ
    values = []
    for secret in resolved:
        try:
            if secret.env:
                value = environ.get(secret.env, "")
            else:
                with open(secret.file or "", encoding="utf-8", errors="replace") as handle:
                    value = handle.read()
        except OSError:
            continue
        for candidate in (value, value.strip()):
            if len(candidate) >= 4:  # shorter ones would scrub ordinary words
                values.append(candidate)
    return tuple(sorted(set(values), key=len, reverse=True))


def scrub(text: str, values: Iterable[str]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, "***")
    return text


def remote_name(mount: SecretMount) -> str:
    """The name a remote build asks the build service for (it resolves names from its own
    configuration): the variable's name, the file's name, or Flyte's ``group_key``."""
    return os.path.basename(mount.source) if mount.kind == "file" else mount.source


def remote_secrets(mounts: Iterable[SecretMount]) -> dict[str, str]:
    """A remote submission's ``secrets``: BuildKit id -> name. Never a value."""
    return {mount.id: remote_name(mount) for mount in mounts}
