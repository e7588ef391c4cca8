"""BigQuery (``bigquery://project/dataset``), through google-cloud-bigquery and sqlalchemy-bigquery.

Authentication, as BigQuery users do it:

* ``credentials = "${GOOGLE_APPLICATION_CREDENTIALS}"`` — a service-account JSON file; or
* nothing — application default credentials (``gcloud auth application-default login``, the
  metadata server on GCP, workload identity).

Other options: ``location`` (e.g. ``"EU"``), ``maximum_bytes_billed`` (a hard cap per query; the
job fails instead of costing more), ``api_endpoint`` + ``anonymous = true`` (an emulator).
Every job carries the labels ``app=valuetrack, model=<name>, purpose=<what>`` and a server-side
``job_timeout_ms``; on timeout the job is cancelled. The cost is BigQuery's ``total_bytes_billed``.
Timestamps must be ``TIMESTAMP`` columns (``DATETIME`` has no time zone to convert from).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.expression import ColumnElement as _ColumnElement

from valuetrack.connectors.base import Connector, RunContext
from valuetrack.queries import DialectOps


class _IntervalDays(_ColumnElement):
    """``INTERVAL <n> DAY`` for a validated int n (BigQuery has no interval function form)."""

    inherit_cache = True
    type = sa.Interval()

    def __init__(self, days: int) -> None:
        self.days = int(days)


@compiles(_IntervalDays)
def _interval_days(element: _IntervalDays, compiler: Any, **kw: Any) -> str:
    return f"INTERVAL {int(element.days)} DAY"


class _ApproxQuantile(_ColumnElement):
    """``APPROX_QUANTILES(col, 1000)[OFFSET(k)]``: BigQuery's approximate quantile."""

    inherit_cache = True
    type = sa.Float()

    def __init__(self, col: ColumnElement, q: float) -> None:
        self.col = col
        self.k = int(round(float(q) * 1000))


@compiles(_ApproxQuantile)
def _approx_quantile(element: _ApproxQuantile, compiler: Any, **kw: Any) -> str:
    return f"APPROX_QUANTILES({compiler.process(element.col, **kw)}, 1000)[OFFSET({int(element.k)})]"


class BigQueryOps(DialectOps):
    sqlglot_dialect = "bigquery"

    def local_day(self, ts, tz):
        return sa.func.date(ts, sa.bindparam("tz", tz, type_=sa.String), type_=sa.Date)

    def add_days(self, ts, days):
        return sa.func.timestamp_add(ts, _IntervalDays(days), type_=sa.DateTime(timezone=True))

    def quantiles(self, col, qs):
        return [_ApproxQuantile(col, q) for q in qs]

    def instant(self, name: str, value: dt.datetime):
        # a TIMESTAMP parameter: BigQuery refuses to compare TIMESTAMP with DATETIME
        return sa.bindparam(name, value.replace(tzinfo=dt.timezone.utc), type_=sa.DateTime(timezone=True))


class BigQueryConnector(Connector):
    dialect_names = ("bigquery",)
    extra = "bigquery"
    ops = BigQueryOps()

    def create_engine(self, url: str, options: Mapping[str, Any]) -> Engine:
        self.require("google.cloud.bigquery")
        self.require("sqlalchemy_bigquery")
        kwargs: dict[str, Any] = {}
        if options.get("credentials"):
            kwargs["credentials_path"] = str(options["credentials"])
        if options.get("location"):
            kwargs["location"] = str(options["location"])
        if options.get("api_endpoint"):
            from google.api_core.client_options import ClientOptions
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import bigquery

            project = sa.engine.make_url(url).host
            creds = AnonymousCredentials() if options.get("anonymous") else None
            client = bigquery.Client(project=project, credentials=creds,
                                     client_options=ClientOptions(api_endpoint=str(options["api_endpoint"])))
            kwargs["user_supplied_client"] = True
            kwargs["connect_args"] = {"client": client}
        return sa.create_engine(url, **kwargs)

    def execute(self, cursor: Any, statement: str, parameters: Any, ctx: RunContext) -> None:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            labels={"app": "valuetrack", "model": ctx.model[:63], "purpose": ctx.purpose[:63]},
            job_timeout_ms=int(ctx.timeout_s * 1000),
        )
        cap = self.conn.options.get("maximum_bytes_billed")
        if cap:
            config.maximum_bytes_billed = int(cap)
        cursor.execute(statement, parameters, job_config=config)

    def cancel(self, ctx: RunContext) -> None:
        job = getattr(ctx.cursor, "_query_job", None)
        if job is not None:
            job.cancel()

    def cost(self, ctx: RunContext, elapsed_s: float) -> dict[str, Any]:
        job = getattr(ctx.cursor, "_query_job", None)
        out: dict[str, Any] = {"elapsed_s": round(elapsed_s, 6)}
        if job is not None:
            for name, attr in (("bytes_billed", "total_bytes_billed"), ("bytes_processed", "total_bytes_processed"),
                               ("slot_ms", "slot_millis")):
                value = getattr(job, attr, None)
                if value is not None:
                    out[name] = int(value)
        return out

    def query_id(self, ctx: RunContext) -> str | None:
        job = getattr(ctx.cursor, "_query_job", None)
        return getattr(job, "job_id", None)

    def is_transient(self, exc: BaseException) -> bool:
        text = str(exc)
        if any(s in text for s in ("rateLimitExceeded", "backendError", "internalError", "jobRateLimitExceeded")):
            return True
        return super().is_transient(exc)
