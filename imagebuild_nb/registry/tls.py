"""The TLS trust used for registries: the host's bundle when configured, plus extra CA files.

httpx trusts only certifi unless ``SSL_CERT_FILE``/``SSL_CERT_DIR`` are set; self-hosted
registries and TLS-inspecting proxies need their own CA, so extra files are added on top.
Building a context costs milliseconds, so a client builds it once.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable, Mapping

import certifi

from imagebuild_nb.errors import RegistryError


def registry_ssl_context(
    extra_ca_files: Iterable[str] = (), *, environ: Mapping[str, str] | None = None
) -> ssl.SSLContext:
    """A verifying client context.

    >>> registry_ssl_context().verify_mode == ssl.CERT_REQUIRED
    True
    """
    env = os.environ if environ is None else environ
    cafile, capath = env.get("SSL_CERT_FILE") or None, env.get("SSL_CERT_DIR") or None
    try:
        if cafile or capath:
            context = ssl.create_default_context(cafile=cafile, capath=capath)
        else:
            context = ssl.create_default_context(cafile=certifi.where())
        for path in extra_ca_files:
            context.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as error:
        raise RegistryError(
            f"cannot load CA certificates ({error})",
            hint="check SSL_CERT_FILE / SSL_CERT_DIR and the extra CA files in the settings",
        ) from None
    return context


def is_certificate_error(error: BaseException) -> bool:
    """Whether an exception chain holds a failed certificate verification."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def is_tls_protocol_error(error: BaseException) -> bool:
    """Whether the peer does not speak TLS at all (a plain-HTTP registry on an https URL)."""
    if is_certificate_error(error):
        return False
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError) or "[SSL" in str(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
