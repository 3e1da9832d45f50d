"""A real JupyterHub (PyPI) with its configurable-http-proxy (npm), started by the tests.

One Hub on loopback free ports: DummyAuthenticator (any allowed user, one password), the local
process spawner running ``.venv/bin/jupyterhub-singleuser`` as root (so ``--allow-root``), sqlite
and a cookie secret in a temp dir. An api-only service "test-admin" holds the tests' admin token
(created through the Hub's own config, no CLI round trip); user tokens and servers come from the
Hub's REST API as a Hub admin would make them.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.processes import stop_process
from tests.support.services import free_port

VENV_BIN = Path(sys.executable).parent
CACHE_DIR = Path(os.environ.get("IMAGEBUILD_NB_CACHE_DIR", "/var/cache/imagebuild-nb"))
PROXY = CACHE_DIR / "hub-proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
SETUP_HINT = "run IMAGEBUILD_NB_HUB=1 bash scripts/setup.sh (scripts/test does)"
PASSWORD = "hub-test-password"
ADMIN_SERVICE = "test-admin"


@dataclass
class Hub:
    root: Path
    users: tuple[str, ...]
    admins: tuple[str, ...]
    extra_config: str = ""  # Python appended to the config file (``c`` is in scope)
    services: dict[str, str] = field(default_factory=dict)  # name -> URL, as the config says
    port: int = field(default_factory=free_port)
    hub_port: int = field(default_factory=free_port)
    proxy_api_port: int = field(default_factory=free_port)
    admin_token: str = field(default_factory=lambda: secrets.token_hex(24))
    process: subprocess.Popen[bytes] | None = None
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The public URL (the proxy): what browsers and user servers' clients go through."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "jupyterhub.log"

    def config(self) -> str:
        home = self.root / "home" / "{username}"
        settings = {
            "c.JupyterHub.bind_url": f"{self.url}/",
            "c.JupyterHub.hub_ip": "127.0.0.1",
            "c.JupyterHub.hub_port": self.hub_port,
            "c.ConfigurableHTTPProxy.api_url": f"http://127.0.0.1:{self.proxy_api_port}",
            "c.ConfigurableHTTPProxy.command": [str(PROXY)],
            "c.JupyterHub.db_url": f"sqlite:///{self.root / 'jupyterhub.sqlite'}",
            "c.JupyterHub.cookie_secret_file": str(self.root / "cookie_secret"),
            "c.JupyterHub.pid_file": str(self.root / "jupyterhub.pid"),
            "c.JupyterHub.authenticator_class": "dummy",
            "c.DummyAuthenticator.password": PASSWORD,
            "c.Authenticator.allow_all": True,
            "c.Authenticator.allowed_users": set(self.users),
            "c.Authenticator.admin_users": set(self.admins),
            "c.JupyterHub.spawner_class": "simple",
            "c.Spawner.cmd": [str(VENV_BIN / "jupyterhub-singleuser")],
            # The spawner runs as this (root) user; Jupyter Server refuses root without this.
            "c.Spawner.args": ["--ServerApp.allow_root=True"],
            "c.SimpleLocalProcessSpawner.home_dir_template": str(home),
            "c.Spawner.start_timeout": 120,
            "c.Spawner.http_timeout": 120,
            "c.JupyterHub.services": [{"name": ADMIN_SERVICE, "api_token": self.admin_token}],
            "c.JupyterHub.load_roles": [{
                "name": ADMIN_SERVICE,
                "scopes": ["admin:users", "admin:servers", "tokens", "list:services",
                           "read:services"],
                "services": [ADMIN_SERVICE],
            }],
        }
        lines = [f"{name} = {value!r}" for name, value in settings.items()]
        return "\n".join(["c = get_config()  # noqa", *lines, self.extra_config, ""])

    def start(self, *, timeout: float = 180) -> Hub:
        if not PROXY.exists():
            raise RuntimeError(f"configurable-http-proxy is missing at {PROXY}; {SETUP_HINT}")
        (self.root / "home").mkdir(parents=True, exist_ok=True)
        config = self.root / "jupyterhub_config.py"
        config.write_text(self.config())
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "python"), "-m", "jupyterhub", "-f", str(config)],
            cwd=self.root, stdout=log, stderr=log, env=self.environment())
        log.close()
        deadline = time.monotonic() + timeout  # ~10 s when quiet; the machine is shared
        while True:
            try:
                if httpx.get(f"{self.url}/hub/api", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"JupyterHub did not start:\n{self.log_path.read_text()}")
            time.sleep(0.2)

    def environment(self) -> dict[str, str]:
        """The Hub's own environment: the test process's (the spawner's env_keep decides what
        reaches user servers; the tests check that no IMAGEBUILD_NB_* setting does)."""
        return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

    def stop(self) -> list[int]:
        """SIGTERM the Hub: it stops the user servers, its managed services and the proxy.
        Returns what it left running (then killed, so nothing outlives the tests)."""
        if self.process is None:
            return []
        if self.process.poll() is None:
            stop_process(self.process, 60)
        deadline = time.monotonic() + 15  # children exit just after the Hub
        while (left := self.pids()) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        return left

    # --- the Hub's REST API ------------------------------------------------------------------

    def api(self, method: str, path: str, *, token: str | None = None,
            **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"token {token or self.admin_token}"}
        return httpx.request(method, f"{self.url}/hub/api{path}", headers=headers,
                             timeout=60, **kwargs)  # type: ignore[arg-type]

    def token(self, user: str) -> str:
        """An API token of ``user`` (all the user's own permissions), made once per Hub."""
        if user not in self._tokens:
            response = self.api("POST", f"/users/{user}/tokens", json={"note": "tests"})
            response.raise_for_status()
            self._tokens[user] = response.json()["token"]
        return self._tokens[user]

    def start_server(self, user: str, *, timeout: float = 180) -> str:
        """Start ``user``'s single-user server and wait until the Hub calls it ready; its URL."""
        response = self.api("POST", f"/users/{user}/server")
        if response.status_code not in (201, 202, 400):  # 400: already running
            response.raise_for_status()
        deadline = time.monotonic() + timeout
        while True:
            model = self.api("GET", f"/users/{user}").json()
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return f"{self.url}{server['url'].rstrip('/')}"
            if time.monotonic() > deadline:
                raise RuntimeError(f"{user}'s server did not start: {model}\n"
                                   f"{self.log_path.read_text()[-4000:]}")
            time.sleep(0.3)

    def pids(self) -> list[int]:
        """The Hub and every process it started that still runs (the proxy, user servers and
        their kernels, managed services). Spawned servers get their own sessions, so they are
        found by what names this Hub: its root (Hub) or its URL (the proxy's error target) in the
        command line, its API URL in the environment (servers, kernels, services)."""
        marks = (str(self.root).encode(), f"127.0.0.1:{self.hub_port}/hub/".encode())
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes()
                environ = (proc / "environ").read_bytes()
                if (proc / "stat").read_text().split(") ")[-1].startswith("Z"):
                    continue  # exited, waiting for its parent to reap it
            except OSError:
                continue
            if any(mark in cmdline or mark in environ for mark in marks):
                found.append(int(proc.name))
        return found
