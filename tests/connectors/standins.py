"""Local warehouse stand-ins: the real client libraries and SQLAlchemy dialects, local servers.

Each stand-in is driven through the same code path valuetrack uses against the real service:

========== ======================================= ==============================================
warehouse  SQLAlchemy dialect and client           local stand-in
========== ======================================= ==============================================
duckdb     duckdb-engine, duckdb                   a DuckDB file (the real thing)
snowflake  snowflake-sqlalchemy, snowflake-        fakesnow server (HTTP, subprocess; DuckDB
           connector-python                        underneath, Snowflake SQL transpiled by sqlglot)
bigquery   sqlalchemy-bigquery, google-cloud-      local-bigquery emulator (REST, subprocess from
           bigquery                                .venvs/bigquery; DuckDB underneath)
athena     pyathena[sqlalchemy] (REST cursor),     moto server (in-process thread): S3 + Athena
           boto3                                   API. moto runs no SQL: each statement's result
                                                   is computed on a DuckDB mirror of the tables
                                                   (sqlglot athena -> duckdb) and queued in moto
                                                   before pyathena submits it
========== ======================================= ==============================================

Loading is generic: any ``dict[str, pandas.DataFrame]`` whose columns hold ints, floats, strings,
bools, dates or timestamps (tz-aware UTC, or naive) with NULLs. Table and column names should be
lower-case identifiers (Snowflake upper-cases unquoted names; SQLAlchemy treats lower-case names
as case-insensitive, so the same ``sa.Table`` works on all four).

Nothing here downloads anything: ``scripts/standins/setup.sh`` installs everything beforehand.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import decimal
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[2]
SETUP_HINT = (
    "Run `bash scripts/standins/setup.sh` (`make test` runs it) to install the stand-ins, "
    "see docs/testing-standins.md."
)
STARTUP_TIMEOUT = float(os.environ.get("VALUETRACK_STANDIN_TIMEOUT", "60"))

#: Column kinds the loaders understand, and how each warehouse stores them.
KINDS = ("int", "float", "bool", "str", "date", "timestamp_tz", "timestamp")
DUCKDB_TYPES = {
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "str": "VARCHAR",
    "date": "DATE",
    "timestamp_tz": "TIMESTAMPTZ",
    "timestamp": "TIMESTAMP",
}
# Athena (Glue/Hive tables) has no time-zone-aware column type: UTC instants are stored naive.
ATHENA_MIRROR_TYPES = {**DUCKDB_TYPES, "timestamp_tz": "TIMESTAMP"}
BIGQUERY_TYPES = {
    "int": "INT64",
    "float": "FLOAT64",
    "bool": "BOOL",
    "str": "STRING",
    "date": "DATE",
    "timestamp_tz": "TIMESTAMP",
    "timestamp": "DATETIME",
}
SQLALCHEMY_TYPES: dict[str, Callable[[], sa.types.TypeEngine]] = {
    "int": sa.BigInteger,
    "float": sa.Float,
    "bool": sa.Boolean,
    "str": sa.String,
    "date": sa.Date,
    "timestamp_tz": lambda: sa.DateTime(timezone=True),  # Snowflake: TIMESTAMP_TZ
    "timestamp": sa.DateTime,  # Snowflake: TIMESTAMP_NTZ
}


class StandinUnavailable(RuntimeError):
    """A stand-in could not be installed, started or reached."""


# --------------------------------------------------------------------------------------------
# data: column kinds and value conversion
# --------------------------------------------------------------------------------------------


def column_kinds(df: pd.DataFrame) -> dict[str, str]:
    """Map each column of ``df`` to one of :data:`KINDS`, from its dtype or its values."""
    kinds: dict[str, str] = {}
    for name in df.columns:
        s = df[name]
        if pd.api.types.is_bool_dtype(s.dtype):
            kind = "bool"
        elif pd.api.types.is_integer_dtype(s.dtype):
            kind = "int"
        elif pd.api.types.is_float_dtype(s.dtype):
            kind = "float"
        elif isinstance(s.dtype, pd.DatetimeTZDtype):
            if str(s.dtype.tz) not in ("UTC", "utc"):
                raise TypeError(f"column {name!r}: timestamps must be UTC, got {s.dtype.tz}")
            kind = "timestamp_tz"
        elif pd.api.types.is_datetime64_dtype(s.dtype):
            kind = "timestamp"
        else:
            inferred = pd.api.types.infer_dtype(s, skipna=True)
            kind = {
                "string": "str",
                "empty": "str",
                "date": "date",
                "integer": "int",
                "floating": "float",
                "mixed-integer-float": "float",
                "boolean": "bool",
            }.get(inferred, "")
            if inferred == "datetime":
                tzs = {getattr(v, "tzinfo", None) is not None for v in s.dropna()}
                kind = "timestamp_tz" if tzs == {True} else "timestamp"
            if not kind:
                raise TypeError(f"column {name!r}: cannot load values of kind {inferred!r}")
        kinds[str(name)] = kind
    return kinds


def _py(value: Any, kind: str) -> Any:
    """One cell as a plain Python value for a DB-API driver (NULLs as None, UTC kept)."""
    if value is None or value is pd.NaT or (not isinstance(value, str) and pd.isna(value)):
        return None
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        return bool(value)
    if kind == "str":
        return str(value)
    if kind == "date":
        if isinstance(value, dt.datetime):
            return value.date()
        return value if isinstance(value, dt.date) else pd.Timestamp(value).date()
    ts = pd.Timestamp(value)
    if kind == "timestamp_tz":
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return ts.to_pydatetime()
    return (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts).to_pydatetime()


def records(df: pd.DataFrame, kinds: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Rows of ``df`` as dicts of plain Python values (None for every kind of missing)."""
    kinds = kinds or column_kinds(df)
    cols = list(kinds)
    return [
        {c: _py(v, kinds[c]) for c, v in zip(cols, row, strict=True)}
        for row in df[cols].itertuples(index=False, name=None)
    ]


