"""``refresh --lock``: one refresh at a time per app database, for schedulers (docs/scheduling.md).

SQLite: an exclusive ``flock`` on a file beside the database (``valuetrack.db.refresh.lock``).
PostgreSQL: a session-level advisory lock on a connection held for the run. Both are released by
the operating system or the server when the holder dies, so a lock left by a killed run never
blocks the next one; nothing needs cleaning up.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterator

from sqlalchemy.engine import Engine, make_url

from valuetrack.errors import ValuetrackError

POLL_S = 0.2
_ADVISORY_KEY = 7_346_121  # any constant distinct from the migration lock in store/db.py


class RunLocked(ValuetrackError):
    """Another refresh held the lock for longer than the timeout (exit code 1)."""

    code = "locked"


def lock_path(store_url: str) -> Path | None:
    """The lock file beside a SQLite app database file, or None (a server or in-memory database)."""
    url = make_url(store_url)
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database + ".refresh.lock")


@contextlib.contextmanager
def refresh_lock(engine: Engine, store_url: str, timeout_s: float) -> Iterator[None]:
    """Hold the refresh lock for the body; wait up to ``timeout_s`` for it, then raise RunLocked."""
    path = lock_path(store_url)
    if path is not None:
        with _flock(path, timeout_s):
            yield
    elif engine.dialect.name == "postgresql":
        with _advisory(engine, timeout_s):
            yield
    else:  # an in-memory database lives in one process: nothing to share
        yield


def _give_up(timeout_s: float, where: str) -> RunLocked:
    return RunLocked(f"another refresh is running on this app database ({where}); waited {timeout_s:g} s for it "
                     "to finish. Try again later, or wait longer with --lock-timeout SECONDS")


@contextlib.contextmanager
def _flock(path: Path, timeout_s: float) -> Iterator[None]:
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _give_up(timeout_s, f"lock file {path}") from None
                time.sleep(POLL_S)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for a person looking
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _advisory(engine: Engine, timeout_s: float) -> Iterator[None]:
    with engine.connect() as conn:
        deadline = time.monotonic() + timeout_s
        while not conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({_ADVISORY_KEY})").scalar():
            if time.monotonic() >= deadline:
                raise _give_up(timeout_s, "PostgreSQL advisory lock")
            time.sleep(POLL_S)
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_ADVISORY_KEY})")
            conn.commit()
