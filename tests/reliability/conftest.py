"""Fixtures of the reliability suite: a throwaway PostgreSQL server, app-database snapshots.

The PostgreSQL server is started from Debian's binaries (``/usr/lib/postgresql/*/bin``) in a temporary
folder on a free port, as the ``postgres`` user when the tests run as root (initdb refuses root),
and stopped at the end of the session. Without those binaries the tests that need it FAIL (never
skip) and say how to install them: ``bash scripts/system-deps.sh``.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A throwaway cluster; ``new_database()`` gives each test its own database URL."""

    def __init__(self) -> None:
        bindir = _pg_bin()
        if bindir is None:
            pytest.fail("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/pg_ctl); "
                        "install them with: bash scripts/system-deps.sh", pytrace=False)
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="valuetrack-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user: str | None = None
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            self.user = "postgres"
            try:
                shutil.chown(self.root, user=self.user)
            except LookupError:
                pytest.fail("running as root but there is no 'postgres' user to run the server; "
                            "install Debian's postgresql package: bash scripts/system-deps.sh", pytrace=False)
        self.root.chmod(0o755)
        self._counter = itertools.count()

    def _run(self, *cmd: str) -> None:
        full = list(cmd)
        if self.user:
            full = ["runuser", "-u", self.user, "--", *full]
        proc = subprocess.run(full, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd[:2])} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}",
                        pytrace=False)

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
                "-c max_connections=200 -c synchronous_commit=off")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        name = f"vt_{os.getpid()}_{next(self._counter)}"
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail('psycopg is not installed: pip install "valuetrack[postgres]"', pytrace=False)
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return postgres.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The app database URL on each backend: a SQLite file, then a fresh PostgreSQL database."""
    from valuetrack.store.db import dispose_all

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
    else:
        yield request.getfixturevalue("pg_url")
    dispose_all()


# ------------------------------------------------------------------------------------------------
# app database snapshots: "unchanged afterwards" means byte-for-byte and row-for-row


def db_rows(url_or_engine: Any) -> dict[str, list[tuple]]:
    """Every row of every table, sorted, as plain tuples (works for SQLite and PostgreSQL)."""
    engine = sa.create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        out: dict[str, list[tuple]] = {}
        with engine.connect() as c:
            for table in sorted(sa.inspect(c).get_table_names()):
                rows = c.execute(sa.text(f'SELECT * FROM "{table}"')).all()
                out[table] = sorted((tuple(map(repr, r)) for r in rows))
        return out
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def file_digest(path: Path) -> str:
    """SHA-256 of a SQLite database file after folding its WAL in (so readers see the same bytes)."""
    if not path.exists():
        return "absent"
    con = sa.create_engine(f"sqlite:///{path}")
    with con.connect() as c:
        c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    con.dispose()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