def sqlalchemy_table(name: str, df: pd.DataFrame, metadata: sa.MetaData, schema: str | None = None) -> sa.Table:
    """A ``sa.Table`` matching ``df``, for DDL through any dialect."""
    kinds = column_kinds(df)
    return sa.Table(name, metadata, *(sa.Column(c, SQLALCHEMY_TYPES[k]()) for c, k in kinds.items()), schema=schema)


def normalize_value(value: Any, ndigits: int = 9) -> Any:
    """One result cell in a warehouse-neutral form: aware datetimes as naive UTC, Decimal and
    float rounded to ``ndigits``, numpy scalars as Python values."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        value = round(value, ndigits)
        return int(value) if value.is_integer() else value
    if isinstance(value, bool):
        return value
    return value


def normalize_rows(rows: Iterable[Sequence[Any]], ndigits: int = 9, sort: bool = True) -> list[tuple]:
    """Rows from any of the four engines, comparable with ``==``.

    Timestamps become naive UTC (Athena has no tz-aware columns; the others return aware UTC),
    numbers are rounded (summation order differs between engines), and rows are sorted with
    NULLs first unless ``sort=False``.
    """
    out = [tuple(normalize_value(v, ndigits) for v in row) for row in rows]
    if sort:
        out.sort(key=lambda r: tuple((v is not None, str(type(v).__name__) if v is not None else "", v) for v in r))
    return out


# --------------------------------------------------------------------------------------------
# process and port helpers
# --------------------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on the loopback a moment ago."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class ServerProcess:
    """A stand-in server subprocess with its log file, stopped by SIGTERM (then SIGKILL)."""

    name: str
    argv: list[str]
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = STARTUP_TIMEOUT
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    _started: float = 0.0

    def start(self) -> ServerProcess:
        """Launch and wait until ready."""
        return self.launch().wait_ready()

    def launch(self) -> ServerProcess:
        """Start the process without waiting (servers can boot side by side)."""
        if self.proc is not None:
            return self
        fd, log = tempfile.mkstemp(prefix=f"valuetrack-{self.name}-", suffix=".log")
        self.log_path = Path(log)
        env = {**os.environ, **self.env}
        with os.fdopen(fd, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=REPO_ROOT
            )
        self._started = time.monotonic()
        _live.add(self)
        return self

    def wait_ready(self) -> ServerProcess:
        """Block until ``ready()`` holds; raise :class:`StandinUnavailable` with the log tail
        when the process dies or the timeout passes."""
        if self.proc is None:
            self.launch()
        assert self.proc is not None and self.log_path is not None
        deadline = self._started + self.timeout
        while True:
            if self.proc.poll() is not None:
                raise StandinUnavailable(
                    f"{self.name} exited with code {self.proc.returncode} while starting "
                    f"({' '.join(self.argv)}); log {self.log_path}:\n{_tail(self.log_path)}"
                )
            with contextlib.suppress(Exception):
                if self.ready():
                    return self
            if time.monotonic() > deadline:
                log_path = self.log_path
                self.stop()
                raise StandinUnavailable(
                    f"{self.name} not ready after {self.timeout:.0f}s ({' '.join(self.argv)}); "
                    f"log {log_path}:\n{_tail(log_path)}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        _live.discard(self)
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __hash__(self) -> int:
        return id(self)


_live: set[ServerProcess] = set()


@atexit.register
def _stop_all() -> None:  # a crashed or interrupted session leaves no servers behind
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.stop()


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback only)
        return 200 <= resp.status < 300


def _tcp_open(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=1):
        return True


def _require(module: str, pip_name: str) -> None:
    try:
        __import__(module)
    except ImportError as exc:
        raise StandinUnavailable(f"python package {pip_name!r} is not installed ({exc})") from exc


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------------------------
# DuckDB (real) and the DuckDB mirror used for Athena
# --------------------------------------------------------------------------------------------


def set_utc(con: Any) -> None:
    # duckdb 1.5/2.0 refuse TimeZone in connect(config=...) ("the icu extension needs to be
    # loaded. But it could not be autoloaded") when offline; SET after connecting works.
    con.execute("SET TimeZone = 'UTC'")


def load_duckdb(con: Any, tables: Mapping[str, pd.DataFrame], types: Mapping[str, str] = DUCKDB_TYPES, schema: str | None = None) -> None:
    """Create and fill ``tables`` on a raw ``duckdb`` connection (replacing same-named tables)."""
    set_utc(con)
    prefix = ""
    if schema:
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        prefix = f'"{schema}".'
    for name, df in tables.items():
        kinds = column_kinds(df)
        cols = ", ".join(f'"{c}" {types[k]}' for c, k in kinds.items())
        con.execute(f'CREATE OR REPLACE TABLE {prefix}"{name}" ({cols})')
        if len(df):
            rows = records(df, kinds)
            placeholders = ", ".join("?" for _ in kinds)
            con.executemany(
                f'INSERT INTO {prefix}"{name}" VALUES ({placeholders})',
                [[r[c] for c in kinds] for r in rows],
            )


def make_duckdb_engine(path: Path | str, tables: Mapping[str, pd.DataFrame]) -> sa.Engine:
    """A duckdb-engine ``Engine`` on a DuckDB file at ``path`` holding ``tables``."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        load_duckdb(con, tables)
    finally:
        con.close()
    engine = sa.create_engine(f"duckdb:///{path}")
    sa.event.listen(engine, "connect", lambda dbapi_con, _rec: set_utc(dbapi_con))
    return engine


