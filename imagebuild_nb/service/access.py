"""Who is calling the build service, and which builds are theirs to see and to cancel.

Behind JupyterHub every request carries a Hub user (``JupyterHubIdentityProvider`` puts the
Hub's user model, with the token's scopes, on ``current_user.hub_user``): builds are owned.
A user sees the builds they submitted or joined and cancels the ones they submitted; Hub admins
and holders of the operator's admin scope see and cancel all. Joining an identical build shares
its log and outcome, never the right to cancel it.

Without a Hub (the standalone token, or the extension inside one's own Jupyter Server) there is
one identity: the token's holder, who owns every build, as before.

>>> from imagebuild_nb.wire import BuildInfo
>>> alice = Caller(name="alice")
>>> record = BuildInfo.from_dict({"id": "b1", "uri": "r/x:1", "owner": "bob",
...                               "joined_by": ["alice"]})
>>> alice.may_read(record), alice.may_cancel(record), Caller.shared().may_cancel(record)
(True, False, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from imagebuild_nb.service.manager import UnknownBuildError

if TYPE_CHECKING:
    from imagebuild_nb.service.backend import BuildBackend
    from imagebuild_nb.wire import BuildInfo


class Owned(Protocol):
    # Read-only members: frozen records (BuildInfo) satisfy them.
    @property
    def owner(self) -> str | None: ...
    @property
    def joined_by(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Caller:
    # The Hub user (or "service:<name>" for a Hub service's token); None: the shared identity.
    name: str | None
    sees_all: bool = False

    @classmethod
    def shared(cls) -> Caller:
        return cls(name=None, sees_all=True)

    @classmethod
    def of(cls, user: object, admin_scope: str) -> Caller:
        """The caller behind Jupyter Server's ``current_user``."""
        model: Mapping[str, Any] | None = getattr(user, "hub_user", None)
        if not model:
            return cls.shared()
        name = str(model["name"])
        if model.get("kind") == "service":
            name = f"service:{name}"
        admin = bool(model.get("admin")) or admin_scope in (model.get("scopes") or ())
        return cls(name=name, sees_all=admin)

    @property
    def owner(self) -> str | None:
        """What a build submitted by this caller records as its owner."""
        return self.name

    @property
    def filter(self) -> str | None:
        """Whose builds a listing shows: None for all."""
        return None if self.sees_all else self.name

    def may_read(self, record: Owned) -> bool:
        return self.sees_all or self.name == record.owner or self.name in record.joined_by

    def may_cancel(self, record: Owned) -> bool:
        return self.sees_all or self.name == record.owner

    async def find(self, backend: BuildBackend, build_id: str) -> BuildInfo | None:
        """The build when this caller may see it; None for another user's build as for one
        that never was (an id reveals nothing)."""
        try:
            record = await backend.get(build_id)
        except UnknownBuildError:
            return None
        return record if self.may_read(record) else None


__all__ = ["Caller"]
