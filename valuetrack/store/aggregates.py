"""The aggregates cache in the app database: what the dashboard reads, never the warehouse.

:class:`AggregateStore` writes a :class:`~valuetrack.refresh_pull.PulledAggregates` in one
transaction (rows of the re-read days replaced, earlier final days untouched) and records every
refresh attempt in ``refreshes``. A failed refresh writes nothing but its ``refreshes`` row
(status ``failed`` with the error, secrets already redacted by the connector): the previous
aggregates stay, and :meth:`AggregateStore.status` reports them as stale.

The tables are declared in :mod:`valuetrack.store.schema` and created by migration 0002.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from valuetrack.jsonsafe import num
from valuetrack.sqlrows import plain_rows
from valuetrack.store.schema import (
    NO_SEGMENT,
    ab_aggregates,
    ab_day_totals,
    ab_crossovers,
    billed_costs,
    decision_aggregates,
    guardrail_aggregates,
    health_daily,
    health_histogram,
    refreshes,
    segment_sums_kept,
    series_points,
)



@dataclass(frozen=True)
class RefreshStatus:
    """Where a model's stored aggregates stand.

    Attributes:
        model: the model's name.
        last_ok: the last successful refresh (a dict of its ``refreshes`` row), or None.
        last_attempt: the last refresh attempt, successful or not, or None.
        stale: True when the last attempt failed (the stored figures are older than intended) or
            when the last success is older than ``max_age`` given to :meth:`AggregateStore.status`.
        reason: why they are stale, or None.
    """

    model: str
    last_ok: dict[str, Any] | None
    last_attempt: dict[str, Any] | None
    stale: bool
    reason: str | None

    @property
    def next_since_day(self) -> dt.date | None:
        """First cohort day the next refresh must read: the day after the last mature one."""
        if not self.last_ok or self.last_ok.get("mature_through") is None:
            return None
        return self.last_ok["mature_through"] + dt.timedelta(days=1)

    @property
    def exposures_complete(self) -> bool:
        """Whether the stored daily exposure counts reach back to the start of the history (the
        predictions every month's cost per 1,000 predictions is charged on). False before the first
        refresh and for a model whose counts were stored before migration 0022, when a first refresh
        read only their last HEALTH_DAYS: its next refresh reads them over the whole history (D53)."""
        return bool(self.last_ok) and self.last_ok.get("exposures_from") is not None


class AggregateStore:
    """Read and write the aggregates cache over a SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- refresh bookkeeping ----------------------------------------------------------------

    def start_refresh(self, model: str, *, as_of: dt.date, since_day: dt.date | None = None,
                      actor: str | None = None) -> int:
        """Record that a refresh began (and who started it); returns its id.

        Refreshes left ``running`` by a process that is gone are first marked ``abandoned``.
        """
        return self.start_refreshes([(model, since_day)], as_of=as_of, actor=actor)[0]

    def start_refreshes(self, starts: list[tuple[str, dt.date | None]], *, as_of: dt.date,
                        actor: str | None = None) -> list[int]:
        """:meth:`start_refresh` for each ``(model, since_day)``, in one transaction; their ids."""
        self.mark_abandoned()
        with self.engine.begin() as c:
            return [int(c.execute(refreshes.insert().values(
                model_name=model, started_at=_now(), as_of=as_of, since_day=since_day, status="running",
                started_by=actor, runner=_runner(),
            )).inserted_primary_key[0]) for model, since_day in starts]

    def mark_abandoned(self, *, now: dt.datetime | None = None) -> int:
        """Mark ``abandoned`` (with when and why) the refreshes still ``running`` whose process has
        ended (same machine) or that began more than ABANDON_AFTER ago (another machine, or a row
        from before runners were recorded). Returns how many were marked."""
        now = now or _now()
        with self.engine.begin() as c:
            stuck = c.execute(sa.select(refreshes.c.id, refreshes.c.started_at, refreshes.c.runner)
                              .where(refreshes.c.status == "running")).all()
            marked = 0
            for rid, started, runner in stuck:
                why = _abandon_reason(runner, _aware(started), now)
                if why:
                    c.execute(refreshes.update().where(refreshes.c.id == rid, refreshes.c.status == "running")
                              .values(status="abandoned", finished_at=now,
                                      error=f"abandoned: {why}; marked at {now:%Y-%m-%d %H:%M:%S} UTC when the next "
                                            "refresh started. Nothing it pulled was stored."))
                    marked += 1
        return marked

    def fail_refresh(self, refresh_id: int, error: str) -> None:
        """Mark a refresh failed; the stored aggregates are left exactly as they were."""
        with self.engine.begin() as c:
            c.execute(refreshes.update().where(refreshes.c.id == refresh_id).values(
                status="failed", finished_at=_now(), error=str(error)[:4000]))

    def save(self, refresh_id: int, pulled: Any) -> int:
        """Write a pull in one transaction; returns the number of rows written.

        Rows of days ≥ ``pulled.since_day`` are replaced by the pulled ones; earlier days stay.
        On any error the transaction rolls back, the refresh is marked failed and the error is
        re-raised.
        """
        model, since = pulled.model, pulled.since_day
        try:
            with self.engine.begin() as c:
                written = 0
                sqlite = c.dialect.name == "sqlite"
                for table in _REPLACED:
                    day = _health_since(table, pulled)
                    if sqlite:  # the driver's statement: SQLAlchemy's execution cost more than the delete
                        c.exec_driver_sql(f'DELETE FROM "{table.name}" WHERE model_name = ? AND day >= ?',
                                          (model, _sqlite_value(day)))
                    else:
                        c.execute(_DELETE_SINCE[table.name], {"model": model, "since": day})
                written += _insert_columns(c, ab_aggregates, _ab_columns(pulled, refresh_id))
                # kept segment sums over any re-read day are no longer right (D68)
                c.execute(_DROP_KEPT_SUMS, {"model": model, "since": since})
                # the re-read days' totals over segments, summed by the database from the rows just
                # written (as the read summed them before D61; earlier days' totals stay)
                c.execute(_SUM_DAYS, {"model": model, "since": since})
                xo = pulled.crossovers
                if len(xo):
                    written += _insert_columns(c, ab_crossovers, {
                        "model_name": model, "day": xo["day"].tolist(),
                        "segment": [_seg(v) for v in xo["segment"].tolist()] if "segment" in xo.columns else NO_SEGMENT,
                        "n_crossover": _ints(xo["n_crossover"]), "refresh_id": refresh_id})
                series = pulled.series
                if series is not None and len(series):
                    names = [col for col in series.columns if col != "day"]
                    days = series["day"].tolist()
                    written += _insert_columns(c, series_points, {  # long form: a row per day × series
                        "model_name": model, "day": days * len(names),
                        "series": [col for col in names for _ in days],
                        "value": [v for col in names for v in _floats(series[col])], "refresh_id": refresh_id})
                daily = pulled.health.get("daily_exposures")
                if daily is not None and len(daily):
                    written += _insert_columns(c, health_daily, {
                        "model_name": model, "day": daily["day"].tolist(),
                        "arm": [str(a) if a is not None else "" for a in daily["arm"].tolist()],
                        "n_exposures": _ints(daily["n_exposures"]),
                        "n_units": _ints(daily["n_units"]), "refresh_id": refresh_id})
                hist = pulled.health.get("score_histogram")
                if hist is not None and len(hist):
                    bins = pd.to_numeric(hist["bin"], errors="coerce")
                    written += _insert_columns(c, health_histogram, {
                        "model_name": model, "day": hist["day"].tolist(),
                        "bin": _ints(bins if bins.dtype.kind in "iu" else bins.fillna(-1)), "n": _ints(hist["n"]),
                        "refresh_id": refresh_id})
                if getattr(pulled, "decisions", None) is not None:
                    t = decision_aggregates
                    c.execute(t.delete().where(t.c.model_name == model, t.c.day >= pulled.decisions_since))
                    written += _insert(c, t, [
                        {"model_name": model, "day": r["day"], "refresh_id": refresh_id,
                         **{k: float(r[k]) if k.startswith("sum_") else int(r[k]) for k in _DECISION_SUMS}}
                        for r in pulled.decisions.to_dict("records")])
                billed = getattr(pulled, "billed", None)
                if billed is not None:  # the whole bill is re-read: it replaces what was stored
                    c.execute(billed_costs.delete().where(billed_costs.c.model_name == model))
                    written += _insert(c, billed_costs, [
                        {"model_name": model, "day": r["day"], "currency": str(r["currency"])[:8],
                         "amount": float(r["amount"]), "refresh_id": refresh_id} for r in billed.to_dict("records")])
                written += _save_guardrails(c, pulled, refresh_id)
                fresh = pulled.health.get("freshness")
                fr = fresh.iloc[0].to_dict() if fresh is not None and len(fresh) else {}
                total = pulled.total_cost
                whole = bool(getattr(pulled, "exposures_whole", False))
                c.execute(_MARK_OK[whole], {
                    "ok_id": refresh_id, "ok_model": model, "ok_finished_at": _now(), "ok_since_day": since,
                    "ok_rows": written, "ok_exposures_from": pulled.exposures_since if whole else None,
                    "ok_cost": json.loads(json.dumps({"total": total, "queries": list(pulled.costs)}, default=str)),
                    "ok_mature_through": pulled.mature_through,
                    "ok_bin_edges": list(pulled.bin_edges) if pulled.bin_edges is not None else None,
                    "ok_max_exposure_ts": _ts(fr.get("max_exposure_ts")),
                    "ok_max_outcome_ts": _ts(fr.get("max_outcome_ts")),
                    "ok_definition": getattr(pulled, "definition", None)})
                return written
        except Exception as exc:
            self.fail_refresh(refresh_id, f"storing the aggregates failed: {type(exc).__name__}: {str(exc).splitlines()[0][:500]}")
            raise

    # -- reading ------------------------------------------------------------------------------

    def status(self, model: str, *, max_age: dt.timedelta | None = None, now: dt.datetime | None = None) -> RefreshStatus:
        """The model's last refresh attempt and last success, and whether its figures are stale."""
        with self.engine.connect() as c:
            last = c.execute(sa.select(refreshes).where(refreshes.c.model_name == model)
                             .order_by(refreshes.c.id.desc()).limit(1)).mappings().first()
            # the last attempt, when it succeeded, is the last success (one query instead of two)
            ok = last if last is not None and last["status"] == "ok" else c.execute(
                sa.select(refreshes).where(refreshes.c.model_name == model, refreshes.c.status == "ok")
                .order_by(refreshes.c.id.desc()).limit(1)).mappings().first()
        return _status(model, dict(last) if last else None, dict(ok) if ok else None, max_age, now)

    def statuses(self, models: list[str], *, max_age: dt.timedelta | None = None,
                 now: dt.datetime | None = None) -> dict[str, RefreshStatus]:
        """:meth:`status` of each model, read by one query per 500 models (a refresh reads them all)."""
        rows: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as c:
            for i in range(0, len(models), 500):
                names = models[i:i + 500]
                last = sa.select(sa.func.max(refreshes.c.id)).where(refreshes.c.model_name.in_(names)).group_by(
                    refreshes.c.model_name)
                ok = last.where(refreshes.c.status == "ok")
                rows.update((r["id"], dict(r)) for r in c.execute(
                    sa.select(refreshes).where(sa.or_(refreshes.c.id.in_(last), refreshes.c.id.in_(ok)))).mappings())
        last_of: dict[str, dict[str, Any]] = {}
        ok_of: dict[str, dict[str, Any]] = {}
        for rid in sorted(rows):  # by id: the last one of each model wins
            row = rows[rid]
            last_of[row["model_name"]] = row
            if row["status"] == "ok":
                ok_of[row["model_name"]] = row
        return {m: _status(m, last_of.get(m), ok_of.get(m), max_age, now) for m in models}


    def refreshes(self, model: str, limit: int = 50) -> pd.DataFrame:
        """The model's refresh history, newest first (cost, rows, status, error)."""
        return self._frame(sa.select(refreshes).where(refreshes.c.model_name == model)
                           .order_by(refreshes.c.id.desc()).limit(limit))

    def read_ab(self, model: str) -> pd.DataFrame:
        """Per day × arm × segment sufficient statistics (segment "" when the model has none)."""
        return self._read("ab", model)

    def read_ab_by_day(self, model: str, before: dt.date | None = None) -> pd.DataFrame:
        """:meth:`read_ab` summed over segments (what a valuation reads: a fifth of the rows with five
        segments), with ``segment`` "" and ``mature`` true when every row is: the totals :meth:`save`
        stored with the rows (``ab_day_totals``, D61). ``before``: only the days before it (a
        valuation's as-of)."""
        frame = self._read("ab_by_day", model, before)
        frame["mature"] = frame["mature"].astype(bool)
        return frame

    def read_crossovers(self, model: str) -> pd.DataFrame:
        return self._read("crossovers", model)

    def read_series(self, model: str, before: dt.date | None = None) -> pd.DataFrame:
        """Wide frame: day, value, one column per control series (``before``: days before it only)."""
        keys, rows, dates = self._rows("series", model, before)
        if not rows:
            return pd.DataFrame(columns=["day", "value"])
        wide = _pivot(rows)
        if wide is not None:
            return wide
        long = _frame_of(keys, rows, dates)
        wide = long.pivot(index="day", columns="series", values="value").reset_index()
        wide.columns.name = None
        return wide.sort_values("day").reset_index(drop=True)

    def read_health(self, model: str, before: dt.date | None = None) -> dict[str, pd.DataFrame]:
        """The daily exposure counts (``before``: days before it only) and the score histogram."""
        return {"daily_exposures": self._read("daily", model, before), "score_histogram": self._read("histogram", model)}

    def read_decisions(self, model: str, before: dt.date | None = None) -> pd.DataFrame:
        """A classifier's decisions aggregate: day, bin, decision, counts and score sums."""
        return self._read("decisions", model, before)

    def read_guardrails(self, model: str) -> pd.DataFrame:
        """Per guardrail × day × arm sufficient statistics of the model's guardrails."""
        return self._read("guardrails", model)

    def guardrail_definitions(self, model: str) -> dict[str, str]:
        """The definition digest each stored guardrail was read with (refresh_pull.guardrail_definition)."""
        t = guardrail_aggregates
        with self.engine.connect() as c:
            rows = c.execute(sa.select(t.c.guardrail, t.c.definition).where(t.c.model_name == model).distinct()).all()
        out: dict[str, set[str]] = {}
        for name, definition in rows:
            out.setdefault(name, set()).add(definition)
        return {k: next(iter(v)) for k, v in out.items() if len(v) == 1}

    def segment_sums(self, model: str, through: dt.date, excluded: Sequence[tuple[dt.date, dt.date]] = (),
                     after: dt.date | None = None) -> list[dict[str, Any]]:
        """The model's A/B sums per segment × arm (records: segment, arm, n, n_units, sum_y, ...; a
        sum over no value is None) over the cohort days up to ``through`` and after ``after`` (when
        given), the days of the ``excluded`` windows (first, last) left out: summed by the database
        (a segment breakdown reads a few rows, not the model's rows per day × segment)."""
        stmt = _SEGMENT_SUMS if not excluded else _segment_sums(excluded)
        with self.engine.connect() as c:
            rows = c.execute(stmt, {"model": model, "through": through, "after": after or dt.date.min})
            # PostgreSQL's SUM of a BIGINT is a NUMERIC (Decimal): the counts as Python ints
            return [{k: int(v) if isinstance(v, Decimal) else v for k, v in r.items()} for r in rows.mappings()]

    def read_billed(self, model: str, before: dt.date | None = None) -> pd.DataFrame:
        """The model's bill per day and currency (``day, currency, amount``; amounts in the units of
        its cost_source.amount), as the last successful refresh read it (``before``: days before it)."""
        return self._read("billed", model, before)

    def _read(self, name: str, model: str, before: dt.date | None = None) -> pd.DataFrame:
        """One of the reads above: its statement is built once per process (with the model and the
        day bound at execution), and its frame is built column by column (:func:`_frame_of`)."""
        return _frame_of(*self._rows(name, model, before))

    def _rows(self, name: str, model: str, before: dt.date | None = None) -> tuple[list[str], list[tuple], frozenset[str]]:
        stmt, dates = _read_statement(name, before is not None)
        params = {"model": model} if before is None else {"model": model, "before": before}
        with self.engine.connect() as c:
            result = c.execute(stmt, params)
            return list(result.keys()), plain_rows(result), dates

    def _frame(self, stmt: Any) -> pd.DataFrame:
        stmt, dates = _text_dates(stmt)
        with self.engine.connect() as c:
            result = c.execute(stmt)
            keys, rows = list(result.keys()), plain_rows(result)
        return _frame_of(keys, rows, dates)


def _text_dates(stmt: Any) -> tuple[Any, frozenset[str]]:
    """The statement with its date columns read as the driver gives them (SQLite: text) and the
    names of those columns: they are converted once per distinct day, not once per row (the
    per-row result processing was most of a read's time)."""
    cols = list(stmt.selected_columns)
    dates = frozenset(c.key for c in cols if isinstance(c.type, sa.Date) and not isinstance(c.type, sa.DateTime))
    if dates:
        stmt = stmt.with_only_columns(*(sa.type_coerce(c, sa.String).label(c.key) if c.key in dates else c
                                        for c in cols))
    return stmt, dates


_STATEMENTS: dict[tuple[str, bool], tuple[Any, frozenset[str]]] = {}


def _read_statement(name: str, before: bool) -> tuple[Any, frozenset[str]]:
    """The statement of a read (``model`` and, with ``before``, ``before`` bound at execution) and
    its date columns, built once per process: building a statement cost about as much as running it."""
    key = (name, before)
    if key not in _STATEMENTS:
        model = sa.bindparam("model", type_=sa.String)
        if name == "ab_by_day":  # mature read as stored (0/1 on SQLite): no result processor to run per row
            t = ab_day_totals
            stmt = (sa.select(t.c.day, t.c.arm, sa.literal("", sa.String).label("segment"), *(t.c[k] for k in _AB_SUMS),
                              sa.type_coerce(t.c.mature, sa.Integer).label("mature"))
                    .order_by(t.c.day, t.c.arm))
        else:
            t, columns, order = {
                "ab": (ab_aggregates, ("day", "arm", "segment", *_AB_SUMS, "mature"), ("day", "arm", "segment")),
                "crossovers": (ab_crossovers, ("day", "segment", "n_crossover"), ("day",)),
                "series": (series_points, ("day", "series", "value"), ()),
                "daily": (health_daily, ("day", "arm", "n_exposures", "n_units"), ("day", "arm")),
                "histogram": (health_histogram, ("day", "bin", "n"), ("day", "bin")),
                "decisions": (decision_aggregates, ("day", *_DECISION_SUMS), ("day", "bin", "decision")),
                "guardrails": (guardrail_aggregates, ("guardrail", "day", "arm", *_AB_SUMS, "mature"),
                               ("guardrail", "day", "arm")),
                "billed": (billed_costs, ("day", "currency", "amount"), ("day", "currency")),
            }[name]
            stmt = sa.select(*(t.c[k] for k in columns)).order_by(*(t.c[k] for k in order))
        stmt = stmt.where(t.c.model_name == model)
        if before:
            stmt = stmt.where(t.c.day < sa.bindparam("before", type_=sa.Date))
        _STATEMENTS[key] = _text_dates(stmt)
    return _STATEMENTS[key]


def _frame_of(keys: list[str], rows: list[tuple], dates: frozenset[str]) -> pd.DataFrame:
    """A frame from rows of plain values, built column-wise (building from Row objects costs a type
    probe per cell): whole numbers and floats become numpy columns directly, with the dtypes pandas
    would infer from the values (int64; float64 with NULL as NaN; bool), dates become date objects
    (:func:`_as_dates`), anything else is left to pandas' inference."""
    columns = list(zip(*rows)) if rows else [()] * len(keys)
    return pd.DataFrame({k: _as_dates(col) if k in dates else _column(col) for k, col in zip(keys, columns)},
                        columns=keys, copy=False)  # every column is new: nothing to copy


def _pivot(rows: list[tuple]) -> pd.DataFrame | None:
    """The wide frame of series points ``(day, series, value)``: what pandas' pivot by day and
    series gives (a ``day`` column of sorted dates, then one float column per series in sorted
    order, NaN where a day has no point), filled from arrays. None when pandas must decide (a day
    or series missing, a point twice, a series named ``day``, values that are not all numbers)."""
    day_col, name_col, value_col = zip(*rows)
    day_of = _as_dates(day_col)
    names = set(name_col)
    kinds = set(map(type, value_col))
    if None in names or "day" in names or None in day_of or set(map(type, names)) != {str} \
            or not kinds <= {float, int, type(None)} or kinds <= {type(None)}:
        return None
    names_sorted = sorted(names)
    k = len(names_sorted)
    days = day_of[::k]
    if name_col == tuple(names_sorted) * len(days) and all(a < b for a, b in zip(days, days[1:])) \
            and all(day_of[j::k] == days for j in range(1, k)):
        # as stored: day by day, every series once a day in sorted order (the wide frame, row by row)
        matrix = np.array(value_col, dtype=np.float64).reshape(len(days), k)
        return pd.DataFrame({"day": days, **{n: matrix[:, j].copy() for j, n in enumerate(names_sorted)}})
    days = sorted(set(day_of))
    row = dict(zip(days, range(len(days))))
    col = dict(zip(names_sorted, range(len(names_sorted))))
    ri = np.fromiter(map(row.__getitem__, day_of), dtype=np.int64, count=len(rows))
    ci = np.fromiter(map(col.__getitem__, name_col), dtype=np.int64, count=len(rows))
    cell = ri * len(names_sorted) + ci
    if len(np.unique(cell)) != len(cell):
        return None  # a point twice: pandas' pivot says so
    matrix = np.full((len(days), len(names_sorted)), np.nan)
    matrix.flat[cell] = np.array(value_col, dtype=np.float64)
    return pd.DataFrame({"day": days, **{n: matrix[:, j].copy() for j, n in enumerate(names_sorted)}})


def _column(values: tuple[Any, ...]) -> Any:
    kinds = set(map(type, values))
    if kinds == {int}:
        return np.fromiter(values, dtype=np.int64, count=len(values))
    if kinds == {float}:
        return np.fromiter(values, dtype=np.float64, count=len(values))
    if kinds in ({float}, {float, int}, {float, type(None)}, {float, int, type(None)}, {int, type(None)}):
        return np.array(values, dtype=np.float64)  # NULL → NaN, as pandas infers it
    if kinds == {bool}:
        return np.array(values, dtype=bool)
    return list(values)


def _as_dates(values: tuple[Any, ...]) -> list[dt.date | None]:
    """Dates from a column as the driver returned it (ISO text on SQLite, dates elsewhere). Each
    distinct text is parsed once per process (the models of a portfolio share their days); entries
    are only ever added, so reads in other threads never miss one."""
    known = _DAYS
    new = {v: _as_date(v) for v in set(values).difference(known)}
    if not new:
        return [known[v] for v in values]
    if len(known) < 100_000:  # a bound on the memory of an unusual process
        known.update(new)
    lookup = {**known, **new}
    return [lookup[v] for v in values]


def _as_date(v: Any) -> dt.date | None:
    if v is None or isinstance(v, dt.datetime):
        return v.date() if v is not None else None
    if isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v)[:10])