# --------------------------------------------------------------------------------------------
# Snowflake: fakesnow server
# --------------------------------------------------------------------------------------------


class SnowflakeStandin:
    """fakesnow's HTTP server in a subprocess, spoken to by the real connector and dialect."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.server: ServerProcess | None = None

    def start(self) -> SnowflakeStandin:
        """Launch (unless :meth:`launch` already did) and wait until the server answers."""
        self.launch()
        assert self.server is not None
        self.server.wait_ready()
        return self

    def launch(self) -> SnowflakeStandin:
        """Start the server process without waiting for it."""
        if self.server is not None:
            return self
        _require("fakesnow", "fakesnow[server]")
        _require("snowflake.sqlalchemy", "snowflake-sqlalchemy")
        self.port = free_port()
        script = REPO_ROOT / "scripts" / "standins" / "fakesnow_server.py"
        self.server = ServerProcess(
            "fakesnow",
            [sys.executable, str(script), "--host", self.host, "--port", str(self.port)],
            ready=lambda: _tcp_open(self.host, self.port),
            env={"TZ": "UTC"},  # fakesnow's DuckDB takes its session time zone from TZ
        ).launch()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.stop()

    def connect_args(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "protocol": "http",
            "network_timeout": 30,
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        }

    def engine(self, tables: Mapping[str, pd.DataFrame], database: str | None = None, schema: str = "public") -> sa.Engine:
        """An ``Engine`` on a fresh database (``database`` or a unique name) holding ``tables``."""
        database = database or _unique("vt")
        engine = sa.create_engine(f"snowflake://fake:snow@fakesnow/{database}/{schema}", connect_args=self.connect_args())
        with engine.begin() as con:
            con.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS {database}"))
            con.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {database}.{schema}"))
        self.load(engine, tables)
        return engine

    @staticmethod
    def load(engine: sa.Engine, tables: Mapping[str, pd.DataFrame]) -> None:
        # write_pandas needs PUT + INFER_SCHEMA, which fakesnow's server does not serve:
        # DDL through the dialect, then one multi-row INSERT (the connector binds client-side).
        metadata = sa.MetaData()
        loaded = {name: (sqlalchemy_table(name, df, metadata), df) for name, df in tables.items()}
        metadata.drop_all(engine)
        metadata.create_all(engine)
        with engine.begin() as con:
            for table, df in loaded.values():
                rows = records(df)
                if rows:
                    con.execute(table.insert(), rows)


# --------------------------------------------------------------------------------------------
# BigQuery: local-bigquery emulator
# --------------------------------------------------------------------------------------------


class BigQueryStandin:
    """The local-bigquery emulator (Python 3.13, its own venv) in a subprocess."""

    project = "valuetrack-test"

    def __init__(self, python: Path | str | None = None) -> None:
        self.python = Path(
            python or os.environ.get("VALUETRACK_BIGQUERY_PYTHON") or REPO_ROOT / ".venvs" / "bigquery" / "bin" / "python"
        )
        self.host = "127.0.0.1"
        self.port = 0
        self.data_dir: Path | None = None
        self.server: ServerProcess | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BigQueryStandin:
        """Launch (unless :meth:`launch` already did) and wait until the emulator answers."""
        self.launch()
        assert self.server is not None
        self.server.wait_ready()
        return self

    def launch(self) -> BigQueryStandin:
        """Start the emulator process without waiting for it."""
        if self.server is not None:
            return self
        _require("google.cloud.bigquery", "google-cloud-bigquery")
        _require("sqlalchemy_bigquery", "sqlalchemy-bigquery")
        if not self.python.exists():
            raise StandinUnavailable(f"the BigQuery emulator venv is missing ({self.python})")
        self.port, grpc_port = free_port(), free_port()
        self.data_dir = Path(tempfile.mkdtemp(prefix="valuetrack-bigquery-"))
        script = REPO_ROOT / "scripts" / "standins" / "bigquery_server.py"
        self.server = ServerProcess(
            "local-bigquery",
            [
                str(self.python), str(script), "serve",
                "--host", self.host, "--port", str(self.port), "--grpc-port", str(grpc_port),
                "--data-dir", str(self.data_dir), "--project", self.project,
            ],
            # the first API call also opens the emulator's DuckDB (and its extensions)
            ready=lambda: _http_ok(f"{self.endpoint}/bigquery/v2/projects/{self.project}/datasets"),
            env={"TZ": "UTC"},
        ).launch()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.stop()
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def client(self, dataset: str | None = None):
        """A ``google.cloud.bigquery.Client`` on the emulator (anonymous credentials)."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        job_config = bigquery.QueryJobConfig(default_dataset=f"{self.project}.{dataset}") if dataset else None
        return bigquery.Client(
            project=self.project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.endpoint),
            default_query_job_config=job_config,
        )

    def engine(self, tables: Mapping[str, pd.DataFrame], dataset: str | None = None) -> sa.Engine:
        """An ``Engine`` (``user_supplied_client=True``) on a fresh dataset holding ``tables``."""
        dataset = dataset or _unique("vt")
        client = self.client(dataset)
        client.create_dataset(f"{self.project}.{dataset}", exists_ok=True)
        self.load(client, dataset, tables)
        return sa.create_engine(
            f"bigquery://{self.project}/{dataset}?user_supplied_client=True", connect_args={"client": client}
        )

    def load(self, client: Any, dataset: str, tables: Mapping[str, pd.DataFrame]) -> None:
        from google.cloud import bigquery

        for name, df in tables.items():
            kinds = column_kinds(df)
            schema = [bigquery.SchemaField(c, BIGQUERY_TYPES[k], mode="NULLABLE") for c, k in kinds.items()]
            table_id = f"{self.project}.{dataset}.{name}"
            config = bigquery.LoadJobConfig(
                schema=schema, write_disposition="WRITE_TRUNCATE", source_format="NEWLINE_DELIMITED_JSON"
            )
            # JSON rather than load_table_from_dataframe (deprecated in favour of pandas-gbq)
            rows = [{c: _json_cell(v) for c, v in r.items()} for r in records(df, kinds)]
            client.load_table_from_json(rows, table_id, job_config=config).result()


