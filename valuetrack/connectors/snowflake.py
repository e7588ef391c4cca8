"""Snowflake (``snowflake://user@account/database/schema?warehouse=WH&role=ROLE``).

Authentication, as Snowflake users do it:

* ``password = "${SNOWFLAKE_PASSWORD}"``; or
* key pair: ``private_key_file = "${SNOWFLAKE_KEY_FILE}"`` (PEM, PKCS#8) and, if encrypted,
  ``private_key_passphrase = "${SNOWFLAKE_KEY_PASSPHRASE}"``;
* ``authenticator`` is passed through (e.g. ``"externalbrowser"`` for SSO on a laptop).

Every statement carries ``QUERY_TAG = valuetrack:<model>:<purpose>`` (a statement parameter) and
the connector's client-side ``timeout``; on timeout the session's queries are cancelled with
``SYSTEM$CANCEL_QUERY``. Snowflake reports no per-query money cost to the client: the cost stored
is the elapsed time and query id (credits = elapsed × warehouse size, see docs/connectors.md).
Timestamps should be ``TIMESTAMP_NTZ`` holding UTC (or TIMESTAMP_TZ stored with +00:00).
"""

from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from valuetrack.connectors.base import Connector, RunContext
from valuetrack.errors import ConfigError, ParameterError
from valuetrack.queries import DialectOps


class SnowflakeOps(DialectOps):
    sqlglot_dialect = "snowflake"

    def local_day(self, ts, tz):
        utc = sa.literal("UTC", sa.String)
        return sa.cast(sa.func.convert_timezone(utc, sa.bindparam("tz", tz, type_=sa.String), ts), sa.Date)

    def add_days(self, ts, days):
        return sa.func.dateadd(sa.literal_column("day"), sa.literal(int(days), sa.Integer), ts,
                               type_=sa.DateTime)

    def quantiles(self, col, qs):
        return [sa.func.approx_percentile(col, sa.literal(float(q), sa.Float)) for q in qs]

    def array_sum(self, array, field):
        raise ParameterError("cost_source.credits (a nested array column) is read on BigQuery and DuckDB only; "
                             "on Snowflake, point cost_source at a view with the net cost in one column")

    def array_has_pair(self, array, key, value):
        raise ParameterError("cost_source.labels (a nested array column) is read on BigQuery and DuckDB only; "
                             "on Snowflake, filter a flat tag column with cost_source.where")


class SnowflakeConnector(Connector):
    dialect_names = ("snowflake",)
    extra = "snowflake"
    ops = SnowflakeOps()

    def create_engine(self, url: str, options: Mapping[str, Any]) -> Engine:
        self.require("snowflake.connector")
        self.require("snowflake.sqlalchemy")
        connect_args: dict[str, Any] = dict(options.get("connect_args", {}) or {})
        if options.get("password"):
            connect_args["password"] = str(options["password"])
        if options.get("private_key_file"):
            connect_args["private_key"] = _load_private_key(str(options["private_key_file"]),
                                                            options.get("private_key_passphrase"))
        if options.get("authenticator"):
            connect_args["authenticator"] = str(options["authenticator"])
        return sa.create_engine(url, connect_args=connect_args)

    def execute(self, cursor: Any, statement: str, parameters: Any, ctx: RunContext) -> None:
        cursor.execute(statement, parameters, timeout=max(1, int(ctx.timeout_s)),
                       _statement_params={"QUERY_TAG": ctx.tag})

    def cancel(self, ctx: RunContext) -> None:
        qid = getattr(ctx.cursor, "sfqid", None)
        if qid and ctx.dbapi_connection is not None:
            ctx.dbapi_connection.cursor().execute("SELECT SYSTEM$CANCEL_QUERY(%s)", (qid,))

    def cost(self, ctx: RunContext, elapsed_s: float) -> dict[str, Any]:
        return {"elapsed_s": round(elapsed_s, 6)}

    def query_id(self, ctx: RunContext) -> str | None:
        return getattr(ctx.cursor, "sfqid", None)

    def is_transient(self, exc: BaseException) -> bool:
        errno = getattr(getattr(exc, "orig", exc), "errno", None)
        # 250001/250003: could not connect / request failed; 000625: statement queued too long
        if errno in (250001, 250003, 625):
            return True
        return super().is_transient(exc)


def _load_private_key(path: str, passphrase: Any) -> bytes:
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:  # pragma: no cover - a dependency of snowflake-connector-python
        raise ConfigError('key-pair authentication needs cryptography: pip install "valuetrack[snowflake]"') from None
    try:
        with open(path, "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), password=passphrase.encode() if passphrase else None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"private_key_file: cannot read the Snowflake private key ({type(exc).__name__}); "
                          "give a PEM (PKCS#8) file and private_key_passphrase if it is encrypted") from None
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
