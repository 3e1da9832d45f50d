"""Runtime settings of the core, as a plain frozen dataclass (traitlets live at the edges).

Every field can be set from the environment as ``IMAGEBUILD_NB_<FIELD>`` (upper case); the
notebook layer maps its traitlets configurables onto the same fields.

>>> Settings.from_env({"IMAGEBUILD_NB_NETWORK_MODE": "host"}).network_mode
'host'
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from imagebuild_nb.errors import SpecError

ENV_PREFIX = "IMAGEBUILD_NB_"

UnknownPolicy = Literal["build", "fail"]
LocalDriver = Literal["auto", "docker-api", "buildkit"]
Installer = Literal["uv", "pip"]


@dataclass(frozen=True)
class Settings:
    # Where default base images (python:X.Y-slim on Docker Hub) are pulled from instead,
    # e.g. "localhost:5001" or "mirror.example.com/dockerhub". Does not change content tags.
    base_image_mirror: str | None = None
    # Registry used for images that name none; None keeps images in the local engine.
    registry: str | None = None
    default_builder: str = "local"
    local_driver: LocalDriver = "auto"
    # The docker CLI used by the BuildKit driver (must support BuildKit; see docs).
    docker_cli: str = "docker"
    # The podman CLI of the "local-podman" builder, and a private store for it (--root,
    # --runroot); unset: podman's own default store.
    podman_cli: str = "podman"
    podman_root: str | None = None
    podman_runroot: str | None = None
    # Network for RUN steps ("host" where the default bridge has no NAT/DNS).
    network_mode: str | None = None
    # Extra CA certificate files trusted by RUN steps during builds (TLS-inspecting proxies).
    extra_ca_files: tuple[str, ...] = ()
    # What build() does when existence cannot be verified: build anyway (and say why) or fail.
    unknown_existence_policy: UnknownPolicy = "build"
    registry_timeout: float = 10.0
    # Seconds a local build may go without any output before it is stopped as hung (0: never).
    build_silence_timeout: float = 600.0
    # Registries spoken to as Docker's insecure-registries are (HTTPS without verification,
    # then plain HTTP): host[:port] names or CIDR ranges, comma-separated in the environment.
    # Loopback is always insecure, as for dockerd.
    insecure_registries: tuple[str, ...] = ()
    # Docker's daemon.json, whose insecure-registries list is read as well ("" reads none).
    docker_daemon_config: str = "/etc/docker/daemon.json"
    # Docker's per-registry TLS files: <dir>/<host:port>/*.crt CAs, *.cert + *.key client certs.
    docker_certs_dir: str = "/etc/docker/certs.d"
    check_concurrency: int = 32
    existence_cache_ttl: float = 30.0
    platform: str | None = None
    # What installs pip packages, requirements and uv scripts into the image's /opt/venv:
    # "uv" (fetched from PyPI into a cached build stage; several times faster) or "pip".
    installer: Installer = "uv"
    remote_url: str | None = None
    remote_token: str | None = field(default=None, repr=False)
    # Inside a JupyterHub single-user server with no remote_url: the Hub service to build on.
    hub_service: str = "imagebuild"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + spec.name.upper())
            if raw is None or raw == "":
                continue
            values[spec.name] = _parse(spec.name, spec.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).validated()

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes).validated()

    def validated(self) -> Settings:
        if self.unknown_existence_policy not in ("build", "fail"):
            raise SpecError(
                f"unknown_existence_policy={self.unknown_existence_policy!r} is not valid",
                argument="unknown_existence_policy",
                hint="use 'build' (build when existence cannot be verified) or 'fail'",
            )
        if self.local_driver not in ("auto", "docker-api", "buildkit"):
            raise SpecError(
                f"local_driver={self.local_driver!r} is not valid",
                argument="local_driver",
                hint="use 'auto', 'docker-api' or 'buildkit'",
            )
        if self.installer not in ("uv", "pip"):
            raise SpecError(f"installer={self.installer!r} is not valid", argument="installer",
                            hint="use 'uv' (the default) or 'pip'")
        if self.check_concurrency < 1:
            raise SpecError("check_concurrency must be at least 1", argument="check_concurrency")
        if self.build_silence_timeout < 0:
            raise SpecError("build_silence_timeout must be 0 (no limit) or more seconds",
                            argument="build_silence_timeout")
        return self


_COMMA_SEPARATED = frozenset({"insecure_registries"})


def _parse(name: str, annotation: object, raw: str) -> Any:
    text = str(annotation)
    try:
        if name in _COMMA_SEPARATED:  # entries hold ":" (host:port), so not os.pathsep
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if "tuple" in text:
            return tuple(part for part in raw.split(os.pathsep) if part)
        if text.startswith("float"):
            return float(raw)
        if text.startswith("int"):
            return int(raw)
    except ValueError:
        raise SpecError(
            f"environment variable {ENV_PREFIX}{name.upper()}={raw!r} is not a number",
            argument=name,
        ) from None
    return raw