def _json_cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()  # aware: with +00:00 (TIMESTAMP); naive: DATETIME
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# --------------------------------------------------------------------------------------------
# Athena: moto (S3 + Athena API), results computed on a DuckDB mirror
# --------------------------------------------------------------------------------------------

AWS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}

# DuckDB type -> (Athena type name, precision, scale) as GetQueryResults reports it
_ATHENA_TYPES = {
    "BOOLEAN": ("boolean", 0, 0),
    "TINYINT": ("tinyint", 3, 0),
    "SMALLINT": ("smallint", 5, 0),
    "INTEGER": ("integer", 10, 0),
    "BIGINT": ("bigint", 19, 0),
    "HUGEINT": ("bigint", 19, 0),  # DuckDB sums BIGINT into HUGEINT; Athena keeps bigint
    "UTINYINT": ("integer", 10, 0),
    "USMALLINT": ("integer", 10, 0),
    "UINTEGER": ("bigint", 19, 0),
    "UBIGINT": ("bigint", 19, 0),
    "FLOAT": ("real", 17, 0),
    "DOUBLE": ("double", 17, 0),
    "VARCHAR": ("varchar", 2147483647, 0),
    "DATE": ("date", 0, 0),
    "TIMESTAMP": ("timestamp", 3, 0),
    "TIMESTAMP_NS": ("timestamp", 3, 0),
    "TIMESTAMP_MS": ("timestamp", 3, 0),
    "TIMESTAMP_S": ("timestamp", 3, 0),
    "TIMESTAMP WITH TIME ZONE": ("timestamp with time zone", 3, 0),
}