_DAYS: dict[Any, dt.date | None] = {}
"""ISO text (or driver value) → date, shared by every read of the process."""


def _status(model: str, last_d: dict[str, Any] | None, ok_d: dict[str, Any] | None, max_age: dt.timedelta | None,
            now: dt.datetime | None) -> RefreshStatus:
    """A model's :class:`RefreshStatus` from its last refresh attempt and its last success."""
    reason = None
    if last_d and last_d["status"] in ("failed", "abandoned"):
        when = ok_d["finished_at"] if ok_d else None
        reason = f"the last refresh failed ({last_d['error']}); showing figures from " + (
            f"the refresh of {when}" if when else "no successful refresh")
    elif ok_d and max_age is not None:
        finished = _aware(ok_d["finished_at"])
        if (now or _now()) - finished > max_age:
            reason = f"the last successful refresh is older than {max_age}"
    elif not ok_d:
        reason = "never refreshed"
    return RefreshStatus(model, ok_d, last_d, reason is not None, reason)


ABANDON_AFTER = dt.timedelta(hours=6)


def _runner() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"[:200]


def _abandon_reason(runner: str | None, started: dt.datetime, now: dt.datetime) -> str | None:
    pid, _, host = (runner or "").partition("@")
    if host == socket.gethostname() and pid.isdigit() and runner != _runner():
        if not _alive(int(pid)):
            return f"its process {pid} ended without finishing (killed, or the machine restarted)"
        return None
    if now - started > ABANDON_AFTER:
        return f"still running {ABANDON_AFTER.total_seconds() / 3600:.0f} h after it began at {started:%Y-%m-%d %H:%M} UTC"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _health_since(table: sa.Table, pulled: Any) -> dt.date:
    """First day of ``table``'s stored rows that the pull replaces: its since day, or its first
    pulled day when earlier. The daily exposure counts can reach further back than the since day
    (read over the whole history, D53); then they replace the stored days from their own first
    day, so that days a warehouse no longer holds stay stored."""
    frame = {health_daily: "daily_exposures", health_histogram: "score_histogram"}.get(table)
    rows = pulled.health.get(frame) if frame else None
    if rows is not None and len(rows):
        return min(pulled.since_day, min(rows["day"]))
    return pulled.since_day


