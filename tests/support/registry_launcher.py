"""Start a ``docker-registry`` with a config of the test's choosing (TLS, token auth) and stop
it on demand: the shared ``make_registry`` fixture only speaks plain HTTP and stops at the end
of the test, and some tests need a registry that goes away in the middle."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.processes import stop_process
from tests.support.services import SETUP_HINT, free_port


@dataclass
class LaunchedRegistry:
    host: str
    scheme: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def stop(self) -> None:
        if self.process.poll() is None:
            stop_process(self.process, 10)


def launch_registry(
    workdir: Path, *, tls: tuple[Path, Path] | None = None, ca_file: Path | None = None,
    extra_config: str = "", address: str = "127.0.0.1", client_ca: Path | None = None,
) -> LaunchedRegistry:
    """Start a registry on a free port (loopback, or ``address``); ``tls`` is (certificate, key);
    with ``client_ca`` it asks clients for a certificate that CA signed (the readiness probe
    then waits for the port only)."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError(f"docker-registry is not installed; {SETUP_HINT}")
    port = free_port()
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    http = f"addr: {address}:{port}, secret: launched"
    if tls:
        clientcas = f", clientcas: [{client_ca}]" if client_ca else ""
        http += f", tls: {{certificate: {tls[0]}, key: {tls[1]}{clientcas}}}"
    lines = [
        "version: 0.1",
        "log: {level: warn}",
        f"storage: {{filesystem: {{rootdirectory: {storage}}}, delete: {{enabled: true}}}}",
        f"http: {{{http}}}",
    ]
    if extra_config:
        lines.append(extra_config)
    config = workdir / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log_path = workdir / "registry.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    scheme = "https" if tls else "http"
    host = f"localhost:{port}" if address == "127.0.0.1" else f"{address}:{port}"
    registry = LaunchedRegistry(host, scheme, process, log_path)
    verify: ssl.SSLContext | bool = (ssl.create_default_context(cafile=str(ca_file))
                                     if ca_file else True)
    deadline = time.monotonic() + 20
    while True:
        try:
            if client_ca:
                socket.create_connection((address, port), timeout=1).close()
                return registry
            if httpx.get(f"{registry.url}/v2/", verify=verify, timeout=1).status_code in (200, 401):
                return registry
        except (httpx.HTTPError, OSError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            registry.stop()
            raise RuntimeError(f"registry did not start: {log_path.read_text()}")
        time.sleep(0.05)