def _athena_type(duck_type: Any) -> tuple[str, int, int]:
    name = str(duck_type).upper()
    if name.startswith("DECIMAL"):
        p, s = (int(x) for x in name[name.index("(") + 1 : name.index(")")].split(","))
        return "decimal", p, s
    return _ATHENA_TYPES.get(name, ("varchar", 2147483647, 0))


def _athena_text(value: Any) -> dict[str, str]:
    """One cell as Athena's GetQueryResults gives it: text, or no VarCharValue for NULL."""
    if value is None:
        return {}
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = "NaN" if math.isnan(value) else ("Infinity" if value == math.inf else "-Infinity" if value == -math.inf else repr(value))
    elif isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            utc = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
            text = utc.isoformat(sep=" ", timespec="milliseconds") + " UTC"
        else:
            text = value.isoformat(sep=" ", timespec="milliseconds")
    elif isinstance(value, dt.date):
        text = value.isoformat()
    else:
        text = str(value)
    return {"VarCharValue": text}


class AthenaStandin:
    """moto's server (S3 + Athena) in a thread of this process, on a free loopback port."""

    bucket = "valuetrack-athena-results"

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> AthenaStandin:
        _require("moto.server", "moto[server]")
        _require("pyathena.sqlalchemy", "pyathena[sqlalchemy]")
        import boto3
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                _http_ok(f"{self.endpoint}/moto-api/data.json")
                break
            except (OSError, urllib.error.URLError) as exc:
                if time.monotonic() > deadline:
                    raise StandinUnavailable(f"moto server not ready on {self.endpoint}: {exc}") from exc
                time.sleep(0.05)
        boto3.client("s3", endpoint_url=self.endpoint, **AWS).create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def engine(self, tables: Mapping[str, pd.DataFrame], database: str | None = None, auto_queue: bool = True) -> sa.Engine:
        """A pyathena ``Engine`` (``awsathena+rest``) on database ``database`` holding ``tables``.

        With ``auto_queue`` (default) every statement the engine executes gets its result
        computed on the DuckDB mirror and queued in moto just before pyathena submits it, so any
        query runs unchanged. Without it, call :meth:`queue_result_for` before each statement.
        """
        import duckdb

        database = database or _unique("vt")
        mirror = duckdb.connect()
        load_duckdb(mirror, tables, ATHENA_MIRROR_TYPES, schema=database)
        mirror.execute(f'SET schema = "{database}"')
        url = (
            f"awsathena+rest://{AWS['aws_access_key_id']}:{AWS['aws_secret_access_key']}"
            f"@athena.{AWS['region_name']}.amazonaws.com:443/{database}"
            f"?s3_staging_dir=s3%3A%2F%2F{self.bucket}%2Fresults%2F&work_group=primary"
        )
        # endpoint_url reaches boto3's clients; poll fast, moto answers SUCCEEDED at once
        engine = sa.create_engine(url, connect_args={"endpoint_url": self.endpoint, "poll_interval": 0.01})
        _athena_mirrors[engine] = (mirror, database)
        if auto_queue:
            sa.event.listen(engine, "before_cursor_execute", self._before_cursor_execute)
        return engine

    @staticmethod
    def dispose(engine: sa.Engine) -> None:
        """Dispose ``engine`` and close its mirror."""
        engine.dispose()
        entry = _athena_mirrors.pop(engine, None)
        if entry:
            entry[0].close()

    @staticmethod
    def mirror(engine: sa.Engine) -> Any:
        """The raw DuckDB connection holding ``engine``'s tables (Athena semantics: naive UTC)."""
        return _athena_mirrors[engine][0]

    def load(self, engine: sa.Engine, tables: Mapping[str, pd.DataFrame]) -> None:
        """Add or replace tables in ``engine``'s mirror."""
        mirror, database = _athena_mirrors[engine]
        load_duckdb(mirror, tables, ATHENA_MIRROR_TYPES, schema=database)

    # -- results ------------------------------------------------------------------------------

    def _before_cursor_execute(self, conn, cursor, statement, parameters, context, executemany) -> None:
        batches = parameters if executemany else [parameters]
        for params in batches:
            self.queue_sql(conn.engine, _athena_format(cursor, statement, params))

    def queue_result_for(self, engine: sa.Engine, statement: Any, parameters: Mapping[str, Any] | None = None) -> dict:
        """Compute ``statement`` (SQL text or a SQLAlchemy Core selectable) on the mirror and
        queue its result in moto; returns the queued result."""
        if isinstance(statement, str):
            sql, params = statement, dict(parameters or {})
        else:
            compiled = statement.compile(dialect=engine.dialect)
            sql, params = compiled.string, {**compiled.params, **(parameters or {})}
        from pyathena.formatter import DefaultParameterFormatter

        final = DefaultParameterFormatter().format(sql, params) if params else sql.strip()
        return self.queue_sql(engine, final)

    def queue_sql(self, engine: sa.Engine, athena_sql: str) -> dict:
        """Run final Athena SQL (parameters already inlined) on the mirror; queue the result."""
        mirror, _ = _athena_mirrors[engine]
        result = athena_result(mirror, athena_sql)
        body = json_dumps({"account_id": "123456789012", "region": AWS["region_name"], "results": [result]})
        req = urllib.request.Request(
            f"{self.endpoint}/moto-api/static/athena/query-results",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback only)
            if resp.status != 201:
                raise StandinUnavailable(f"moto refused the queued Athena result: HTTP {resp.status}")
        return result