def _mark_ok(whole: bool) -> Any:
    """The UPDATE that records a successful refresh (its values as bound parameters ``ok_*``).

    ``refreshes.exposures_from``: the start of the history when the refresh read the daily
    exposure counts over the whole of it (``whole``, the parameter ``ok_exposures_from``), else what
    the model's previous successful refresh recorded (its counts stay stored and this one adds the
    newer days), read by a scalar subquery of the same statement."""
    values: dict[str, Any] = {k: sa.bindparam(f"ok_{k}", type_=refreshes.c[k].type) for k in (
        "finished_at", "since_day", "rows", "cost", "mature_through", "bin_edges", "max_exposure_ts", "max_outcome_ts",
        "definition")}
    previous = refreshes.alias("previous")
    values["exposures_from"] = (
        sa.bindparam("ok_exposures_from", type_=refreshes.c.exposures_from.type) if whole else
        sa.select(previous.c.exposures_from)
        .where(previous.c.model_name == sa.bindparam("ok_model"), previous.c.status == "ok")
        .order_by(previous.c.id.desc()).limit(1).scalar_subquery())
    return refreshes.update().where(refreshes.c.id == sa.bindparam("ok_id")).values(status="ok", **values)


_MARK_OK = {whole: _mark_ok(whole) for whole in (False, True)}
"""The statements a successful save ends with, built once (building one per model cost more than
running it), like the following ones."""

