"""The connector base class: one warehouse connection, queries run with timeout, cancel, retries.

A connector is built from a :class:`~valuetrack.config.ConnectionSettings` and the secrets
mapping (``Settings.secrets()``); credentials are resolved only when the engine is created and
handed to the driver, never stored or shown. Subclasses (one file per warehouse) override only
what differs:

* :meth:`Connector.create_engine` — how the driver is imported and authenticated;
* :attr:`Connector.ops` — a :class:`~valuetrack.queries.DialectOps` (local day, add days, ...);
* :meth:`Connector.execute` — how a statement is submitted (query tag/label, server timeout);
* :meth:`Connector.cancel` — how a running statement is cancelled on timeout;
* :meth:`Connector.cost` — what the warehouse reports a query cost;
* :meth:`Connector.is_transient` — which errors are worth retrying.

Every statement runs on the calling thread; a watchdog timer cancels it when ``timeout_s``
passes (a worker thread would see another connection of a thread-local pool, e.g. a different
in-memory DuckDB). Timeouts are not retried (a slow query would only cost again); throttling and
transient errors are retried with exponential backoff and jitter.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Select

from valuetrack.config import ConnectionSettings, redact, redact_url, referenced_values
from valuetrack.errors import (MissingDependency, ParameterError, PermissionDenied, UnsafeSQL, ValuetrackError,
                               WarehouseError)
from valuetrack.queries import DialectOps
from valuetrack.sqlrows import plain_rows
from valuetrack.sqlsafety import check_identifier, check_select, split_table

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 600.0
_PURPOSE = re.compile(r"^[a-z0-9_-]{1,40}$")
_MODEL = re.compile(r"^[a-z0-9-]{1,64}$")


@dataclass(frozen=True)
class QueryResult:
    """What one query returned.

    Attributes:
        frame: the rows, one column per selected label.
        elapsed_s: wall time of the successful attempt (seconds).
        cost: what the warehouse reported, e.g. ``{"bytes_billed": 10485760}`` (BigQuery),
            ``{"data_scanned_bytes": ...}`` (Athena), ``{"elapsed_s": ...}`` (Snowflake, DuckDB).
        sql: the compiled SQL with parameter placeholders (no values, no secrets), for debugging;
            compiled when first read (``compile``: compiling a batch query again, besides the
            compilation that ran it, cost ≈ 0.1 s of CPU per refresh of 200 models).
        attempts: how many times it was submitted (1 = no retry).
        query_id: the warehouse's id of the job, when it has one.
    """

    frame: pd.DataFrame
    elapsed_s: float
    cost: Mapping[str, Any]
    attempts: int
    query_id: str | None = None
    compile: Callable[[], str] | None = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def sql(self) -> str:
        return self.compile() if self.compile is not None else ""

    def to_dict(self) -> dict[str, Any]:
        return {"rows": len(self.frame), "elapsed_s": self.elapsed_s, "cost": dict(self.cost),
                "attempts": self.attempts, "query_id": self.query_id}


@dataclass(frozen=True)
class ConnectionCheck:
    """Result of :meth:`Connector.test_connection` (never raised, never holds a secret).

    Attributes:
        ok: the warehouse answered ``SELECT 1``.
        message: what happened, for the connections page and ``valuetrack`` CLI.
        latency_s: round-trip time of the check (None when it failed before connecting).
        server_version: the server's version when the driver reports it.
        dialect: the SQLAlchemy dialect name.
        url: the connection URL as shown to users (passwords masked).
    """

    ok: bool
    message: str
    latency_s: float | None
    server_version: str | None
    dialect: str
    url: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RunContext:
    """Mutable state of one attempt, shared between the executing thread and the watchdog."""

    model: str
    purpose: str
    timeout_s: float
    tag: str
    cursor: Any = None
    dbapi_connection: Any = None
    timed_out: bool = False
    cancel_error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


class Connector:
    """A warehouse connection. Construct with :func:`valuetrack.connectors.get_connector`.

    Args:
        conn: the connection's settings (``${VAR}`` unresolved).
        secrets: values for ``${VAR}`` (environment, ``.streamlit/secrets.toml``).
        engine: an existing engine to use instead of creating one (tests, the stand-ins).

    Options read from the connection's section (all optional): ``timeout_s`` (default 600),
    ``max_attempts`` (default 4), ``retry_base_s`` (first backoff, default 1.0),
    ``retry_max_s`` (backoff cap, default 30).
    """

    dialect_names: ClassVar[tuple[str, ...]] = ()
    """URL backend names this class serves (the registry in ``__init__`` maps them)."""
    extra: ClassVar[str | None] = None
    """The pip extra holding the driver, for the MissingDependency message."""
    ops: ClassVar[DialectOps] = DialectOps()

    def __init__(self, conn: ConnectionSettings, secrets: Mapping[str, str] | None = None, *,
                 engine: Engine | None = None) -> None:
        self.conn = conn
        self._secrets = dict(secrets or {})
        self._engine = engine
        self._lock = threading.Lock()
        opts = conn.options
        self.timeout_s = float(opts.get("timeout_s", DEFAULT_TIMEOUT_S))
        self.max_attempts = int(opts.get("max_attempts", 4))
        self.retry_base_s = float(opts.get("retry_base_s", 1.0))
        self.retry_max_s = float(opts.get("retry_max_s", 30.0))
        if self.max_attempts < 1:
            raise ParameterError(f"[connections.{conn.name}].max_attempts must be >= 1 (got {self.max_attempts})")
        self._sleep: Callable[[float], None] = time.sleep
        self._secret_values: list[str] | None = None

    # -- engine ---------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.conn.name

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, created on first use (driver import and auth happen here)."""
        with self._lock:
            if self._engine is None:
                url, options = self.conn.resolved(self._secrets)
                self._secret_values = _secret_values(url, options)
                self._engine = self.create_engine(url, options)
            if not getattr(self._engine, "_valuetrack_hooked", False):
                event.listen(self._engine, "do_execute", self._do_execute)
                self._engine._valuetrack_hooked = True  # type: ignore[attr-defined]
            return self._engine

    def create_engine(self, url: str, options: Mapping[str, Any]) -> Engine:
        """Create the engine from the resolved URL and options (override per warehouse)."""
        return sa.create_engine(url)

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    @classmethod
    def require(cls, module: str) -> Any:
        """Import a driver module or raise MissingDependency with the exact install command."""
        import importlib

        try:
            return importlib.import_module(module)
        except ImportError as exc:
            extra = cls.extra or "all"
            raise MissingDependency(
                f"the {extra} connector needs the {module.split('.')[0]!r} package ({exc}); "
                f"install it with: pip install \"valuetrack[{extra}]\""
            ) from None

    # -- overridable hooks ----------------------------------------------------------------------

    def execute(self, cursor: Any, statement: str, parameters: Any, ctx: RunContext) -> None:
        """Submit one statement on a DB-API cursor (override to pass tags, labels, timeouts)."""
        cursor.execute(statement, parameters)

    def cancel(self, ctx: RunContext) -> None:
        """Cancel the statement running under ``ctx`` (called from the watchdog thread)."""
        if ctx.cursor is not None and hasattr(ctx.cursor, "cancel"):
            ctx.cursor.cancel()

    def cost(self, ctx: RunContext, elapsed_s: float) -> dict[str, Any]:
        """What the warehouse reports the query cost (override per warehouse)."""
        return {"elapsed_s": round(elapsed_s, 6)}

    def query_id(self, ctx: RunContext) -> str | None:
        return None

    def is_transient(self, exc: BaseException) -> bool:
        """Whether an error is worth retrying: throttling, dropped connections, 5xx."""
        if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
            return True
        text = f"{type(exc).__name__} {exc}".lower()
        return any(s in text for s in _TRANSIENT_MARKERS)

    def query_tag(self, model: str, purpose: str) -> str:
        """The tag/label naming valuetrack and the model (model names are [a-z0-9-])."""
        return f"valuetrack:{model}:{purpose}"

    # -- running --------------------------------------------------------------------------------

    def compile(self, selectable: Any) -> str:
        """The statement compiled for this connector's dialect, with placeholders (no values)."""
        return str(selectable.compile(dialect=self.engine.dialect))

    def run(self, selectable: Select | sa.TextClause, *, model: str, purpose: str,
            timeout_s: float | None = None) -> QueryResult:
        """Run a statement with timeout, cancellation, retries; return its rows and cost.

        Args:
            selectable: a SQLAlchemy Core statement (from :mod:`valuetrack.queries`).
            model: the model's name, for the query tag/label.
            purpose: what the query is for (``"ab"``, ``"series"``, ``"health"`` ...).
            timeout_s: seconds before the warehouse job is cancelled (connection default if None).

        Raises:
            WarehouseError: down, timed out, throttled after the retries, or the query failed;
                the message names the connection and never holds a secret.
        """
        if not _PURPOSE.fullmatch(purpose):
            raise ParameterError(f"purpose {purpose!r} must be 1-40 characters of a-z, 0-9, '_' and '-'")
        if not _MODEL.fullmatch(model):
            raise ParameterError(f"model {model!r} must be 1-64 characters of a-z, 0-9 and '-'")
        self.require_read_only(selectable)
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        if timeout <= 0:
            raise ParameterError(f"timeout_s must be > 0 (got {timeout})")
        try:
            engine = self.engine
        except ValuetrackError:
            raise
        except Exception as exc:  # driver missing pieces, bad URL ...
            raise WarehouseError(self._describe(exc, "could not prepare the query")) from None
        last: BaseException | None = None
        for attempt in range(1, self.max_attempts + 1):
            ctx = RunContext(model=model, purpose=purpose, timeout_s=timeout, tag=self.query_tag(model, purpose))
            started = time.perf_counter()
            try:
                frame = self._run_once(engine, selectable, ctx)
            except Exception as exc:
                if ctx.timed_out:
                    extra = f"; cancelling it failed: {ctx.cancel_error}" if ctx.cancel_error else "; the warehouse job was cancelled"
                    raise WarehouseError(
                        f"connection {self.name!r}: the {purpose} query of model {model!r} timed out after "
                        f"{timeout:g} s{extra}. Raise timeout_s in [connections.{self.name}] or narrow the refresh."
                    ) from None
                last = exc
                if attempt < self.max_attempts and self.is_transient(exc):
                    delay = min(self.retry_max_s, self.retry_base_s * 2 ** (attempt - 1))
                    delay *= 0.5 + random.random() / 2
                    log.warning("connection %s: transient error (attempt %d/%d), retrying in %.2fs: %s",
                                self.name, attempt, self.max_attempts, delay, self._redact(_first_line(exc)))
                    self._sleep(delay)
                    continue
                what = (f"failed after {attempt} attempts" if attempt > 1 else "failed")
                raise WarehouseError(self._describe(exc, f"the {purpose} query of model {model!r} {what}")) from None
            elapsed = time.perf_counter() - started
            cost = self.cost(ctx, elapsed)
            return QueryResult(frame=frame, elapsed_s=elapsed, cost=cost, attempts=attempt,
                               query_id=self.query_id(ctx), compile=lambda: self.compile(selectable))
        raise WarehouseError(self._describe(last or RuntimeError("no attempt"), "failed"))  # pragma: no cover

    def require_read_only(self, selectable: Any) -> None:
        """Refuse anything but a read-only query: ``run`` never writes to a warehouse (the one write,
        ``replace_rows``, needs the table named in the connection's ``write_tables``).

        SQLAlchemy Core SELECTs (what :mod:`valuetrack.queries` builds) pass; text SQL must parse as
        one read-only SELECT (:func:`valuetrack.sqlsafety.check_select`); INSERT, UPDATE, DELETE,
        DDL and anything else raise UnsafeSQL before a connection is opened.
        """
        if isinstance(selectable, (sa.sql.Select, sa.sql.CompoundSelect)):
            return
        if isinstance(selectable, sa.TextClause):
            check_select(selectable.text, dialect=self.ops.sqlglot_dialect)
            return
        raise UnsafeSQL(f"connection {self.name!r} runs read-only queries only; refused a "
                        f"{type(selectable).__name__} statement")

    # -- the one write: values back to a table the user named (docs/writeback.md) ---------------

    def check_write(self, table: str) -> None:
        """Refuse to write ``table`` unless the connection lists it in ``write_tables``."""
        split_table(table)  # a plain (optionally qualified) identifier
        allowed = self.conn.options.get("write_tables") or []
        if not isinstance(allowed, list) or table not in allowed:
            raise PermissionDenied(
                f"connection {self.name!r} is read-only for valuetrack; to let it write the table {table!r}, add "
                f"write_tables = [\"{table}\"] to [connections.{self.name}] in valuetrack.toml")

    def replace_rows(self, table: str, columns: Sequence[sa.Column], rows: Sequence[Mapping[str, Any]], *,
                     key: Mapping[str, Any], chunk: int = 500) -> int:
        """Create ``table`` if missing, delete its rows matching ``key`` and insert ``rows``, in one
        transaction where the warehouse has them; returns the number of rows deleted."""
        self.check_write(table)
        schema, name = split_table(table)
        t = sa.Table(name, sa.MetaData(), *columns, schema=schema)  # fresh Column objects, one table each
        try:
            engine = self.engine
            t.create(engine, checkfirst=True)
            with engine.begin() as conn:
                deleted = conn.execute(sa.delete(t).where(sa.and_(*[t.c[k] == v for k, v in key.items()]))).rowcount
                for i in range(0, len(rows), chunk):
                    conn.execute(t.insert().values(list(rows[i:i + chunk])))
        except ValuetrackError:
            raise
        except Exception as exc:
            raise WarehouseError(self._describe(exc, f"writing the table {table!r} failed")) from None
        return max(int(deleted or 0), 0)

    def _run_once(self, engine: Engine, selectable: Any, ctx: RunContext) -> pd.DataFrame:
        watchdog = threading.Timer(ctx.timeout_s, self._on_timeout, args=(ctx,))
        watchdog.daemon = True
        with engine.connect() as connection:
            connection = connection.execution_options(valuetrack_ctx=ctx)
            ctx.dbapi_connection = connection.connection.dbapi_connection
            watchdog.start()
            try:
                result = connection.execute(selectable)
                columns = list(result.keys())
                rows = plain_rows(result)  # the driver's tuples where they are the values (DuckDB)
            finally:
                watchdog.cancel()
            if ctx.timed_out:
                # the driver returned although we cancelled (a race at the deadline): still a timeout
                raise TimeoutError("cancelled at the deadline")
        # plain tuples: pandas probes each Row object for attributes, which SQLAlchemy answers by
        # raising and catching a KeyError (a third of a portfolio refresh's time, measured)
        return pd.DataFrame.from_records(rows, columns=columns)

    def _on_timeout(self, ctx: RunContext) -> None:
        ctx.timed_out = True
        try:
            self.cancel(ctx)
        except Exception as exc:  # the error path reports it; never let the timer thread die loudly
            ctx.cancel_error = self._redact(_first_line(exc))

    def _do_execute(self, cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        ctx = context.execution_options.get("valuetrack_ctx") if context is not None else None
        if ctx is None:
            return False  # not one of ours (e.g. a dialect's own initialisation query)
        ctx.cursor = cursor
        self.execute(cursor, statement, parameters, ctx)
        return True

    # -- connection check and preview -----------------------------------------------------------

    def test_connection(self, timeout_s: float = 30.0) -> ConnectionCheck:
        """Run ``SELECT 1``; return a :class:`ConnectionCheck` (never raises for a down warehouse)."""
        shown = self.conn.display_url()
        t0 = time.perf_counter()
        try:
            self.max_attempts, saved = 1, self.max_attempts
            try:
                result = self.run(sa.select(sa.literal(1, sa.Integer).label("ok")), model="connection-test",
                                  purpose="test", timeout_s=timeout_s)
            finally:
                self.max_attempts = saved
            latency = time.perf_counter() - t0
            version = self.server_version()
            ok = len(result.frame) == 1
            msg = f"connected to {self.conn.dialect} in {latency * 1000:.0f} ms" if ok else "the warehouse returned no row"
            return ConnectionCheck(ok, msg, round(latency, 4), version, self.conn.dialect, shown)
        except ValuetrackError as exc:
            return ConnectionCheck(False, self._redact(exc.message), None, None, self.conn.dialect, shown)
        except Exception as exc:  # pragma: no cover - run() wraps driver errors
            return ConnectionCheck(False, self._describe(exc, "connection failed"), None, None, self.conn.dialect, shown)

    def server_version(self) -> str | None:
        """The server version when the dialect knows it (best effort)."""
        info = getattr(self.engine.dialect, "server_version_info", None)
        return ".".join(str(p) for p in info) if info else None

    def preview(self, table: str, columns: Sequence[str], limit: int = 10, *, timestamp: str | None = None,
                arm: str | None = None, where: Mapping[str, str] | None = None,
                timeout_s: float = 60.0) -> dict[str, Any]:
        """A few rows of a table, for the registration form; all identifiers checked and quoted.

        Args:
            where: column → value: only rows where each column equals its value (bound parameters),
                e.g. a shared exposures table's model column and this model's value.

        Returns:
            ``{"rows": DataFrame, "date_range": (min, max) | None, "arms": [values] | None}``;
            arm values are capped at 50 distinct values. All three respect ``where``.
        """
        if not 1 <= int(limit) <= 1000:
            raise ParameterError(f"limit must be between 1 and 1000 (got {limit})")
        schema, name = split_table(table)
        cols = [check_identifier(c) for c in columns]
        where = {check_identifier(k): v for k, v in (where or {}).items()}
        extra = [c for c in (timestamp, arm) if c]
        t = sa.table(name, *[sa.column(c) for c in dict.fromkeys([*cols, *map(check_identifier, extra), *where])],
                     schema=schema)
        match = [t.c[k] == sa.bindparam(f"where_{i}", str(v), type_=sa.String) for i, (k, v) in enumerate(where.items())]
        out: dict[str, Any] = {"date_range": None, "arms": None}
        q = (sa.select(*[t.c[c] for c in cols] if cols else [sa.text("*")]).select_from(t).where(*match)
             .limit(sa.bindparam("limit", int(limit))))
        out["rows"] = self.run(q, model="preview", purpose="preview", timeout_s=timeout_s).frame
        if timestamp:
            r = self.run(sa.select(sa.func.min(t.c[timestamp]).label("min"), sa.func.max(t.c[timestamp]).label("max"))
                         .where(*match), model="preview", purpose="preview", timeout_s=timeout_s).frame
            out["date_range"] = (r.iloc[0]["min"], r.iloc[0]["max"]) if len(r) else None
        if arm:
            r = self.run(sa.select(t.c[arm].label("arm")).where(*match).distinct().order_by(t.c[arm]).limit(50),
                         model="preview", purpose="preview", timeout_s=timeout_s).frame
            out["arms"] = r["arm"].tolist()
        return out

    # -- messages -------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        # exactly the values this connection resolved from ${VAR} (wherever they appear: host, path,
        # options), plus passwords written inline; never any other environment value, which would
        # mask table names and folders that merely share its text
        texts = [self.conn.url, *[v for v in self.conn.options.values() if isinstance(v, str)]]
        secrets = list(self._secret_values or []) + referenced_values(texts, self._secrets)
        return redact(text, sorted(set(secrets), key=len, reverse=True))

    def _describe(self, exc: BaseException, what: str) -> str:
        kind = "unreachable or refused the connection" if _looks_down(exc) else "error"
        return self._redact(
            f"connection {self.name!r} ({self.conn.dialect}, {redact_url(self.conn.url)}): {what}: "
            f"{kind}: {_first_line(exc)}"
        )


_TRANSIENT_MARKERS = (
    "throttl", "rate exceeded", "ratelimit", "rate limit", "too many requests", "429", "503", "502",
    "service unavailable", "temporarily unavailable", "try again", "connection reset", "connection refused",
    "connection aborted", "timed out while connecting", "serviceunavailable", "internalerror", "backenderror",
    "toomanyrequests", "slowdown", "transient",
)


def _looks_down(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("connection refused", "could not connect", "name or service not known",
                                   "failed to establish", "max retries exceeded", "unreachable"))


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:500]


def _secret_values(url: str, options: Mapping[str, Any]) -> list[str]:
    from sqlalchemy.engine import make_url

    found = [str(v) for k, v in options.items()
             if isinstance(v, str) and re.search(r"password|secret|token|key|credentials", k, re.I) and len(v) >= 4]
    try:
        u = make_url(url)
        if u.password:
            found.append(str(u.password))
        found += [str(v) for k, v in u.query.items() if re.search(r"password|secret|token|key", k, re.I)]
    except Exception:
        pass
    return sorted(set(found), key=len, reverse=True)


def utc_naive(value: Any) -> Any:
    """Normalise a timestamp the drivers return (aware or naive) to naive UTC."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value

