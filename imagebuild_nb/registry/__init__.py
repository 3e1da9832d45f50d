"""The registry side: an OCI distribution client over httpx, its auth flow and keychains.

Layers, as in go-containerregistry: references -> keychains (who am I for this host) ->
the auth handshake (:class:`RegistryAuth`) -> operations (:class:`RegistryClient`).

>>> from imagebuild_nb.registry import RegistryClient, default_keychain
>>> client = RegistryClient(keychain=default_keychain())
"""

from __future__ import annotations

from imagebuild_nb.registry.auth import RegistryAuth
from imagebuild_nb.registry.challenge import Challenge, parse_challenge
from imagebuild_nb.registry.client import Manifest, ManifestHead, RegistryClient
from imagebuild_nb.registry.credentials import (
    AnonymousKeychain,
    ChainKeychain,
    Credential,
    Keychain,
    StaticKeychain,
)
from imagebuild_nb.registry.docker_config import DockerConfigKeychain
from imagebuild_nb.registry.manifests import MANIFEST_TYPES, Platform
from imagebuild_nb.registry.tokens import TokenCache


def default_keychain(*, helper_timeout: float = 5.0) -> Keychain:
    """The Docker CLI's credentials (``$DOCKER_CONFIG`` or ``~/.docker/config.json``)."""
    return DockerConfigKeychain(helper_timeout=helper_timeout)


__all__ = [
    "MANIFEST_TYPES",
    "AnonymousKeychain",
    "ChainKeychain",
    "Challenge",
    "Credential",
    "DockerConfigKeychain",
    "Keychain",
    "Manifest",
    "ManifestHead",
    "Platform",
    "RegistryAuth",
    "RegistryClient",
    "StaticKeychain",
    "TokenCache",
    "default_keychain",
    "parse_challenge",
]
