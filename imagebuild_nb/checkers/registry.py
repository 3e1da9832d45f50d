"""The registry checker: HEAD the manifest, look deeper only when the question needs it.

- plain question: one HEAD (does not count as a pull on Docker Hub);
- an index: GET it to report its platforms;
- a platform: GET the manifest (and a single image's config) to see which platforms it has;
- a spec hash: GET the manifest and the config blob to read the spec-hash label;
- no ``Docker-Content-Digest`` (ECR): GET and take the sha256 of the body.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import httpx

from imagebuild_nb.checkers.base import Stopwatch, spec_hash_verdict
from imagebuild_nb.checkers.result import ExistenceResult
from imagebuild_nb.errors import RegistryAuthError, RegistryError
from imagebuild_nb.registry.auth import TOKEN_REFUSED
from imagebuild_nb.registry.client import RegistryClient
from imagebuild_nb.registry.manifests import (
    INDEX_TYPES,
    Descriptor,
    Platform,
    config_descriptor,
    index_entries,
)
from imagebuild_nb.registry.tls import CERTS_DIR, is_certificate_error, is_tls_protocol_error
from imagebuild_nb.spec.reference import DOCKER_HUB_API_HOST, ImageReference

log = logging.getLogger(__name__)


class RegistryChecker:
    """Checks references that name a registry, over one shared :class:`RegistryClient`.

    >>> checker = RegistryChecker(RegistryClient())
    >>> reference = ImageReference.parse("localhost:5001/library/busybox:latest")  # doctest: +SKIP
    >>> await checker.check(reference)  # doctest: +SKIP +NORMALIZE_WHITESPACE
    <ExistenceResult exists localhost:5001/library/busybox:latest sha256:2e9a633075dd
     (registry, 1.2 ms)>
    """

    name = "registry"

    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    async def check(
        self, ref: ImageReference, *, spec_hash: str | None = None, platform: str | None = None
    ) -> ExistenceResult:
        watch = Stopwatch(ref, self.name)
        wanted_all = [Platform.parse(p) for p in platform.split(",")] if platform else []
        wanted = wanted_all[0] if len(wanted_all) == 1 else None
        try:
            if len(wanted_all) > 1:
                return await self._check_all(watch, ref, spec_hash, wanted_all)
            return await self._check(watch, ref, spec_hash, wanted)
        except RegistryAuthError as error:
            if _docker_hub_missing(ref, error):
                return watch.result("missing", reason=(
                    "Docker Hub answers 401 for repositories that do not exist "
                    "(or that these credentials cannot see)"))
            return watch.unknown(f"denied: {_one_line(error)}")
        except RegistryError as error:
            return watch.unknown(_status_reason(error))
        except httpx.TimeoutException as error:
            return watch.unknown(f"timed out: {ref.registry_host} did not answer in time "
                                 f"({type(error).__name__})")
        except httpx.ConnectError as error:
            host = ref.registry_host
            if is_certificate_error(error):
                ca_file = Path(self.client.hosts.certs_dir or CERTS_DIR) / host / "ca.crt"
                return watch.unknown(
                    f"tls: the certificate of {host} is not trusted ({error}); put its CA in "
                    f"{ca_file} (as for docker push), SSL_CERT_FILE or the extra_ca_files "
                    f"setting, or list {host} in insecure_registries")
            if is_tls_protocol_error(error):
                return watch.unknown(
                    f"tls: {host} does not speak TLS (a plain-HTTP registry?); list it in "
                    "insecure_registries (IMAGEBUILD_NB_INSECURE_REGISTRIES) or in Docker's "
                    "daemon.json insecure-registries, as the engine needs for pushing to it")
            return watch.unknown(f"unreachable: cannot connect to {host} ({error})")
        except ssl.SSLError as error:
            # httpcore lets TLS alerts that arrive after the handshake (TLS 1.3: a refused
            # client certificate) through unwrapped.
            host = ref.registry_host
            certs = Path(self.client.hosts.certs_dir or CERTS_DIR) / host
            return watch.unknown(
                f"tls: the TLS session with {host} failed ({error.reason or error}); if it wants "
                f"a client certificate, put it in {certs}/NAME.cert with NAME.key beside it")
        except httpx.HTTPError as error:
            return watch.unknown(f"error: request to {ref.registry_host} failed "
                                 f"({type(error).__name__}: {error})")
        except (ValueError, KeyError, TypeError) as error:
            return watch.unknown(f"error: {ref.registry_host} sent a malformed manifest ({error})")

    async def _check(
        self, watch: Stopwatch, ref: ImageReference, spec_hash: str | None, wanted: Platform | None
    ) -> ExistenceResult:
        if spec_hash is None and wanted is None:
            head = await self.client.head_manifest(ref)
            if head is None:
                return watch.result("missing")
            if head.digest and head.media_type not in INDEX_TYPES:
                return watch.result("exists", digest=head.digest)
        manifest = await self.client.get_manifest(ref)
        if manifest is None:
            return watch.result("missing")
        data = manifest.json()
        if manifest.media_type in INDEX_TYPES or "manifests" in data:
            return await self._index(watch, ref, manifest.digest, data, spec_hash, wanted)
        config = await self._config(ref, data) if (spec_hash or wanted) else {}
        have = Platform.from_json(config)
        platforms = (str(have),) if have else ()
        if wanted is not None and have is not None and not wanted.matches(have):
            return watch.result("missing", platforms=platforms,
                                reason=f"the image is for {have}, not {wanted}")
        matches, reason = spec_hash_verdict(config, spec_hash)
        return watch.result("exists", digest=manifest.digest, platforms=platforms,
                            spec_hash_matches=matches, reason=reason)

    async def _check_all(
        self, watch: Stopwatch, ref: ImageReference, spec_hash: str | None,
        wanted: list[Platform],
    ) -> ExistenceResult:
        """A multi-platform image exists only as an index holding every wanted platform; one
        that lacks some is "missing" (so it is built), saying it is there but incomplete."""
        manifest = await self.client.get_manifest(ref)
        if manifest is None:
            return watch.result("missing")
        data = manifest.json()
        if manifest.media_type in INDEX_TYPES or "manifests" in data:
            entries = index_entries(data)
        else:  # one image: its config says which platform
            have = Platform.from_json(await self._config(ref, data))
            entries = (Descriptor(manifest.media_type, manifest.digest, len(manifest.body),
                                  have),) if have else ()
        platforms = tuple(str(e.platform) for e in entries if e.platform)
        absent = [str(w) for w in wanted
                  if not any(e.platform and w.matches(e.platform) for e in entries)]
        if absent:
            return watch.result("missing", platforms=platforms, reason=(
                f"exists, incomplete: {', '.join(absent)} missing "
                f"(it has {', '.join(platforms) or 'no platform'})"))
        if spec_hash is None:
            return watch.result("exists", digest=manifest.digest, platforms=platforms)
        return await self._index(watch, ref, manifest.digest, data, spec_hash, wanted[0])

    async def _index(
        self, watch: Stopwatch, ref: ImageReference, digest: str, data: dict[str, Any],
        spec_hash: str | None, wanted: Platform | None,
    ) -> ExistenceResult:
        entries = index_entries(data)
        platforms = tuple(str(e.platform) for e in entries if e.platform)
        chosen: Descriptor | None = None
        if wanted is not None:
            chosen = next((e for e in entries if e.platform and wanted.matches(e.platform)), None)
            if chosen is None:
                return watch.result("missing", platforms=platforms, reason=(
                    f"the index has no {wanted} image (it has {', '.join(platforms) or 'none'})"))
        if spec_hash is None:
            return watch.result("exists", digest=digest, platforms=platforms)
        chosen = chosen or _default_entry(entries)
        if chosen is None:
            return watch.unknown("error: the index lists no image manifests")
        child = await self.client.get_manifest(ref, chosen.digest)
        if child is None:
            return watch.unknown(f"registry error: index entry {chosen.digest} is missing")
        matches, reason = spec_hash_verdict(await self._config(ref, child.json()), spec_hash)
        return watch.result("exists", digest=digest, platforms=platforms,
                            spec_hash_matches=matches, reason=reason)

    async def _config(self, ref: ImageReference, manifest: dict[str, Any]) -> dict[str, Any]:
        descriptor = config_descriptor(manifest)
        if descriptor is None:
            return {}
        return await self.client.get_blob_json(ref, descriptor.digest)


def _default_entry(entries: tuple[Descriptor, ...]) -> Descriptor | None:
    linux_amd64 = Platform("linux", "amd64")
    for entry in entries:
        if entry.platform and linux_amd64.matches(entry.platform):
            return entry
    return entries[0] if entries else None


def _docker_hub_missing(ref: ImageReference, error: RegistryAuthError) -> bool:
    # Docker Hub gives anonymous and logged-in users a token, then 401 for a repository that
    # does not exist (BinderHub's not_found_401). A refused token is a real denial.
    return (ref.registry_host == DOCKER_HUB_API_HOST and error.status_code == 401
            and error.code != TOKEN_REFUSED)


def _status_reason(error: RegistryError) -> str:
    status = error.status_code
    if status == 429:
        return f"rate limited: {_one_line(error)}"
    return f"registry error: {_one_line(error)}"


def _one_line(error: RegistryError) -> str:
    return f"{error.message} ({error.hint})" if error.hint else error.message
