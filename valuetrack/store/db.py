"""Opening the app database: one engine per URL, migrated to the latest schema on open.

SQLite (the default) runs in WAL mode with a busy timeout so that several writers (the app, the
CLI, a cron job) wait for each other instead of failing; PostgreSQL is the team deployment.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

from valuetrack.config import redact_url
from valuetrack.errors import ConfigError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest migration's revision. Migrations are numbered: ``NNNN_what.py`` has revision
    ``NNNN`` and revises the one before (tests/store/test_migrations.py checks it against Alembic's
    own reading), so this needs no import of Alembic, which every command and page would pay for
    (≈ 0.1 s) only to learn that the app database is current."""
    return max(p.name[:4] for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def current_revision(conn: Connection) -> str | None:
    """The app database's revision as Alembic records it (None: a new, empty database)."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def database_exists(url: str) -> bool:
    """False only for a SQLite file that does not exist yet (opening it would create it); a server
    database (PostgreSQL) is assumed to exist."""
    try:
        parsed = make_url(url)
    except Exception:
        return True  # open_engine reports the bad URL
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return True
    return Path(parsed.database).exists()


def require_folder(url: str) -> None:
    """ConfigError when ``url`` is a SQLite file whose folder does not exist (SQLite would fail to
    create it with a bare "unable to open database file")."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:":
        folder = Path(database).parent
        if not folder.exists():
            raise ConfigError(f"[store].url: folder {str(folder)!r} of the app database does not exist")


def open_engine(url: str) -> Engine:
    """Return the (cached) engine for the app database at ``url``, migrated to the latest schema."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create(url)
            migrate(engine)
            _engines[url] = engine
        return engine


def _create(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(f"[store].url {redact_url(url)!r} is not a SQLAlchemy URL such as 'sqlite:///valuetrack.db'") from None
    if parsed.get_backend_name() == "sqlite":
        require_folder(url)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            # Python's sqlite3 opens transactions lazily; BEGIN IMMEDIATE on write makes writers
            # queue on the busy timeout instead of failing on lock upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"[store].url needs the driver {exc.name!r}: pip install \"valuetrack[postgres]\"") from None
    except NoSuchModuleError:
        raise ConfigError(f"[store].url: no database driver for {parsed.drivername!r}; use sqlite:///FILE or "
                          "postgresql+psycopg://USER@HOST/DB") from None
    except (ArgumentError, TypeError, ValueError) as exc:
        raise ConfigError(f"[store].url is not usable: {exc}") from None


def migrate(engine: Engine) -> None:
    """Upgrade the schema to head (no-op when current). Safe to call from several processes.

    The revision is checked again inside the write transaction, which holds SQLite's write lock
    (BEGIN IMMEDIATE) or a PostgreSQL advisory lock, so of several processes opening a new app
    database at once exactly one migrates and the others see the result.
    """
    try:
        with engine.connect() as conn:
            current = current_revision(conn)
        if current == head_revision():
            return
        with engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                # SQLite changes a column by rebuilding its table (copy, drop, rename); with foreign
                # keys enforced, dropping a table others refer to (models ← audit_log) fails. The
                # pragma only changes outside a transaction; keys are checked before committing.
                conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
            try:
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                    if current_revision(conn) != head_revision():
                        from alembic import command

                        cfg = _alembic_config()
                        cfg.attributes["connection"] = conn
                        command.upgrade(cfg, "head")
                    if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                        raise ConfigError("cannot migrate the app database: the upgrade would break a reference "
                                          "between its tables; nothing was changed")
            finally:
                if sqlite:
                    conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")
    except OperationalError as exc:
        if any(mark in str(exc.orig).lower() for mark in _READ_ONLY):
            raise ConfigError(write_failure(exc.orig, done="it cannot be opened")) from None
        hint = "; another process is writing to it, try again" if "locked" in str(exc.orig) else ""
        raise ConfigError(f"cannot open the app database: {exc.orig}{hint}") from None
    except SQLAlchemyError as exc:
        raise ConfigError(f"cannot migrate the app database: {exc}") from None


_MIGRATION_LOCK = 7_346_120  # any constant: the advisory lock serialising migrations on PostgreSQL


def data_version(engine: Engine) -> tuple:
    """A cheap token that changes whenever a model is registered, edited or retired, or a refresh
    finishes (each model's, then the portfolio's value at risk): caches of figures derived from the
    app database key on it."""

    from valuetrack.store.schema import portfolio_var

    with engine.connect() as conn:
        var = conn.execute(sa.select(sa.func.max(portfolio_var.c.id))).scalar()  # stored after each valuation
        return (*data_version_of(conn), var)


def data_version_of(conn: Connection) -> tuple:
    """The registry's and the refresh log's high-water marks on an open connection (inside a
    transaction: as that transaction sees it); a valuation's inputs are current while it holds."""

    from valuetrack.store.schema import audit_log, refreshes

    reg = conn.execute(sa.select(sa.func.max(audit_log.c.id))).scalar()
    ref = conn.execute(sa.select(sa.func.max(refreshes.c.id), sa.func.count(refreshes.c.finished_at))).one()
    return (reg, ref[0], int(ref[1]))


_READ_ONLY = ("readonly database", "read-only", "read only")


def write_failure(orig: BaseException, *, done: str = "nothing more was written") -> str:
    """The sentence for an app-database error during a write: read-only says so (no retry will
    help); anything else (locked past the busy timeout, disk full, gone) is worth a retry."""
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0][:300]
    if any(mark in first.lower() for mark in _READ_ONLY):
        return (f"the app database is read-only ({first}); {done}. valuetrack needs write access to it: "
                "for SQLite the file and its folder (where it keeps its -wal and -shm files), for "
                "PostgreSQL a user that may write; or point [store].url at a writable database")
    return f"the app database is busy or unavailable ({first}); {done}, try again"


def dispose_all() -> None:
    """Close every cached engine (tests, and the app on shutdown)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
