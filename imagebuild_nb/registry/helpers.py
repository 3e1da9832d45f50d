"""Docker credential helpers (``docker-credential-<name> get``), run with a timeout.

Protocol (docker/docker-credential-helpers): the server URL on stdin, a JSON object
``{"ServerURL", "Username", "Secret"}`` on stdout; ``Username == "<token>"`` means the secret
is an identity token. "credentials not found" exits non-zero and is not an error for us.
A helper's output never reaches an error message or a log: it can hold the very secrets it
guards. Errors name the helper and its exit status instead.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess

from imagebuild_nb.errors import RegistryAuthError
from imagebuild_nb.registry.credentials import Credential

log = logging.getLogger(__name__)

TOKEN_USERNAME = "<token>"
_NOT_FOUND = "credentials not found"


def run_credential_helper(name: str, server_url: str, *, timeout: float) -> Credential | None:
    """Ask ``docker-credential-<name>`` for ``server_url``'s credential.

    >>> run_credential_helper("no-such-helper", "ghcr.io", timeout=1)  # doctest: +SKIP
    RegistryAuthError: credential helper docker-credential-no-such-helper is not installed
    """
    program = f"docker-credential-{name}"
    executable = shutil.which(program)
    if executable is None:
        raise RegistryAuthError(
            f"credential helper {program} is not installed (named in the Docker config)",
            hint=f"install {program}, or remove it from credHelpers/credsStore in config.json",
        )
    try:
        completed = subprocess.run(
            [executable, "get"],
            input=server_url,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise RegistryAuthError(
            f"credential helper {program} did not answer within {timeout:g}s",
            hint="it may be waiting for a password prompt (e.g. a locked `pass` or GPG store); "
            "unlock it in a terminal, or configure credentials explicitly",
        ) from None
    if completed.returncode != 0:
        # Read, never echoed: helpers print tokens and passwords in debug and usage lines.
        if _NOT_FOUND in (completed.stdout + completed.stderr).lower():
            return None
        raise RegistryAuthError(
            f"credential helper {program} failed for {server_url} "
            f"(exit status {completed.returncode}; its output is not shown, it may hold secrets)",
            hint=f"run `echo {server_url} | {program} get` in a terminal to see why "
            "(log in again with the helper's own tool, or fix its configuration), "
            "or remove it from credHelpers/credsStore in the Docker config",
        )
    try:
        payload = json.loads(completed.stdout)
        username, secret = payload.get("Username"), payload["Secret"]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        raise RegistryAuthError(
            f"credential helper {program} answered with something that is not its JSON format",
        ) from None
    log.debug("credential helper %s gave a credential for %s", program, server_url)
    if username == TOKEN_USERNAME:
        return Credential(identity_token=secret)
    return Credential(username, secret)
