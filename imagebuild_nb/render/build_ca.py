"""Build-time CA certificates (``Settings.extra_ca_files``): trusted by RUN steps, kept honest.

TLS-inspecting proxies re-sign PyPI and Debian with their own CA, which a fresh container does
not trust. How the files reach the RUN steps depends on the Dockerfile form:

- BuildKit: one bundle (Mozilla's roots from certifi, the spec's own CA files, then the extra
  files) travels in the build context and is bind-mounted, read-only, into every RUN step at
  :data:`BUNDLE_TARGET`, with an apt configuration at :data:`APT_TARGET`. ``ARG`` instructions
  (build args are not kept in the image's config, unlike ``ENV``) point the usual variables at
  them. Nothing is copied: the image holds no trace of the files (a file mounted in an existing
  folder leaves no stub) and its content tag does not change.
- Legacy builder (the Engine API cannot mount): :func:`with_build_ca` makes the files the spec's
  first layer, as ``with_ca_certificates`` would: they are in the image *and* in its tag.

>>> print(arg_lines()[0])
ARG SSL_CERT_FILE=/etc/imagebuild-nb-build-ca.crt
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from imagebuild_nb.errors import SpecError
from imagebuild_nb.render.tar import ContextEntry
from imagebuild_nb.spec import layers as L

if TYPE_CHECKING:
    from imagebuild_nb.settings import Settings
    from imagebuild_nb.spec.image import Image

CONTEXT_DIR = "build-ca"
BUNDLE = f"{CONTEXT_DIR}/bundle.crt"
APT_CONF = f"{CONTEXT_DIR}/apt.conf"
# Files in /etc, which every image with a shell has: BuildKit then leaves no mount point behind.
BUNDLE_TARGET = "/etc/imagebuild-nb-build-ca.crt"
APT_TARGET = "/etc/imagebuild-nb-build-apt.conf"
# Read by OpenSSL (Python's ssl), requests, pip, curl, git and node; APT_CONFIG by apt.
BUNDLE_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE",
                    "GIT_SSL_CAINFO", "NODE_EXTRA_CA_CERTS")
MOUNTS = (f"--mount=type=bind,source={BUNDLE},target={BUNDLE_TARGET} "
          f"--mount=type=bind,source={APT_CONF},target={APT_TARGET}")


def arg_lines() -> list[str]:
    """Right after FROM: the variables every RUN step sees, not kept in the image."""
    return [f"ARG {name}={BUNDLE_TARGET}" for name in BUNDLE_VARIABLES] + [
        f"ARG APT_CONFIG={APT_TARGET}"]


def with_mounts(instruction: str) -> str:
    """A rendered instruction, with the CA mounts when it is a RUN."""
    return f"RUN {MOUNTS} {instruction[4:]}" if instruction.startswith("RUN ") else instruction


def checked_files(paths: Sequence[str]) -> L.CACertificates:
    """The setting's files as a CA layer (existing PEM files), the error naming the setting."""
    try:
        return L.CACertificates.create(tuple(paths))
    except SpecError as error:
        raise SpecError(f"extra_ca_files: {error}", argument="extra_ca_files",
                        hint="give PEM files that exist on this machine, e.g. the host's "
                        "/etc/ssl/certs/ca-certificates.crt") from None


def context_entries(extra_ca_files: Sequence[str], image: Image) -> list[ContextEntry]:
    """The bundle and the apt configuration, generated (the files are read now)."""
    import certifi

    parts = [certifi.contents().encode()]
    spec_ca = [p for layer in image.layers if isinstance(layer, L.CACertificates)
               for p in layer.paths]
    for path in [*spec_ca, *checked_files(extra_ca_files).paths]:
        try:
            with open(path, "rb") as handle:
                parts.append(handle.read())
        except OSError as error:
            raise SpecError(f"extra_ca_files: cannot read {path}: {error.strerror}",
                            argument="extra_ca_files") from error
    bundle = b"\n".join(part.rstrip(b"\n") for part in parts) + b"\n"
    apt = f'Acquire::https::CaInfo "{BUNDLE_TARGET}";\n'.encode()
    return [ContextEntry.generated(BUNDLE, bundle), ContextEntry.generated(APT_CONF, apt)]


def with_build_ca(image: Image, extra_ca_files: Sequence[str]) -> Image:
    """For the legacy builder: the files as the spec's first layer (in the image and the tag).

    Idempotent; images without layers of their own to build (default bases, Dockerfiles) are
    returned as they are.
    """
    from imagebuild_nb.spec.base import DockerfileBase

    if not extra_ca_files or image.is_default_base or isinstance(image.base, DockerfileBase):
        return image
    layer = checked_files([os.fspath(p) for p in extra_ca_files])
    if image.layers[:1] == (layer,):
        return image
    return dataclasses.replace(image, layers=(layer, *image.layers))


def placed(image: Image, settings: Settings, driver: str | None = None) -> Image:
    """The spec as the builder builds it: with the legacy builder, the build CAs are its first
    layer (:func:`with_build_ca`); with BuildKit it is unchanged.

    The engine's plan calls this with the driver of the builder it uses, so checks, dry runs
    and builds agree on the tag; without one, the configured local builder is assumed.
    """
    if not settings.extra_ca_files:
        return image
    if driver is not None:
        return with_build_ca(image, settings.extra_ca_files) if driver == "docker-api" else image
    if settings.default_builder != "local":
        return image
    from imagebuild_nb.builders.select import local_builder

    if local_builder(settings).driver != "docker-api":
        return image
    return with_build_ca(image, settings.extra_ca_files)
