"""Registry credentials handed to the Docker engine (a push, a build's base-image pulls),
resolved by the project's keychain instead of docker-py's.

docker-py runs credential helpers itself: their stderr lands on ours, a failing helper's output
is copied into the error (either may hold a secret, and that error reached the build service's
records), and one failing helper in the config fails every Engine-API build, even of registries
the build never touches. ``DockerConfigKeychain`` reads helper output without echoing it and
names a failing helper instead.

>>> engine_entry(Credential("me", "pw"), "localhost:5002")
{'username': 'me', 'password': 'pw', 'serveraddress': 'localhost:5002'}
"""

from __future__ import annotations

import json
import logging

from imagebuild_nb.errors import RegistryAuthError
from imagebuild_nb.registry.credentials import Credential
from imagebuild_nb.registry.docker_config import DockerConfigKeychain, docker_config_path

log = logging.getLogger(__name__)


def push_auth(registry: str) -> dict[str, str] | None:
    """The engine's auth entry for pushing to ``registry`` (None: anonymous).

    Raises RegistryAuthError, naming the helper and never its output, when a helper fails.
    """
    return engine_entry(DockerConfigKeychain().resolve(registry), registry)


def build_auth() -> dict[str, dict[str, str]]:
    """``X-Registry-Config`` for a build: every registry the Docker config names, resolved.

    A registry whose helper fails is left out (logged by name): the build may not pull from it,
    and a pull that needs it fails in the engine with the engine's own message.
    """
    keychain = DockerConfigKeychain()
    try:
        config = json.loads(docker_config_path().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(config, dict):
        return {}
    registries = {*(config.get("auths") or {}), *(config.get("credHelpers") or {})}
    entries: dict[str, dict[str, str]] = {}
    for registry in sorted(registries):
        try:
            entry = engine_entry(keychain.resolve(registry), registry)
        except RegistryAuthError as error:
            log.warning("no credentials for %s in the build: %s", registry, error.message)
            continue
        if entry is not None:
            entries[registry] = entry
            host = registry.replace("https://", "").replace("http://", "").split("/", 1)[0]
            entries.setdefault(host, entry)
    return entries


def engine_entry(credential: Credential | None, registry: str) -> dict[str, str] | None:
    """A credential in the Engine API's auth format."""
    if credential is None:
        return None
    if credential.identity_token:
        return {"identitytoken": credential.identity_token, "serveraddress": registry}
    if credential.has_basic:
        return {"username": str(credential.username), "password": str(credential.password),
                "serveraddress": registry}
    return None
