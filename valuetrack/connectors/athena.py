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

Write-back (docs/writeback.md): Athena cannot DELETE from or INSERT into a plain table, so
``replace_rows`` writes one Parquet file per as-of date under ``write_location`` (an S3 prefix the
connection names) and keeps a Glue table partitioned by ``as_of`` over it; re-writing an as-of
replaces its file.
"""

from __future__ import annotations

import io
from typing import Any, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement as _ColumnElement

from valuetrack.connectors.base import Connector, RunContext
from valuetrack.errors import ConfigError, ParameterError, ValuetrackError, WarehouseError
from valuetrack.sqlsafety import split_table
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

    def array_sum(self, array, field):
        raise ParameterError("cost_source.credits (a nested array column) is read on BigQuery and DuckDB only; "
                             "on Athena, point cost_source at a view with the net cost in one column")

    def array_has_pair(self, array, key, value):
        raise ParameterError("cost_source.labels (a nested array column) is read on BigQuery and DuckDB only; "
                             "on Athena, filter a flat tag column with cost_source.where")


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

    # -- write-back: Parquet on S3 + a Glue table ------------------------------------------------

    def replace_rows(self, table: str, columns: Sequence[sa.Column], rows: Sequence[Mapping[str, Any]], *,
                     key: Mapping[str, Any], chunk: int = 0) -> int:
        """Write ``rows`` as the Parquet partition ``key`` (one column, e.g. as_of) of a Glue table
        over ``write_location``; returns the rows of the partition's previous file(s)."""
        self.check_write(table)
        (part, value), = key.items()
        url, options = self.conn.resolved(self._secrets)
        location = str(options.get("write_location") or "")
        if not location.startswith("s3://"):
            raise ConfigError(f"[connections.{self.name}].write_location must be an S3 prefix such as "
                              "\"s3://bucket/valuetrack/\" (where the Parquet files of the table go)")
        schema, name = split_table(table)
        database = schema or sa.engine.make_url(url).database
        bucket, _, prefix = location[5:].partition("/")
        root = f"{prefix.rstrip('/')}/{name}/".lstrip("/")
        folder = f"{root}{part}={value}/"
        try:
            s3, glue = self._aws_clients(options)
            old = s3.list_objects_v2(Bucket=bucket, Prefix=folder).get("Contents", [])
            replaced = sum(_parquet_rows(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in old)
            for o in old:
                s3.delete_object(Bucket=bucket, Key=o["Key"])
            data = [c for c in columns if c.name != part]
            s3.put_object(Bucket=bucket, Key=f"{folder}part-00000.parquet", Body=_parquet(data, rows))
            _ensure_glue_table(glue, database, name, data, part, f"s3://{bucket}/{root}")
            spec = [str(value)]
            try:
                glue.get_partition(DatabaseName=database, TableName=name, PartitionValues=spec)
            except glue.exceptions.EntityNotFoundException:
                glue.create_partition(DatabaseName=database, TableName=name, PartitionInput={
                    "Values": spec, "StorageDescriptor": _storage(data, f"s3://{bucket}/{folder}")})
        except ValuetrackError:
            raise
        except Exception as exc:
            raise WarehouseError(self._describe(exc, f"writing the table {table!r} failed")) from None
        return replaced

    def _aws_clients(self, options: Mapping[str, Any]) -> tuple[Any, Any]:
        boto3 = self.require("boto3")
        session = boto3.Session(profile_name=options.get("profile") or None,
                                aws_access_key_id=options.get("aws_access_key_id") or None,
                                aws_secret_access_key=options.get("aws_secret_access_key") or None,
                                aws_session_token=options.get("aws_session_token") or None,
                                region_name=options.get("region") or None)
        endpoint = options.get("endpoint_url") or None
        return session.client("s3", endpoint_url=endpoint), session.client("glue", endpoint_url=endpoint)


def _glue_type(column: sa.Column) -> str:
    t = column.type
    if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float):
        return f"decimal({t.precision},{t.scale})"
    return {sa.Date: "date", sa.DateTime: "timestamp", sa.Boolean: "boolean", sa.Float: "double",
            sa.Integer: "bigint"}.get(type(t), "string")


def _arrow_type(column: sa.Column) -> Any:
    import pyarrow as pa

    kind = _glue_type(column)
    if kind.startswith("decimal"):
        return pa.decimal128(column.type.precision, column.type.scale)
    return {"date": pa.date32(), "timestamp": pa.timestamp("us"), "boolean": pa.bool_(), "double": pa.float64(),
            "bigint": pa.int64()}.get(kind, pa.string())


def _parquet(columns: Sequence[sa.Column], rows: Sequence[Mapping[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c.name, _arrow_type(c)) for c in columns])
    table = pa.Table.from_pylist([{c.name: r.get(c.name) for c in columns} for r in rows], schema=schema)
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def _parquet_rows(data: bytes) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(io.BytesIO(data)).metadata.num_rows


def _storage(columns: Sequence[sa.Column], location: str) -> dict[str, Any]:
    return {"Columns": [{"Name": c.name, "Type": _glue_type(c)} for c in columns], "Location": location,
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}


def _ensure_glue_table(glue: Any, database: str, name: str, columns: Sequence[sa.Column], part: str,
                       location: str) -> None:
    try:
        glue.get_database(Name=database)
    except glue.exceptions.EntityNotFoundException:
        glue.create_database(DatabaseInput={"Name": database})
    try:
        glue.get_table(DatabaseName=database, Name=name)
    except glue.exceptions.EntityNotFoundException:
        glue.create_table(DatabaseName=database, TableInput={
            "Name": name, "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "parquet"},
            "PartitionKeys": [{"Name": part, "Type": "date"}],
            "StorageDescriptor": _storage(columns, location)})