_REPLACED = (ab_aggregates, ab_day_totals, ab_crossovers, series_points, health_daily, health_histogram)
"""The tables whose rows of the re-read days a save replaces."""

_DELETE_SINCE = {t.name: t.delete().where(t.c.model_name == sa.bindparam("model"), t.c.day >= sa.bindparam("since"))
                 for t in _REPLACED}
"""The statements that drop a model's re-read days, built once (a statement built per model and table
cost more than running it)."""

_AB_SUMS = ("n", "n_units", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")

_DROP_KEPT_SUMS = segment_sums_kept.delete().where(
    segment_sums_kept.c.model_name == sa.bindparam("model"),
    segment_sums_kept.c.through >= sa.bindparam("since", type_=sa.Date))
"""The kept segment sums a save makes stale: those summing any day it re-reads (D68)."""


def _sum_days() -> Any:
    """The INSERT of a model's A/B rows of the days from ``since`` summed over segments into
    ``ab_day_totals``: the database's SUM over each day and arm's rows, read in the primary key's
    order (by segment), as migration 0023 fills them; ``mature`` when every row is."""
    t = ab_aggregates
    days = (sa.select(t.c.model_name, t.c.day, t.c.arm, *(sa.func.sum(t.c[k]) for k in _AB_SUMS),
                      sa.func.min(sa.cast(t.c.mature, sa.Integer)) == 1)
            .where(t.c.model_name == sa.bindparam("model"), t.c.day >= sa.bindparam("since", type_=sa.Date))
            .group_by(t.c.model_name, t.c.day, t.c.arm))
    return ab_day_totals.insert().from_select(["model_name", "day", "arm", *_AB_SUMS, "mature"], days)


_SUM_DAYS = _sum_days()


def _segment_sums(excluded: Sequence[tuple[dt.date, dt.date]] = ()) -> Any:
    """The SELECT of :meth:`AggregateStore.segment_sums` (``model``, ``through``, ``after`` bound)."""
    t = ab_aggregates
    keep = [t.c.model_name == sa.bindparam("model"), t.c.day <= sa.bindparam("through", type_=sa.Date),
            t.c.day > sa.bindparam("after", type_=sa.Date)]
    keep += [sa.not_(t.c.day.between(first, last)) for first, last in excluded]
    return (sa.select(t.c.segment, t.c.arm, *(sa.func.sum(t.c[k]).label(k) for k in _AB_SUMS))
            .where(*keep).group_by(t.c.segment, t.c.arm).order_by(t.c.segment, t.c.arm))


_SEGMENT_SUMS = _segment_sums()
"""Built once: without excluded windows (the usual case) the statement is the same for every model."""


def _ab_columns(pulled: Any, refresh_id: int) -> dict[str, Any]:
    """The A/B rows of a pull as columns of Python values (constants stay scalars)."""
    ab = pulled.ab
    if not len(ab):
        return {}
    return {
        "model_name": pulled.model, "day": ab["day"].tolist(), "arm": [str(a) for a in ab["arm"].tolist()],
        "segment": [_seg(v) for v in ab["segment"].tolist()] if "segment" in ab.columns else NO_SEGMENT,
        "n": _ints(ab["n"]), "n_units": _ints(ab["n_units"]),
        **{k: _floats(ab[k]) for k in ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")},
        "mature": [bool(m) for m in ab["mature"].tolist()], "refresh_id": refresh_id,
    }


def _floats(values: pd.Series) -> list[float | None]:
    """A column as Python floats, NaN and ±inf as None (NULL)."""
    if values.dtype == np.float64:  # the usual case: already floats
        arr = values.to_numpy()
    else:
        arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    out: list[float | None] = arr.tolist()
    finite = np.isfinite(arr)
    if not finite.all():
        for i in np.flatnonzero(~finite).tolist():
            out[i] = None
    return out


def _ints(values: pd.Series) -> list[int]:
    """A column as Python ints (``astype("int64")``, which refuses NaN; without its cost when the
    column holds integers already)."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iub":
        return values.to_numpy().astype(np.int64, copy=False).tolist()
    return values.astype("int64").tolist()


def _insert_columns(c: Any, table: sa.Table, columns: dict[str, Any]) -> int:
    """Insert rows given as columns (a list per column, or one scalar for every row).

    On SQLite the rows go to the driver's executemany as tuples, with dates and booleans in the
    form SQLAlchemy stores them ('YYYY-MM-DD', 0/1): a refresh writes about a million rows at
    portfolio scale, and SQLAlchemy's per-row bind processing would take four times longer. Other
    databases get SQLAlchemy's executemany (insertmanyvalues on PostgreSQL).
    """
    lists = {k: v for k, v in columns.items() if isinstance(v, list)}
    if not lists:
        return 0
    n = len(next(iter(lists.values())))
    if any(len(v) != n for v in lists.values()):
        raise ValueError(f"{table.name}: columns of different lengths")
    names = list(columns)
    cols = [columns[k] if isinstance(columns[k], list) else [columns[k]] * n for k in names]
    if c.dialect.name == "sqlite":
        cols = [_sqlite_column(col) if table.c[k].type._type_affinity in (sa.Date, sa.Boolean) else col
                for k, col in zip(names, cols)]
        quoted = ", ".join(f'"{k}"' for k in names)
        sql = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({", ".join("?" * len(names))})'
        c.exec_driver_sql(sql, list(zip(*cols)))
    else:
        c.execute(table.insert(), [dict(zip(names, row)) for row in zip(*cols)])
    return n


def _sqlite_column(col: list[Any]) -> list[Any]:
    kinds = set(map(type, col))
    if kinds == {dt.date}:  # the usual case: each distinct day formatted once
        text = {v: v.isoformat() for v in set(col)}
        return [text[v] for v in col]
    if kinds == {bool}:  # the driver binds a bool as the integer 0/1 already
        return col
    return [_sqlite_value(v) for v in col]


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def _save_guardrails(c: Any, pulled: Any, refresh_id: int) -> int:
    """Replace the re-read days of each guardrail; drop guardrails no longer in the manifest and rows
    read under another definition."""
    t = guardrail_aggregates
    pulled_g = getattr(pulled, "guardrails", None) or {}
    if pulled_g:
        c.execute(t.delete().where(t.c.model_name == pulled.model, t.c.guardrail.not_in(list(pulled_g))))
    else:
        c.execute(_DELETE_GUARDRAILS, {"model": pulled.model})
    written = 0
    for name, g in pulled_g.items():
        c.execute(t.delete().where(t.c.model_name == pulled.model, t.c.guardrail == name,
                                   sa.or_(t.c.day >= g.since_day, t.c.definition != g.definition)))
        written += _insert(c, t, [
            {"model_name": pulled.model, "guardrail": name, "day": r["day"], "arm": str(r["arm"]),
             "n": int(r["n"]), "n_units": int(r["n_units"]),
             **{k: num(r[k]) for k in ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")},
             "mature": bool(r["mature"]), "definition": g.definition, "refresh_id": refresh_id}
            for r in g.ab.to_dict("records")])
    return written


_DELETE_GUARDRAILS = guardrail_aggregates.delete().where(guardrail_aggregates.c.model_name == sa.bindparam("model"),
                                                         guardrail_aggregates.c.guardrail.not_in([""]))
"""Drop the guardrails of a model that has none (left from an earlier manifest); built once."""

_DECISION_SUMS = ("bin", "decision", "n", "sum_s", "sum_s2", "n_labelled", "n_positive", "sum_s_labelled",
                  "sum_s2_labelled")


def _insert(c: Any, table: sa.Table, rows: list[dict[str, Any]]) -> int:
    if rows:
        c.execute(table.insert(), rows)
    return len(rows)


def _seg(v: Any) -> str:
    return NO_SEGMENT if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _ts(v: Any) -> dt.datetime | None:
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        v = v.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return v


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(v: dt.datetime) -> dt.datetime:
    return v if v.tzinfo is not None else v.replace(tzinfo=dt.timezone.utc)
