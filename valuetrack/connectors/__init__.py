"""Warehouse connectors: one module per warehouse, chosen by the connection URL's dialect.

Adding a warehouse = a new module with a :class:`~valuetrack.connectors.base.Connector` subclass
and one line in ``_REGISTRY`` below. Driver modules are imported inside each connector, so a
missing driver only fails when that warehouse is used, with the exact ``pip install`` command.
"""

from __future__ import annotations

import importlib
from typing import Mapping

from sqlalchemy.engine import Engine

from valuetrack.config import ConnectionSettings
from valuetrack.connectors.base import ConnectionCheck, Connector, QueryResult
from valuetrack.errors import ConfigError

# URL backend name → "module:Class" (imported lazily so no driver is imported by this package)
_REGISTRY: dict[str, str] = {
    "duckdb": "valuetrack.connectors.duckdb:DuckDBConnector",
    "bigquery": "valuetrack.connectors.bigquery:BigQueryConnector",
    "snowflake": "valuetrack.connectors.snowflake:SnowflakeConnector",
    "awsathena": "valuetrack.connectors.athena:AthenaConnector",
}


def connector_class(dialect: str) -> type[Connector]:
    """The connector class serving a URL backend name (``duckdb``, ``bigquery`` ...)."""
    try:
        target = _REGISTRY[dialect]
    except KeyError:
        raise ConfigError(
            f"no connector for URL scheme {dialect!r}; supported: {', '.join(sorted(_REGISTRY))}"
        ) from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def get_connector(conn: ConnectionSettings, secrets: Mapping[str, str] | None = None, *,
                  engine: Engine | None = None) -> Connector:
    """The connector for a connection, chosen by its URL's dialect; the engine is made lazily."""
    return connector_class(conn.dialect)(conn, secrets, engine=engine)


def test_connection(conn: ConnectionSettings, secrets: Mapping[str, str] | None = None) -> ConnectionCheck:
    """Check a connection for the connections page and the CLI; never raises for a down warehouse."""
    try:
        connector = get_connector(conn, secrets)
    except Exception as exc:  # unknown scheme, bad option
        from valuetrack.config import redact_url

        return ConnectionCheck(False, str(exc), None, None, conn.dialect, redact_url(conn.url))
    try:
        return connector.test_connection()
    finally:
        connector.dispose()


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test

__all__ = ["ConnectionCheck", "Connector", "QueryResult", "connector_class", "get_connector", "test_connection"]