_athena_mirrors: dict[sa.Engine, tuple[Any, str]] = {}


def _athena_format(cursor: Any, statement: str, parameters: Any) -> str:
    """The query text pyathena will submit (it inlines pyformat parameters client-side)."""
    prepare = getattr(cursor, "_prepare_query", None)
    if prepare is not None:
        query, execution_parameters = prepare(statement, parameters)
        if execution_parameters:
            raise NotImplementedError("qmark (server-side) parameters are not mirrored by the Athena stand-in")
        return query
    return cursor._formatter.format(statement, parameters)  # older pyathena


def transpile_athena_to_duckdb(sql: str) -> list[str]:
    import sqlglot

    return [s for s in sqlglot.transpile(sql, read="athena", write="duckdb") if s.strip()]


def athena_result(mirror: Any, athena_sql: str) -> dict:
    """Run Athena SQL on the DuckDB mirror and shape the answer like GetQueryResults."""
    statements = transpile_athena_to_duckdb(athena_sql)
    rel = None
    for duck_sql in statements:
        rel = mirror.sql(duck_sql)
    if rel is None:  # DDL/DML: Athena returns no rows and no columns
        return {"rows": [], "column_info": []}
    names, types = rel.columns, rel.types
    rows = rel.fetchall()
    column_info = []
    for name, duck_type in zip(names, types, strict=True):
        athena_type, precision, scale = _athena_type(duck_type)
        column_info.append(
            {
                "CatalogName": "hive",
                "SchemaName": "",
                "TableName": "",
                "Name": name,
                "Label": name,
                "Type": athena_type,
                "Precision": precision,
                "Scale": scale,
                "Nullable": "UNKNOWN",
                "CaseSensitive": athena_type == "varchar",
            }
        )
    # Athena's first row of a SELECT's results repeats the column labels; pyathena drops it
    header = {"Data": [{"VarCharValue": n} for n in names]}
    data = [{"Data": [_athena_text(v) for v in row]} for row in rows]
    return {"rows": [header, *data], "column_info": column_info}


