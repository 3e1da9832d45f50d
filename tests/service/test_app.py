"""The standalone service's surface: its own API and page, none of Jupyter Server's services."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.service.conftest import ServiceProcess

JUPYTER_SERVER = Path(sys.executable).parent / "jupyter-server"

# Jupyter Server's own services; a standalone service's token must open none of them.
JUPYTER_ROUTES = [
    ("POST", "/api/kernels"),
    ("GET", "/api/kernels"),
    ("GET", "/api/contents"),
    ("GET", "/api/contents/secret.txt"),
    ("GET", "/files/secret.txt"),
    ("GET", "/view/secret.txt"),
    ("GET", "/api/terminals"),
    ("POST", "/api/terminals"),
    ("GET", "/api/sessions"),
    ("GET", "/api/kernelspecs"),
    ("GET", "/kernelspecs/python3/kernel.json"),
    ("GET", "/api/config/notebook"),
    ("GET", "/nbconvert/html/secret.txt"),
    ("GET", "/api/nbconvert"),
    ("GET", "/api/me"),
    ("GET", "/api/status"),
    ("GET", "/api/events/subscribe"),
    ("POST", "/api/shutdown"),
]


def test_the_standalone_service_serves_none_of_jupyters_own_routes(
    service: ServiceProcess,
) -> None:
    (service.root / "secret.txt").write_text("host file content\n")
    assert service.process is not None
    with service.http() as http:
        for method, path in JUPYTER_ROUTES:
            response = http.request(method, path,
                                    json={"name": "python3"} if method == "POST" else None)
            assert response.status_code == 404, (method, path, response.status_code)
            assert "host file content" not in response.text
        assert http.get("/imagebuild/api/health").status_code == 200  # still up: no shutdown route
    # The kernel route never ran: the service started no process (a kernel is one).
    assert psutil.Process(service.process.pid).children(recursive=True) == []


def test_embedded_in_a_jupyter_server_the_servers_own_routes_stay_the_servers(
    start_service: Callable[..., ServiceProcess],
) -> None:
    # Enabled in a user's Jupyter Server (jupyter-config/jupyter_server_config.d), the service
    # adds its routes and leaves the server's kernels and contents as that server serves them.
    others = ("jupyterlab", "notebook", "notebook_shim", "jupyter_lsp", "jupyter_server_terminals")
    server = start_service(script=JUPYTER_SERVER, options=(
        "--ServerApp.jpserver_extensions=imagebuild_nb=True",
        # Only to start faster: the other extensions installed here are not the point.
        *(f"--ServerApp.jpserver_extensions={name}=False" for name in others)))
    with server.http() as http:
        assert http.get("/imagebuild/api/health").json()["status"] == "ok"
        assert http.get("/api/kernels").status_code == 200
        assert http.get("/api/contents").status_code == 200
