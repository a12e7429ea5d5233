"""A real PostgreSQL 15 for tests: one server per test session, a fresh database per test.

As ``../shared/INFRA.md`` describes: ``initdb`` into a temporary directory (as the
``postgres`` user when the tests run as root: the server refuses to run as root), started
by ``pg_ctl`` bound to 127.0.0.1 on a free port with its socket in another temporary
directory, and stopped by ``pg_ctl stop`` when the session ends. :func:`start` skips the
calling test with the reason if the binaries or psycopg are missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    """A running server; :meth:`new_database` makes a database for one test."""

    data: Path
    sock: Path
    port: int
    as_postgres: bool
    databases: list[str] = field(default_factory=list)

    def dsn(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self) -> str:
        """A new, empty database; returns its DSN."""
        name = "t_" + uuid.uuid4().hex[:16]
        self._admin(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.dsn(name)

    def drop_database(self, dsn: str) -> None:
        name = dsn.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        _run(self, "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.data, ignore_errors=True)
        shutil.rmtree(self.sock, ignore_errors=True)


def _run(server: PgServer, tool: str, *args: str) -> None:
    cmd = [str(PGBIN / tool), *args]
    if server.as_postgres:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        log = server.data / "server.log"
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr}\n{tail}")


def start() -> PgServer:
    """Start a server (or skip the test, saying why)."""
    if not (PGBIN / "initdb").exists() or not (PGBIN / "pg_ctl").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PGBIN} (set PGBIN to their folder)")
    pytest.importorskip("psycopg", reason="pip install 'durable-saga[postgres]'")
    as_postgres = os.geteuid() == 0
    data, sock = Path(tempfile.mkdtemp("-pgdata")), Path(tempfile.mkdtemp("-pgsock"))
    if as_postgres:
        shutil.chown(data, "postgres")
        shutil.chown(sock, "postgres")
    server = PgServer(data=data, sock=sock, port=_free_port(), as_postgres=as_postgres)
    init = ("-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
    _run(server, "initdb", *init)
    options = f"-c listen_addresses=127.0.0.1 -p {server.port} -k {sock} -c fsync=off"
    log = str(data / "server.log")
    _run(server, "pg_ctl", "-D", str(data), "-l", log, "-w", "-o", options, "start")
    return server