def json_dumps(obj: Any) -> bytes:
    import json

    return json.dumps(obj).encode()


# --------------------------------------------------------------------------------------------
# failure policy
# --------------------------------------------------------------------------------------------


def unavailable_message(name: str, exc: BaseException) -> str:
    return (
        f"The {name} warehouse stand-in is unavailable: {exc}\n{SETUP_HINT}\n"
        "Stand-in tests fail rather than skip (in CI always); locally, "
        "VALUETRACK_STANDINS=skip turns this into an explicit skip."
    )


def may_skip() -> bool:
    """True only when a developer asked to skip missing stand-ins, and never in CI."""
    return os.environ.get("VALUETRACK_STANDINS", "").lower() == "skip" and not os.environ.get("CI")


def missing(what: str, hint: str) -> None:
    """A stand-in or tool the test needs is missing: fail (always in CI), or skip explicitly when a
    developer set VALUETRACK_STANDINS=skip."""
    import pytest

    message = f"{what} is missing: {hint} (tests fail rather than skip; VALUETRACK_STANDINS=skip skips locally)"
    if may_skip():
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


def require_module(name: str, hint: str) -> None:
    """Import ``name`` or apply :func:`missing` (replaces pytest.importorskip, which skips in CI)."""
    import importlib

    try:
        importlib.import_module(name)
    except ImportError:
        missing(f"the Python package {name!r}", hint)


__all__ = [
    "AthenaStandin",
    "BigQueryStandin",
    "KINDS",
    "ServerProcess",
    "SnowflakeStandin",
    "StandinUnavailable",
    "athena_result",
    "column_kinds",
    "free_port",
    "load_duckdb",
    "make_duckdb_engine",
    "may_skip",
    "missing",
    "require_module",
    "normalize_rows",
    "normalize_value",
    "records",
    "sqlalchemy_table",
    "transpile_athena_to_duckdb",
    "unavailable_message",
]


def connector_for(engine: Any) -> Any:
    """A valuetrack connector over a stand-in's engine (fast retries, two attempts)."""
    from valuetrack.config import ConnectionSettings
    from valuetrack.connectors import get_connector

    return get_connector(ConnectionSettings(engine.dialect.name, engine.url.render_as_string(hide_password=True),
                                            {"retry_base_s": 0.01, "max_attempts": 2}), engine=engine)
