"""Athena (``awsathena+rest://@athena.REGION.amazonaws.com:443/DATABASE``), through pyathena.

Authentication, as AWS users do it (all optional; otherwise boto3's default chain: environment,
``~/.aws``, instance/task role):

* ``profile = "analytics"`` — a named profile;
* ``role_arn = "arn:aws:iam::123:role/valuetrack"`` — assumed with STS;
* ``aws_access_key_id`` / ``aws_secret_access_key`` (+ ``aws_session_token``) from secrets.

Required: ``s3_staging_dir = "s3://bucket/valuetrack/"`` (query results) unless the workgroup
enforces one; ``work_group`` (default ``primary``); ``region``. Athena has no per-query tags: the
query starts with a ``/* valuetrack:<model>:<purpose> */`` comment (visible in the history), and a
dedicated workgroup is the way to budget valuetrack. The cost is Athena's ``DataScannedInBytes``.
On timeout the query is stopped (``StopQueryExecution``). Timestamps are ``timestamp`` (UTC).
"""

from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement as _ColumnElement

from valuetrack.connectors.base import Connector, RunContext
from valuetrack.queries import DialectOps


class _AtTimeZone(_ColumnElement):
    """``(expr AT TIME ZONE zone)`` (Trino); zone is a bound parameter."""

    inherit_cache = True
    type = sa.DateTime(timezone=True)

    def __init__(self, expr: Any, zone: Any) -> None:
        self.expr = expr
        self.zone = zone


@compiles(_AtTimeZone)
def _at_time_zone(element: _AtTimeZone, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.expr, **kw)} AT TIME ZONE {compiler.process(element.zone, **kw)})"


class AthenaOps(DialectOps):
    sqlglot_dialect = "athena"

    def local_day(self, ts, tz):
        # Athena's session zone is UTC: the naive UTC timestamp becomes an instant, then local
        utc = _AtTimeZone(ts, sa.literal("UTC", sa.String))
        return sa.cast(_AtTimeZone(utc, sa.bindparam("tz", tz, type_=sa.String)), sa.Date)

    def add_days(self, ts, days):
        return sa.func.date_add(sa.literal("day", sa.String), sa.literal(int(days), sa.Integer), ts, type_=sa.DateTime)

    def quantiles(self, col, qs):
        return [sa.func.approx_percentile(col, sa.literal(float(q), sa.Float)) for q in qs]


class AthenaConnector(Connector):
    dialect_names = ("awsathena",)
    extra = "athena"
    ops = AthenaOps()

    def create_engine(self, url: str, options: Mapping[str, Any]) -> Engine:
        self.require("pyathena")
        self.require("pyathena.sqlalchemy")
        connect_args: dict[str, Any] = {}
        mapping = {"profile": "profile_name", "role_arn": "role_arn", "region": "region_name",
                   "s3_staging_dir": "s3_staging_dir", "work_group": "work_group",
                   "aws_access_key_id": "aws_access_key_id", "aws_secret_access_key": "aws_secret_access_key",
                   "aws_session_token": "aws_session_token", "endpoint_url": "endpoint_url"}
        for option, arg in mapping.items():
            if options.get(option):
                connect_args[arg] = str(options[option])
        return sa.create_engine(url, connect_args=connect_args)

    def execute(self, cursor: Any, statement: str, parameters: Any, ctx: RunContext) -> None:
        cursor.execute(f"/* {ctx.tag} */ {statement}", parameters)

    def cost(self, ctx: RunContext, elapsed_s: float) -> dict[str, Any]:
        out: dict[str, Any] = {"elapsed_s": round(elapsed_s, 6)}
        scanned = getattr(ctx.cursor, "data_scanned_in_bytes", None)
        if scanned is not None:
            out["data_scanned_bytes"] = int(scanned)
        engine_ms = getattr(ctx.cursor, "engine_execution_time_in_millis", None)
        if engine_ms is not None:
            out["engine_ms"] = int(engine_ms)
        return out

    def query_id(self, ctx: RunContext) -> str | None:
        return getattr(ctx.cursor, "query_id", None)
