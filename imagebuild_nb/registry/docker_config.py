"""The Docker CLI's credentials: ``$DOCKER_CONFIG/config.json`` (default ``~/.docker``).

Resolution order per host, as the Docker CLI does it: ``credHelpers[host]``, then
``credsStore``, then ``auths[host]`` (``auth`` = base64 ``user:pass``, or ``identitytoken``).
Helpers run as ``docker-credential-<name> get`` with a timeout, since some prompt or hang.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from pathlib import Path
from typing import Any

from imagebuild_nb.errors import RegistryAuthError
from imagebuild_nb.registry.credentials import Credential, host_aliases, normalize_host
from imagebuild_nb.registry.helpers import run_credential_helper

log = logging.getLogger(__name__)


def docker_config_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    directory = env.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(directory) / "config.json"


class DockerConfigKeychain:
    """Credentials from the Docker CLI config. The file is re-read on every lookup (it is small,
    and ``docker login`` in another terminal should take effect without a restart).

    >>> keychain = DockerConfigKeychain(helper_timeout=5)
    >>> keychain.resolve("localhost:5002")  # doctest: +SKIP
    Credential(username='imagebuild', password=***)
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, helper_timeout: float = 5.0):
        self._path = Path(path) if path is not None else None
        self.helper_timeout = helper_timeout

    @property
    def path(self) -> Path:
        return self._path if self._path is not None else docker_config_path()

    def resolve(self, host: str) -> Credential | None:
        config = self._load()
        if not config:
            return None
        helpers = {normalize_host(k): v for k, v in (config.get("credHelpers") or {}).items()}
        auths = {normalize_host(k): (k, v) for k, v in (config.get("auths") or {}).items()}
        for alias in host_aliases(host):
            helper = helpers.get(normalize_host(alias))
            if helper:
                return run_credential_helper(helper, _server_url(alias, auths),
                                             timeout=self.helper_timeout)
        store = config.get("credsStore")
        if store:
            for alias in host_aliases(host):
                found = run_credential_helper(store, _server_url(alias, auths),
                                              timeout=self.helper_timeout)
                if found is not None:
                    return found
        for alias in host_aliases(host):
            entry = auths.get(normalize_host(alias))
            if entry is not None:
                credential = _from_auth_entry(entry[1], self.path)
                if credential is not None:
                    return credential
        return None

    def _load(self) -> dict[str, Any] | None:
        path = self.path
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as error:
            log.warning("cannot read Docker config %s: %s", path, error)
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise RegistryAuthError(
                f"the Docker config {path} is not valid JSON ({error})",
                hint="fix or remove the file, or point DOCKER_CONFIG at another directory",
            ) from None
        return data if isinstance(data, dict) else None


def _server_url(alias: str, auths: dict[str, tuple[str, Any]]) -> str:
    # Helpers store entries under the exact key `docker login` used (often with https://).
    entry = auths.get(normalize_host(alias))
    return entry[0] if entry is not None else alias


def _from_auth_entry(entry: Any, path: Path) -> Credential | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("identitytoken"):
        return Credential(username=entry.get("username"), identity_token=entry["identitytoken"])
    encoded = entry.get("auth")
    if encoded:
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise RegistryAuthError(
                f"an 'auth' entry in {path} is not base64 of 'user:password'",
                hint="run `docker login` again for that registry",
            ) from None
        return Credential(user, password)
    if entry.get("username") and entry.get("password") is not None:
        return Credential(entry["username"], entry["password"])
    return None
