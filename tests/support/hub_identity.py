"""An identity provider that stands in for JupyterHub's in service tests without a Hub.

``JupyterHubIdentityProvider`` gives the service a user whose ``hub_user`` is the Hub's user
model (name, admin flag, the token's scopes). This one reads the same model from the token
itself: ``Authorization: token hubuser:<name>[:admin][:<scope>...]``. It lets the access rules
be checked on every route quickly; tests/hub checks them through a real JupyterHub.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User


class HubUser(User):  # type: ignore[misc]
    hub_user: dict[str, Any]


def hub_user(name: str, *, admin: bool = False, scopes: tuple[str, ...] = ()) -> HubUser:
    user = HubUser(username=name)
    user.hub_user = {"kind": "user", "name": name, "admin": admin,
                     "scopes": ["access:services!service=imagebuild", *scopes]}
    return user


def token_for(name: str, *, admin: bool = False, scopes: tuple[str, ...] = ()) -> str:
    return ":".join(["hubuser", name, *(["admin"] if admin else []), *scopes])


class TokenHubUsers(IdentityProvider):  # type: ignore[misc]
    def get_user(self, handler: Any) -> HubUser | None:
        kind, _, token = handler.request.headers.get("Authorization", "").partition(" ")
        parts = token.split(":")
        if kind.lower() != "token" or len(parts) < 2 or parts[0] != "hubuser":
            return None
        name, rest = parts[1], parts[2:]
        handler._token_authenticated = True  # an API token, as the Hub's: no XSRF check
        return hub_user(name, admin="admin" in rest,
                        scopes=tuple(part for part in rest if part != "admin"))

    def validate_security(self, app: Any, ssl_options: Any = None) -> None:
        return
