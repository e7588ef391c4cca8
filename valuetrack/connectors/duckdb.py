"""DuckDB: the embedded default (``duckdb:///path/to/file.duckdb``).

Options: ``read_only`` (default false), ``memory_limit`` (e.g. ``"1GB"``), ``threads``.
Cancellation uses ``DuckDBPyConnection.interrupt()``; DuckDB reports no cost beyond elapsed time.
"""

from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from valuetrack.connectors.base import Connector, RunContext
from valuetrack.queries import DialectOps


class DuckDBOps(DialectOps):
    """DuckDB: ``timezone(tz, timezone('UTC', ts))`` (needs the bundled ICU extension)."""

    sqlglot_dialect = "duckdb"

    def min_by(self, value, key):
        return sa.func.arg_min(value, key)


class DuckDBConnector(Connector):
    dialect_names = ("duckdb",)
    extra = None
    ops = DuckDBOps()

    def create_engine(self, url: str, options: Mapping[str, Any]) -> Engine:
        self.require("duckdb_engine")
        config: dict[str, Any] = {}
        for key in ("memory_limit", "threads"):
            if key in options:
                config[key] = str(options[key])
        connect_args: dict[str, Any] = {"config": config} if config else {}
        if options.get("read_only"):
            connect_args["read_only"] = True
        return sa.create_engine(url, connect_args=connect_args)

    @property
    def engine(self) -> Engine:
        engine = super().engine
        if not getattr(engine, "_valuetrack_utc", False):
            # naive TIMESTAMP columns hold UTC: make DuckDB's casts and comparisons agree
            sa.event.listen(engine, "connect", lambda dbapi_con, _rec: dbapi_con.execute("SET TimeZone = 'UTC'"))
            engine._valuetrack_utc = True  # type: ignore[attr-defined]
        return engine

    def cancel(self, ctx: RunContext) -> None:
        if ctx.dbapi_connection is not None:
            ctx.dbapi_connection.interrupt()

    def is_transient(self, exc: BaseException) -> bool:
        # a file locked by another process clears when that process is done
        return "could not set lock on file" in str(exc).lower() or super().is_transient(exc)

    def server_version(self) -> str | None:
        import duckdb

        return duckdb.__version__
