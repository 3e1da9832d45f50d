"""The build service as a JupyterHub service: the recipe for ``jupyterhub_config.py`` and the
server settings that make the service authenticate with the Hub.

In ``jupyterhub_config.py`` (a Hub-managed service on the Hub's host)::

    from imagebuild_nb.service.hub import configure_hub
    configure_hub(c, url="http://127.0.0.1:8890",
                  service_args=["--ImageBuildServiceApp.max_builds_per_user=4"],
                  build_admins=["carol"])

That adds the service (started and restarted by the Hub, served under ``/services/imagebuild/``
by its proxy, browser logins by the Hub's OAuth without a confirmation page) and grants every
user, and every user server's token (``JUPYTERHUB_API_TOKEN``), access to it and the right to
look it up (``GET /hub/api/services/imagebuild``: how a kernel finds it with no setting). Hub
admins, and users or groups given ``ADMIN_SCOPE`` (``build_admins``, ``build_admin_groups``),
see and cancel every user's builds; everyone else only their own.

The service side needs nothing more: started with ``JUPYTERHUB_SERVICE_NAME`` in its
environment (the Hub sets it; set it yourself for an external service), ``jupyter imagebuild``
listens on ``JUPYTERHUB_SERVICE_URL`` under ``JUPYTERHUB_SERVICE_PREFIX`` and takes users from
the Hub (``jupyterhub.singleuser.extension.JupyterHubIdentityProvider``: API tokens and OAuth).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

DEFAULT_NAME = "imagebuild"
# The JupyterHub scope (a custom one: operators grant it in a role) that lets its holders see and
# cancel every user's builds, as Hub admins can.
ADMIN_SCOPE = "custom:imagebuild:admin"
# What a user server's token gets by default (JupyterHub's "server" role) when the operator set
# no Spawner.server_token_scopes of their own.
_SERVER_ROLE_SCOPES = ("users:activity!user", "access:servers!server")


def configure_hub(
    c: Any,
    *,
    name: str = DEFAULT_NAME,
    url: str = "http://127.0.0.1:8890",
    service_args: Sequence[str] = (),
    environment: Mapping[str, str] | None = None,
    build_admins: Sequence[str] = (),
    build_admin_groups: Sequence[str] = (),
    command: Sequence[str] | None = None,
    api_token: str | None = None,
) -> None:
    """Add the build service to a JupyterHub configuration ``c`` (see the module docstring).

    ``command`` defaults to this Python running the service (a Hub-managed service); pass
    ``command=()`` and an ``api_token`` for an external one you start yourself (Kubernetes).
    ``environment`` is the managed service's environment (the Hub passes little of its own).
    """
    hub = c.JupyterHub
    access = f"access:services!service={name}"
    lookup = f"read:services!service={name}"
    service: dict[str, Any] = {
        "name": name,
        "url": url,
        "oauth_no_confirm": True,
        # The OAuth token a browser gets for the service may carry the admin scope (to those
        # who hold it): the build pages of other users are theirs to open.
        "oauth_client_allowed_scopes": [ADMIN_SCOPE],
        "display": True,
        "info": {"description": "imagebuild-nb: remote container image builds"},
    }
    if command is None:
        command = [sys.executable, "-m", "imagebuild_nb.service"]
    if command:
        service["command"] = [*command, *service_args]
        service["environment"] = dict(environment or {})
    if api_token:
        service["api_token"] = api_token
    _listed(hub, "services").append(service)

    scopes = _keyed(hub, "custom_scopes")
    scopes.setdefault(ADMIN_SCOPE, {
        "description": "See and cancel every user's image builds on the imagebuild service."})

    roles = _listed(hub, "load_roles")
    user_role = _role(roles, "user", default_scopes=["self"])
    _add(user_role["scopes"], access, lookup)
    if build_admins or build_admin_groups:
        admins = _role(roles, f"{name}-admins", default_scopes=[])
        _add(admins["scopes"], ADMIN_SCOPE, access, lookup)
        _add(admins.setdefault("users", []), *build_admins)
        _add(admins.setdefault("groups", []), *build_admin_groups)

    # A server's token holds only what its user holds of these: the admin scope reaches the
    # kernels of build admins alone.
    spawner = c.Spawner
    token_scopes = spawner.server_token_scopes if "server_token_scopes" in spawner else None
    if not isinstance(token_scopes, list):
        token_scopes = list(_SERVER_ROLE_SCOPES)
        spawner.server_token_scopes = token_scopes
    _add(token_scopes, access, lookup, ADMIN_SCOPE)


def hub_server_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Jupyter Server settings for the standalone service started as a JupyterHub service:
    where to listen, under which prefix, and the Hub as identity provider. Empty otherwise."""
    environ = os.environ if environ is None else environ
    name = environ.get("JUPYTERHUB_SERVICE_NAME")
    if not name:
        return {}
    try:
        from jupyterhub.singleuser.extension import (
            JupyterHubAuthorizer,
            JupyterHubIdentityProvider,
        )
    except ImportError:
        raise SystemExit(
            "imagebuild service: started as the JupyterHub service "
            f"{name!r} (JUPYTERHUB_SERVICE_NAME is set) but jupyterhub is not installed here: "
            "pip install 'imagebuild-nb[hub]'"
        ) from None
    config: dict[str, Any] = {
        "identity_provider_class": JupyterHubIdentityProvider,
        "authorizer_class": JupyterHubAuthorizer,
        "base_url": environ.get("JUPYTERHUB_SERVICE_PREFIX") or f"/services/{name}/",
    }
    bind = urlparse(environ.get("JUPYTERHUB_SERVICE_URL", ""))
    if bind.hostname:
        config["ip"] = bind.hostname
    if bind.port:
        config["port"] = bind.port
    return config


def _listed(section: Any, key: str) -> list[Any]:
    """The list at ``section[key]``, created when the configuration has none yet."""
    if key not in section or not isinstance(section[key], list):
        section[key] = []
    return section[key]  # type: ignore[no-any-return]


def _keyed(section: Any, key: str) -> dict[str, Any]:
    if key not in section or not isinstance(section[key], dict):
        section[key] = {}
    return section[key]  # type: ignore[no-any-return]


def _role(roles: list[dict[str, Any]], name: str, *, default_scopes: list[str]) -> dict[str, Any]:
    """The role ``name`` in ``roles`` (the operator's own definition kept), added when absent.
    Redefining JupyterHub's "user" role replaces its scopes, hence the "self" default."""
    for role in roles:
        if role.get("name") == name:
            role.setdefault("scopes", list(default_scopes))
            return role
    role = {"name": name, "scopes": list(default_scopes)}
    roles.append(role)
    return role


def _add(values: list[str], *items: str) -> None:
    values.extend(item for item in items if item not in values)


__all__ = ["ADMIN_SCOPE", "DEFAULT_NAME", "configure_hub", "hub_server_config"]
