"""One real JupyterHub for the package: users alice and bob (each with a server and a kernel),
carol (granted the operator's build-admin scope) and the Hub admin "admin"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.jupyterhub import Hub
from tests.support.kernel_ws import Kernel

USERS = ("alice", "bob", "carol", "admin")
ADMINS = ("admin",)


@pytest.fixture(scope="package")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    hub = Hub(tmp_path_factory.mktemp("jupyterhub"), users=USERS, admins=ADMINS).start()
    try:
        yield hub
    finally:
        left = hub.stop()
        assert not left, f"processes of the Hub outlived it (killed now): {left}"


def _kernel(hub: Hub, user: str) -> Iterator[Kernel]:
    kernel = Kernel(hub.start_server(user), hub.token(user)).start()
    yield kernel
    kernel.shutdown()


@pytest.fixture(scope="package")
def alice_kernel(hub: Hub) -> Iterator[Kernel]:
    """A kernel of alice's single-user server, reached through the Hub's proxy."""
    yield from _kernel(hub, "alice")


@pytest.fixture(scope="package")
def bob_kernel(hub: Hub) -> Iterator[Kernel]:
    yield from _kernel(hub, "bob")
