"""The TLS trust used for registries: the host's bundle when configured, plus extra CA files,
plus Docker's per-registry directory ``/etc/docker/certs.d/<host:port>/``.

httpx trusts only certifi unless ``SSL_CERT_FILE``/``SSL_CERT_DIR`` are set; self-hosted
registries and TLS-inspecting proxies need their own CA, so extra files are added on top.
In a registry's ``certs.d`` directory, as for dockerd: ``*.crt`` files are CAs trusted for that
registry only, and each ``name.cert`` with its ``name.key`` is a client certificate.
Building a context costs milliseconds, so a client builds it once per registry.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

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


CERTS_DIR = "/etc/docker/certs.d"


@dataclass(frozen=True)
class CertsDir:
    """What ``<certs_dir>/<host:port>/`` holds for one registry (empty when there is none)."""

    cas: tuple[str, ...] = ()
    client_pairs: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.cas and not self.client_pairs

    @classmethod
    def read(cls, certs_dir: str | os.PathLike[str] | None, netloc: str) -> CertsDir:
        if certs_dir is None:
            return cls()
        directory = Path(certs_dir) / netloc
        try:
            names = sorted(entry.name for entry in os.scandir(directory) if entry.is_file())
        except (FileNotFoundError, NotADirectoryError):
            return cls()
        except OSError as error:
            raise RegistryError(
                f"cannot read the registry certificates in {directory} ({error})",
                hint="make the directory readable by this user, or point "
                "IMAGEBUILD_NB_DOCKER_CERTS_DIR elsewhere",
            ) from None
        cas = tuple(str(directory / name) for name in names if name.endswith(".crt"))
        pairs = []
        for name in names:
            if name.endswith(".cert"):
                key = name[: -len(".cert")] + ".key"
                if key not in names:
                    raise RegistryError(
                        f"client certificate {directory / name} has no key {key} beside it",
                        hint="put the key next to the certificate (same name, .key), as Docker "
                        "expects, or remove the certificate",
                    )
                pairs.append((str(directory / name), str(directory / key)))
            elif name.endswith(".key") and name[: -len(".key")] + ".cert" not in names:
                raise RegistryError(
                    f"client key {directory / name} has no certificate "
                    f"{name[: -len('.key')]}.cert beside it",
                    hint="put the certificate next to the key (same name, .cert), "
                    "or remove the key",
                )
        return cls(cas, tuple(pairs))


def host_ssl_context(
    extra_ca_files: Iterable[str], certs: CertsDir, *, insecure: bool,
    environ: Mapping[str, str] | None = None,
) -> ssl.SSLContext:
    """The context for one registry: verifying (base trust plus its ``certs.d`` CAs), or, for
    an insecure registry, not verifying; client certificates from ``certs.d`` either way."""
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = registry_ssl_context((*extra_ca_files, *certs.cas), environ=environ)
    try:
        for cert, key in certs.client_pairs:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise RegistryError(
            f"cannot load the client certificate {cert} ({error})",
            hint="check the .cert/.key pair in the registry's certs.d directory",
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
