"""A private PostgreSQL cluster for the build-farm tests: initdb + pg_ctl on a free loopback port.

The server runs as the ``postgres`` user (initdb refuses root) from a directory of its own, with
durability off (a test cluster never outlives its session). Each test gets its own database.

    with PostgresCluster.start_new() as cluster:
        url = cluster.create_database()      # postgresql://postgres@127.0.0.1:PORT/test_<hex>
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.support.services import free_port

SETUP_HINT = "install the server with: bash scripts/postgres.sh (scripts/test does)"


def bindir() -> Path | None:
    """The newest installed server's bin directory (Debian layout), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return Path(found[-1]).parent if found else None


@dataclass
class PostgresCluster:
    root: Path
    port: int
    bin: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start_new(cls) -> PostgresCluster:
        found = bindir()
        if found is None:
            raise RuntimeError(f"no PostgreSQL server binaries: {SETUP_HINT}")
        user = pwd.getpwnam("postgres")
        root = Path(tempfile.mkdtemp(prefix="ibnb-pg-"))
        os.chown(root, user.pw_uid, user.pw_gid)
        cluster = cls(root=root, port=free_port(), bin=found)
        cluster._as_postgres("initdb", "-D", str(cluster.data), "-A", "trust", "-U", "postgres",
                             "-E", "UTF8", "--no-sync")
        options = (f"-p {cluster.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        cluster._as_postgres("pg_ctl", "-D", str(cluster.data), "-o", options,
                             "-l", str(root / "server.log"), "-w", "-t", "60", "start")
        return cluster

    def create_database(self) -> str:
        import psycopg

        name = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _as_postgres(self, program: str, *args: str) -> None:
        result = subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / program), *args],
            cwd=self.root, capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 0:
            log = (self.root / "server.log")
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): "
                               f"{result.stderr.strip()}\n{tail}")
