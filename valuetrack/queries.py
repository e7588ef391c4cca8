"""The aggregate queries, built once with SQLAlchemy Core and compiled per warehouse dialect.

Only sufficient statistics leave the warehouse. Everything here returns a SQLAlchemy
``Select``; the connector compiles it for its dialect and runs it. What differs between
warehouses (cutting a timestamp into a local day, adding days to a timestamp, "value at the
minimum of key", quantiles, how a where-filter is rendered) is asked of a :class:`DialectOps`,
which each connector supplies.

Rules kept throughout:

* identifiers come from a validated :class:`~valuetrack.registry.spec.ModelSpec` and are
  re-checked here (:func:`~valuetrack.sqlsafety.check_identifier`); the dialect quotes them when
  the statement is compiled;
* every value (model name, arm labels, dates, time zone, bin edges) is a bound parameter;
* the only text embedded is an outcomes where-filter, and only after
  :func:`~valuetrack.sqlsafety.check_predicate` has parsed it and refused anything that is not a
  single read-only row condition; it is then re-rendered by sqlglot for the target dialect with
  every identifier quoted, so what reaches the warehouse is sqlglot's rendering of a checked tree,
  never the user's string.

Timestamps are assumed to hold UTC (``TIMESTAMP`` without time zone in DuckDB, Snowflake
``TIMESTAMP_NTZ`` and Athena; ``TIMESTAMP`` in BigQuery). Day boundaries in the model's time zone
are turned into UTC instants in Python (:func:`local_midnight_utc`) and bound as parameters, so
range filters stay sargable and DST changes are handled by ``zoneinfo``, not by the warehouse.

The A/B aggregate (see docs/connectors.md, "Query shape")::

    exposure   rows of the model, arm in (treatment, control), scored before the as-of cutoff
    first      per unit: first exposure time, min(arm), max(arm), segment of the first exposure
    cohort     per unit first exposed in [cohort_start, cohort_end] (local days):
               day = local day of the first exposure, arm = NULL for crossovers
    outcome    outcome rows in [cohort_from - covariate_days, cohort_to + window_days), before
               the cutoff, where-filter applied
    per_unit   cohort LEFT JOIN outcome on unit and the unit's own window, one row per unit:
               y and x (CUPED) by conditional aggregation in the same pass
    result     per day × arm (× segment): n, n_units, sum_y, sum_y2, sum_x, sum_x2, sum_xy

Crossover units come back in the same result as rows whose ``arm`` is NULL (``n_units`` is their
count; their sums are left NULL). :func:`split_crossovers` separates them.
"""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa
import sqlglot
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, Select
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from valuetrack.errors import ParameterError, UnsafeSQL
from valuetrack.registry.spec import ExposureSource, ModelSpec, OutcomeSource
from valuetrack.sqlsafety import check_identifier, check_predicate, split_table

AB_COLUMNS = ("day", "arm", "n", "n_units", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")
"""Columns of :func:`ab_aggregate` (``segment`` follows ``arm`` when the spec has a segment)."""

UTC = dt.timezone.utc


class DialectOps:
    """What differs between warehouses, as SQLAlchemy expressions. Connectors subclass this.

    The defaults are ANSI-ish and what DuckDB (and PostgreSQL) understand.

    Attributes:
        sqlglot_dialect: the sqlglot dialect name used to re-render where-filters and to check
            compiled SQL.
    """

    sqlglot_dialect: str = "duckdb"

    def local_day(self, ts: ColumnElement, tz: str) -> ColumnElement:
        """The calendar day, in IANA zone ``tz``, of a timestamp column that holds UTC.

        DuckDB: ``CAST(ts AS TIMESTAMPTZ)`` is the same instant for TIMESTAMP (naive UTC; the
        connector pins the session time zone to UTC) and TIMESTAMPTZ columns.
        """
        local = sa.func.timezone(sa.bindparam("tz", tz, type_=sa.String), sa.cast(ts, sa.DateTime(timezone=True)))
        return sa.cast(local, sa.Date)

    def instant(self, name: str, value: dt.datetime) -> ColumnElement:
        """A bound UTC instant (``value`` is naive UTC) comparable with the timestamp columns."""
        return sa.bindparam(name, value, type_=sa.DateTime)

    def add_days(self, ts: ColumnElement, days: int) -> ColumnElement:
        """``ts`` plus a whole number of days (``days`` is a validated int, never user text)."""
        return ts + sa.func.to_days(sa.literal(int(days), sa.Integer))

    def min_by(self, value: ColumnElement, key: ColumnElement) -> ColumnElement:
        """The ``value`` of the row with the smallest ``key`` in the group."""
        return sa.func.min_by(value, key)

    def to_double(self, expr: ColumnElement) -> ColumnElement:
        """A 64-bit float, so sums of squares never use integer arithmetic or 32-bit floats."""
        return sa.cast(expr, sa.Double)

    def quantiles(self, col: ColumnElement, qs: Sequence[float]) -> list[ColumnElement]:
        """One aggregate expression per quantile ``q`` of ``col`` (exact or approximate)."""
        return [sa.func.quantile_cont(col, sa.literal(float(q), sa.Float)) for q in qs]

    def predicate(self, sql: str) -> ColumnElement:
        """A user where-filter: parsed and checked read-only, re-rendered for this dialect.

        Identifiers are normalised the way the warehouse would treat them unquoted (e.g.
        upper-cased for Snowflake) and then quoted, so the filter means what the user wrote.
        """
        tree = check_predicate(sql)
        tree = normalize_identifiers(tree.copy(), dialect=self.sqlglot_dialect)
        rendered = tree.sql(dialect=self.sqlglot_dialect, identify=True, comments=False)
        # re-check the rendering: what we embed must itself be a single read-only condition
        check_predicate(rendered, dialect=self.sqlglot_dialect)
        # text() reads ":name" as a bind parameter; the filter's text is kept literally (a value
        # such as 'a:b' inside quotes stays those characters)
        return sa.text(rendered.replace(":", r"\:"))

    def array_sum(self, array: ColumnElement, field: str) -> ColumnElement:
        """Σ of the struct field ``field`` over an array-of-structs column, per row (NULL when the
        array is empty): ``(SELECT SUM(c.field) FROM UNNEST(array) AS u(c))`` in DuckDB."""
        return _ArrayFieldSum(array, field)

    def array_has_pair(self, array: ColumnElement, key: str, value: str) -> ColumnElement:
        """True when an array of ``{key, value}`` structs holds the pair (``key``, ``value``); both
        are bound parameters."""
        return _ArrayHasPair(array, sa.bindparam("label_key", key, type_=sa.String),
                             sa.bindparam("label_value", value, type_=sa.String))


class _ArrayFieldSum(ColumnElement):
    """Σ of one struct field over an array column, per row (rendered per dialect below)."""

    inherit_cache = True
    type = sa.Double()

    def __init__(self, array: ColumnElement, field: str) -> None:
        self.array = array
        self.field = check_identifier(field)


class _ArrayHasPair(ColumnElement):
    """EXISTS an element {key, value} of an array column equal to two bound values."""

    inherit_cache = True
    type = sa.Boolean()

    def __init__(self, array: ColumnElement, key: ColumnElement, value: ColumnElement) -> None:
        self.array, self.key, self.value = array, key, value


@compiles(_ArrayFieldSum)
def _array_field_sum(element: _ArrayFieldSum, compiler: Any, **kw: Any) -> str:
    # DuckDB: UNNEST in FROM needs a column alias to name the struct: UNNEST(a) AS u(c)
    q = compiler.preparer.quote_identifier
    return (f"(SELECT SUM(CAST({q('vt_c')}.{q(element.field)} AS DOUBLE)) FROM UNNEST("
            f"{compiler.process(element.array, **kw)}) AS {q('vt_u')}({q('vt_c')}))")


@compiles(_ArrayFieldSum, "bigquery")
def _array_field_sum_bigquery(element: _ArrayFieldSum, compiler: Any, **kw: Any) -> str:
    q = compiler.preparer.quote_identifier
    return (f"(SELECT SUM(CAST({q('vt_c')}.{q(element.field)} AS FLOAT64)) FROM UNNEST("
            f"{compiler.process(element.array, **kw)}) AS {q('vt_c')})")


@compiles(_ArrayHasPair)
def _array_has_pair(element: _ArrayHasPair, compiler: Any, **kw: Any) -> str:
    q = compiler.preparer.quote_identifier
    return (f"EXISTS (SELECT 1 FROM UNNEST({compiler.process(element.array, **kw)}) AS {q('vt_u')}({q('vt_l')}) "
            f"WHERE {q('vt_l')}.{q('key')} = {compiler.process(element.key, **kw)} "
            f"AND {q('vt_l')}.{q('value')} = {compiler.process(element.value, **kw)})")


@compiles(_ArrayHasPair, "bigquery")
def _array_has_pair_bigquery(element: _ArrayHasPair, compiler: Any, **kw: Any) -> str:
    q = compiler.preparer.quote_identifier
    return (f"EXISTS (SELECT 1 FROM UNNEST({compiler.process(element.array, **kw)}) AS {q('vt_l')} "
            f"WHERE {q('vt_l')}.{q('key')} = {compiler.process(element.key, **kw)} "
            f"AND {q('vt_l')}.{q('value')} = {compiler.process(element.value, **kw)})")


# ------------------------------------------------------------------------------------------------
# helpers


def local_midnight_utc(day: dt.date, tz: str) -> dt.datetime:
    """The UTC instant (naive) at which ``day`` begins in zone ``tz`` (DST handled by zoneinfo)."""
    local = dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(tz))
    return local.astimezone(UTC).replace(tzinfo=None)


def as_of_cutoff(as_of: dt.date, tz: str) -> dt.datetime:
    """The first instant after ``as_of`` in the model's time zone: nothing at or after it counts."""
    return local_midnight_utc(as_of + dt.timedelta(days=1), tz)


def _table(qualified: str, *columns: str | None) -> sa.TableClause:
    schema, name = split_table(qualified)
    cols = sorted({check_identifier(c) for c in columns if c is not None})
    return sa.table(name, *[sa.column(c) for c in cols], schema=schema)


def _model_filter(src: ExposureSource, t: sa.TableClause, spec: ModelSpec,
                  batch: Sequence[ModelSpec] | None = None) -> list[ColumnElement]:
    if src.model is None:
        return []
    if batch:
        return [t.c[src.model].in_([sa.bindparam(f"model_value_{i}", model_value(s), type_=sa.String)
                                    for i, s in enumerate(batch)])]
    return [t.c[src.model] == sa.bindparam("model_value", src.model_value or spec.name, type_=sa.String)]


def model_value(spec: ModelSpec) -> str:
    """The value of the exposures' model column that marks this model's rows."""
    ex = spec.attribution.exposures
    return (ex.model_value if ex is not None else None) or spec.name


def _batch(specs: ModelSpec | Sequence[ModelSpec]) -> tuple[ModelSpec, list[ModelSpec] | None]:
    """(the spec whose columns shape the query, the batch or None for one model).

    A batch is several models read from one shared exposures table by one query grouped by the
    model column (output column ``model_value``); they must agree on everything the query reads
    (:func:`ab_batch_key`, :func:`health_batch_key`)."""
    if isinstance(specs, ModelSpec):
        return specs, None
    specs = list(specs)
    if not specs:
        raise ParameterError("a batch needs at least one model")
    if len(specs) == 1:
        return specs[0], None
    if specs[0].attribution.exposures is None or specs[0].attribution.exposures.model is None:
        raise ParameterError("models can share a query only through a model column of their exposures table")
    values = [model_value(s) for s in specs]
    if len(set(values)) != len(values):
        raise ParameterError(f"a batch reads each model once; {values} repeats one")
    return specs[0], specs


def ab_batch_key(spec: ModelSpec) -> tuple | None:
    """Models with equal keys can share one A/B aggregate query (None: this one cannot)."""
    a, ex, out = spec.attribution, spec.attribution.exposures, spec.attribution.outcomes
    if not spec.has_holdout or ex is None or out is None or ex.model is None or a.challenger is not None:
        return None
    return ("ab", spec.connection, spec.timezone, ex.table, ex.unit, ex.timestamp, ex.arm, ex.model, ex.segment,
            ex.treatment, ex.control, out.table, out.unit, out.timestamp, out.value, (out.where or "").strip(),
            spec.kpi.aggregation, a.window_days, a.covariate_days)


def health_batch_key(spec: ModelSpec) -> tuple | None:
    """Models with equal keys can share the exposure-health queries (None: this one cannot)."""
    ex, out = spec.attribution.exposures, spec.attribution.outcomes
    if ex is None or ex.model is None:
        return None
    outcomes = (out.table, out.timestamp, (out.where or "").strip()) if out is not None else None
    return ("health", spec.connection, spec.timezone, ex.table, ex.unit, ex.timestamp, ex.arm, ex.model, ex.score,
            outcomes)


def _require_ab(spec: ModelSpec) -> tuple[ExposureSource, OutcomeSource]:
    exp, out = spec.attribution.exposures, spec.attribution.outcomes
    if exp is None or out is None:
        raise ParameterError(f"model {spec.name!r} has no [attribution.exposures]/[attribution.outcomes]: no A/B aggregate")
    return exp, out


@dataclass(frozen=True)
class AbWindow:
    """The UTC bounds bound into an A/B aggregate (useful for logging and tests).

    Attributes:
        cohort_from: first instant of ``cohort_start`` in the model's zone (UTC, naive).
        cohort_to: first instant after ``cohort_end`` (exclusive).
        cutoff: first instant after ``as_of``: no exposure or outcome at or after it is read.
        outcomes_from: earliest outcome instant read (cohort_from − covariate_days).
        outcomes_to: latest outcome instant read, exclusive (min(cutoff, cohort_to + window)).
    """

    cohort_from: dt.datetime
    cohort_to: dt.datetime
    cutoff: dt.datetime
    outcomes_from: dt.datetime
    outcomes_to: dt.datetime


def ab_window(spec: ModelSpec, cohort_start: dt.date, cohort_end: dt.date, as_of: dt.date) -> AbWindow:
    """Compute the UTC bounds of :func:`ab_aggregate`; ParameterError for reversed dates."""
    if cohort_end < cohort_start:
        raise ParameterError(f"cohort_end {cohort_end} is before cohort_start {cohort_start}")
    if as_of < cohort_start:
        raise ParameterError(f"as_of {as_of} is before cohort_start {cohort_start}: no cohort can be read")
    cohort_end = min(cohort_end, as_of)
    a = spec.attribution
    cohort_from = local_midnight_utc(cohort_start, spec.timezone)
    cohort_to = local_midnight_utc(cohort_end + dt.timedelta(days=1), spec.timezone)
    cutoff = as_of_cutoff(as_of, spec.timezone)
    return AbWindow(
        cohort_from=cohort_from,
        cohort_to=cohort_to,
        cutoff=cutoff,
        outcomes_from=cohort_from - dt.timedelta(days=a.covariate_days),
        outcomes_to=min(cutoff, cohort_to + dt.timedelta(days=a.window_days)),
    )


# ------------------------------------------------------------------------------------------------
# the A/B aggregate


RECENT_COHORT_DAYS = 92
"""An A/B aggregate over at most this many cohort days (an incremental refresh re-reads the
immature ones) groups only the units exposed in its window (:func:`ab_aggregate`)."""


def ab_aggregate(
    spec: ModelSpec | Sequence[ModelSpec],
    *,
    cohort_start: dt.date,
    cohort_end: dt.date,
    as_of: dt.date,
    dialect_ops: DialectOps | None = None,
) -> Select:
    """Per cohort day × arm (× segment) sufficient statistics of the model's A/B test.

    Args:
        spec: a model with ``[attribution.exposures]`` and ``[attribution.outcomes]``.
        cohort_start: first cohort day (local day of first exposure, in ``spec.timezone``).
        cohort_end: last cohort day, inclusive (clipped to ``as_of``).
        as_of: nothing (exposure or outcome) after this local day is read; the caller marks
            maturity (``as_of >= day + window_days + outcome_lag_days``).
        dialect_ops: the connector's :class:`DialectOps` (DuckDB's defaults when omitted).

    ``spec`` may be a batch of models that share their exposures table (:func:`ab_batch_key`):
    one query grouped by the model column, whose value leads each row as ``model_value``.

    Returns:
        A ``Select`` with columns ``[model_value], day, arm, [segment], n, n_units, sum_y, sum_y2, sum_x,
        sum_x2, sum_xy``. ``n_units`` counts the units of the cohort; ``n`` counts those with a
        defined y (equal to ``n_units`` for "sum" and "conversion"; for "mean", units without an
        outcome event with a non-NULL value have no mean and are left out of ``n`` and the sums).
        Rows whose ``arm`` is NULL carry the crossover units of that day in ``n_units``.
        ``sum_x*`` are 0 when ``covariate_days`` is 0.

    Definitions (per unit, in the window [first exposure, first exposure + window_days), before
    the as-of cutoff): "sum" → Σ non-NULL values, 0 without events; "conversion" → 1 if any
    event (whatever its value), else 0; "mean" → mean of non-NULL values, undefined without.
    x is the same KPI over [first exposure − covariate_days, first exposure), 0 when it has no
    events (for "mean" too, so CUPED keeps every unit that has a y).
    """
    ops = dialect_ops or DialectOps()
    spec, batch = _batch(spec)
    src, out = _require_ab(spec)
    a = spec.attribution
    agg = spec.kpi.aggregation
    win = ab_window(spec, cohort_start, cohort_end, as_of)
    use_x = a.covariate_days > 0

    # -- exposures → one row per unit ---------------------------------------------------------
    E = _table(src.table, src.unit, src.timestamp, src.arm, src.model, src.segment).alias("e")
    arms = [sa.bindparam("treatment", src.treatment, type_=sa.String), sa.bindparam("control", src.control, type_=sa.String)]
    if spec.attribution.challenger is not None:  # champion vs challenger: the third arm's units too
        arms.append(sa.bindparam("challenger", spec.attribution.challenger.arm, type_=sa.String))
    ts = E.c[src.timestamp]
    by_model = [E.c[src.model].label("model_value")] if batch else []
    first_cols = [
        *by_model,
        E.c[src.unit].label("unit"),
        sa.func.min(ts).label("first_ts"),
        sa.func.min(E.c[src.arm]).label("arm_lo"),
        sa.func.max(E.c[src.arm]).label("arm_hi"),
    ]
    if src.segment:
        first_cols.append(ops.min_by(E.c[src.segment], ts).label("segment"))
    where = [E.c[src.arm].in_(arms), ts < ops.instant("cutoff", win.cutoff), *_model_filter(src, E, spec, batch)]
    if (win.cohort_to - win.cohort_from).days <= RECENT_COHORT_DAYS:
        # a short window (an incremental refresh): only the units exposed in it can have their first
        # exposure there, so only theirs are grouped (over all their history, for the first day and
        # the arms), not every unit of the table
        R = _table(src.table, src.unit, src.timestamp, src.arm, src.model).alias("recent")
        where.append(E.c[src.unit].in_(
            sa.select(R.c[src.unit]).where(R.c[src.arm].in_(arms), R.c[src.timestamp] >= ops.instant("recent_from", win.cohort_from),
                                           R.c[src.timestamp] < ops.instant("cutoff", win.cutoff),
                                           *_model_filter(src, R, spec, batch))))
    first = (
        sa.select(*first_cols)
        .where(*where)
        .group_by(*([E.c[src.model]] if batch else []), E.c[src.unit])
        .cte("vt_first_exposure")
    )
    cohort_cols = [
        *([first.c.model_value] if batch else []),
        first.c.unit,
        first.c.first_ts,
        ops.local_day(first.c.first_ts, spec.timezone).label("day"),
        sa.case((first.c.arm_lo == first.c.arm_hi, first.c.arm_lo), else_=sa.null()).label("arm"),
    ]
    if src.segment:
        cohort_cols.append(first.c.segment)
    cohort = (
        sa.select(*cohort_cols)
        .where(
            first.c.first_ts >= ops.instant("cohort_from", win.cohort_from),
            first.c.first_ts < ops.instant("cohort_to", win.cohort_to),
        )
        .cte("vt_cohort")
    )

    # -- outcomes → one row per cohort unit ---------------------------------------------------
    per_unit = _unit_outcomes(spec, out, cohort, win, ops, use_x)

    # -- per unit y and x, then per day × arm -------------------------------------------------
    y = ops.to_double(_kpi(agg, per_unit.c, "y", ops))
    x = ops.to_double(_kpi(agg, per_unit.c, "x", ops)) if use_x else sa.literal(0.0, sa.Float)
    # crossovers: only their count matters; their y and x stay NULL so the sums skip them
    not_crossover = per_unit.c.arm.is_not(None)
    keys = [*([per_unit.c.model_value] if batch else []), per_unit.c.day, per_unit.c.arm] + (
        [per_unit.c.segment] if src.segment else [])
    y_u = sa.case((not_crossover, y), else_=sa.null())
    units = sa.select(
        *keys,
        y_u.label("y"),
        sa.case((not_crossover & y.is_not(None), x), else_=sa.null()).label("x"),
    ).subquery("unit_values")
    u = units.c
    group = [*([u.model_value] if batch else []), u.day, u.arm] + ([u.segment] if src.segment else [])
    stmt = sa.select(
        *group,
        sa.func.count(u.y).label("n"),
        sa.func.count().label("n_units"),
        sa.func.sum(u.y).label("sum_y"),
        sa.func.sum(u.y * u.y).label("sum_y2"),
        sa.func.sum(u.x).label("sum_x"),
        sa.func.sum(u.x * u.x).label("sum_x2"),
        sa.func.sum(u.x * u.y).label("sum_xy"),
    ).group_by(*group)
    return stmt.order_by(*group)


def _kpi(agg: str, c, which: str, ops: DialectOps) -> ColumnElement:
    """A unit's KPI from its window's sum / event count / non-NULL count (see ab_aggregate)."""
    total, events, values = c[f"{which}_sum"], c[f"{which}_events"], c[f"{which}_values"]
    if agg == "sum":
        return sa.func.coalesce(total, 0.0)
    if agg == "conversion":
        return sa.case((events > 0, 1.0), else_=0.0)
    if agg == "mean":
        # a double over a count: never integer division; no value → NULL for y, 0 for x
        mean = total / ops.to_double(sa.func.nullif(values, 0))
        return mean if which == "y" else sa.func.coalesce(mean, 0.0)
    raise ParameterError(f"kpi.aggregation {agg!r} is not one of sum, mean, conversion")  # pragma: no cover


def _unit_outcomes(spec: ModelSpec, out: OutcomeSource, cohort, win: AbWindow, ops: DialectOps, use_x: bool):
    """cohort LEFT JOIN outcome events in the unit's windows, grouped to one row per unit.

    The outcome rows are first narrowed to the instants any cohort unit can use (a sargable
    range on the event time, the where-filter), then joined on unit and the per-unit window.
    y and x come from the same join in one pass (conditional aggregation), so the outcomes are
    scanned once whether CUPED is on or not.
    """
    a = spec.attribution
    O = _table(out.table, out.unit, out.timestamp, out.value).alias("o")
    o_ts = O.c[out.timestamp]
    conds = [
        o_ts >= ops.instant("outcomes_from", win.outcomes_from if use_x else win.cohort_from),
        o_ts < ops.instant("outcomes_to", win.outcomes_to),
    ]
    if out.where:
        conds.append(ops.predicate(out.where))
    events = (
        sa.select(O.c[out.unit].label("unit"), o_ts.label("event_ts"), ops.to_double(O.c[out.value]).label("value"))
        .where(*conds)
        .cte("vt_outcome")
    )
    c = cohort
    lo = ops.add_days(c.c.first_ts, -a.covariate_days) if use_x else c.c.first_ts
    hi = ops.add_days(c.c.first_ts, a.window_days)
    join_on = sa.and_(events.c.unit == c.c.unit, events.c.event_ts >= lo, events.c.event_ts < hi)
    in_y = events.c.event_ts >= c.c.first_ts
    is_event = events.c.unit.is_not(None)  # LEFT JOIN: a unit without events has one NULL row
    cols = [
        sa.func.sum(sa.case((in_y, events.c.value), else_=sa.null())).label("y_sum"),
        sa.func.count(sa.case((in_y & is_event, 1), else_=sa.null())).label("y_events"),
        sa.func.count(sa.case((in_y, events.c.value), else_=sa.null())).label("y_values"),
    ]
    if use_x:
        in_x = events.c.event_ts < c.c.first_ts
        cols += [
            sa.func.sum(sa.case((in_x, events.c.value), else_=sa.null())).label("x_sum"),
            sa.func.count(sa.case((in_x & is_event, 1), else_=sa.null())).label("x_events"),
            sa.func.count(sa.case((in_x, events.c.value), else_=sa.null())).label("x_values"),
        ]
    keys = [*([c.c.model_value] if "model_value" in c.c else []), c.c.unit, c.c.day, c.c.arm] + (
        [c.c.segment] if "segment" in c.c else [])
    return (
        sa.select(*keys, *cols)
        .select_from(c.outerjoin(events, join_on))
        .group_by(*keys)
        .subquery("per_unit")
    )


def split_crossovers(frame: pd.DataFrame, *, by: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split an :func:`ab_aggregate` result into (per-arm rows, crossover counts per day [× segment]).

    The crossover frame has columns ``[by...], day, [segment], n_crossover`` (``by``: columns kept
    in front, e.g. ``model_value`` of a batch query's rows).
    """
    is_x = frame["arm"].isna().to_numpy()
    keys = [*by, "day"] + (["segment"] if "segment" in frame.columns else [])
    if not is_x.any():  # the usual case, without a boolean selection (a millisecond per model in a refresh)
        return frame.reset_index(drop=True), pd.DataFrame(
            {**{k: frame[k].iloc[:0] for k in keys}, "n_crossover": frame["n_units"].iloc[:0]}).reset_index(drop=True)
    ab = frame.loc[~is_x].reset_index(drop=True)
    xo = frame.loc[is_x, keys + ["n_units"]].rename(columns={"n_units": "n_crossover"}).reset_index(drop=True)
    return ab, xo


# ------------------------------------------------------------------------------------------------
# time series


def series_query(spec: ModelSpec, start: dt.date, end: dt.date, *, dialect_ops: DialectOps | None = None) -> Select:
    """The daily KPI series and its control series, for ``start <= day <= end``.

    Returns:
        A ``Select`` with columns ``day, value, <control columns...>`` ordered by day, where
        ``day`` is the series' date column cast to DATE and values are 64-bit floats.
    """
    ops = dialect_ops or DialectOps()
    s = spec.attribution.series
    if s is None:
        raise ParameterError(f"model {spec.name!r} has no [attribution.series]")
    if end < start:
        raise ParameterError(f"end {end} is before start {start}")
    T = _table(s.table, s.date, s.value, *s.controls).alias("s")
    day = sa.cast(T.c[s.date], sa.Date)
    cols = [day.label("day"), ops.to_double(T.c[s.value]).label("value")]
    cols += [ops.to_double(T.c[c]).label(check_identifier(c)) for c in s.controls]
    return (
        sa.select(*cols)
        .where(day >= sa.bindparam("start", start, type_=sa.Date), day <= sa.bindparam("end", end, type_=sa.Date))
        .order_by(day)
    )


def series_batch_key(spec: ModelSpec) -> tuple | None:
    """Models with equal keys read their daily series from the same table and day column, so one
    query can read them all (:func:`series_batch_query`; None: no series)."""
    s = spec.attribution.series
    return None if s is None else ("series", spec.connection, s.table, s.date)


def series_batch_columns(specs: Sequence[ModelSpec]) -> list[str]:
    """The columns :func:`series_batch_query` reads after ``day``: each distinct value or control
    column of ``specs``, in order of first appearance; the query names them ``c0``, ``c1``, …"""
    out: dict[str, None] = {}
    for spec in specs:
        s = spec.attribution.series
        out.update(dict.fromkeys((s.value, *s.controls)))
    return list(out)


def series_batch_query(specs: Sequence[ModelSpec], start: dt.date, end: dt.date, *,
                       dialect_ops: DialectOps | None = None) -> Select:
    """The daily series of several models reading the same table and day column
    (:func:`series_batch_key`), for ``start <= day <= end``: one query instead of one per model.

    Returns:
        A ``Select`` with columns ``day, c0, c1, …`` (the columns of :func:`series_batch_columns`
        as 64-bit floats, in that order) ordered by day: each model's :func:`series_query` result
        is ``day``, its value column as ``value`` and its control columns.
    """
    ops = dialect_ops or DialectOps()
    if not specs or len({series_batch_key(spec) for spec in specs}) != 1 or series_batch_key(specs[0]) is None:
        raise ParameterError("series_batch_query: the models must read their series from one table and day column")
    if end < start:
        raise ParameterError(f"end {end} is before start {start}")
    s = specs[0].attribution.series
    columns = series_batch_columns(specs)
    T = _table(s.table, s.date, *columns).alias("s")
    day = sa.cast(T.c[s.date], sa.Date)
    return (
        sa.select(day.label("day"), *(ops.to_double(T.c[c]).label(f"c{i}") for i, c in enumerate(columns)))
        .where(day >= sa.bindparam("start", start, type_=sa.Date), day <= sa.bindparam("end", end, type_=sa.Date))
        .order_by(day)
    )


def fx_rates_query(table: str, date: str, currency: str, rate: str, currencies: Sequence[str], end: dt.date, *,
                   dialect_ops: DialectOps | None = None) -> Select:
    """The exchange rates of ``currencies`` published up to ``end`` ([fx] table in valuetrack.toml).

    Returns:
        A ``Select`` with columns ``date`` (the date column cast to DATE), ``currency`` and ``rate``
        (a 64-bit float: units of the reporting currency per 1 unit of the currency), ordered by
        currency and date; only the needed currencies leave the warehouse.
    """
    ops = dialect_ops or DialectOps()
    if not currencies:
        raise ParameterError("fx_rates_query: no currency to read")
    T = _table(table, date, currency, rate).alias("r")
    day = sa.cast(T.c[date], sa.Date)
    return (
        sa.select(day.label("date"), T.c[currency].label("currency"), ops.to_double(T.c[rate]).label("rate"))
        .where(T.c[currency].in_(sa.bindparam("currencies", sorted(set(currencies)), expanding=True)),
               day <= sa.bindparam("end", end, type_=sa.Date))
        .order_by(T.c[currency], day)
    )


def panel_query(spec: ModelSpec, start: dt.date, end: dt.date, *, dialect_ops: DialectOps | None = None) -> Select:
    """The panel of units: per day and unit, the KPI summed over the unit's rows of that day.

    Returns:
        A ``Select`` with columns ``day, unit, value`` ordered by day and unit, for
        ``start <= day <= end``; ``unit`` as text, ``value`` a 64-bit float.
    """
    ops = dialect_ops or DialectOps()
    p = spec.attribution.panel
    if p is None:
        raise ParameterError(f"model {spec.name!r} has no [attribution.panel]")
    if end < start:
        raise ParameterError(f"end {end} is before start {start}")
    T = _table(p.table, p.date, p.unit, p.value).alias("p")
    day = sa.cast(T.c[p.date], sa.Date)
    unit = sa.cast(T.c[p.unit], sa.String)
    return (
        sa.select(day.label("day"), unit.label("unit"), sa.func.sum(ops.to_double(T.c[p.value])).label("value"))
        .where(day >= sa.bindparam("start", start, type_=sa.Date), day <= sa.bindparam("end", end, type_=sa.Date),
               T.c[p.unit].is_not(None))
        .group_by(day, unit)
        .order_by(day, unit)
    )


BILLED_COLUMNS = ("day", "currency", "amount")
"""Columns of :func:`billed_cost_query` once the constant currency is added (``currency`` is only
selected when the bill has a currency column)."""


def billed_cost_query(spec: ModelSpec, start: dt.date, end: dt.date, *,
                      dialect_ops: DialectOps | None = None) -> Select:
    """The model's billed cost per UTC day (and currency), summed in the warehouse.

    Per row: ``amount`` (+ Σ ``credits[].amount`` when the bill has nested credits), rows kept when
    their ``labels`` hold (``label_key``, this model) and the checked ``where`` holds. Price per unit
    and share are applied in Python (:mod:`valuetrack.value.billing`), so editing them needs no
    refresh.

    Returns:
        A ``Select`` with columns ``day, [currency,] amount`` ordered by day, for
        ``start <= day <= end``; ``currency`` only when the bill has a currency column.
    """
    ops = dialect_ops or DialectOps()
    cs = spec.cost_source
    if cs is None:
        raise ParameterError(f"model {spec.name!r} has no [cost_source]")
    if end < start:
        raise ParameterError(f"end {end} is before start {start}")
    B = _table(cs.table, cs.date, cs.amount, cs.currency_column, cs.credits, cs.labels).alias("b")
    day = sa.cast(B.c[cs.date], sa.Date)
    amount = sa.func.coalesce(ops.to_double(B.c[cs.amount]), sa.literal(0.0, sa.Float))
    if cs.credits:
        amount = amount + sa.func.coalesce(ops.array_sum(B.c[cs.credits], "amount"), sa.literal(0.0, sa.Float))
    cond = [day >= sa.bindparam("start", start, type_=sa.Date), day <= sa.bindparam("end", end, type_=sa.Date)]
    if cs.labels:
        cond.append(ops.array_has_pair(B.c[cs.labels], cs.label_key, cs.label_value or spec.name))
    if cs.where:
        cond.append(ops.predicate(cs.where))
    keys = [day] + ([B.c[cs.currency_column]] if cs.currency_column else [])
    cols = [day.label("day")] + ([B.c[cs.currency_column].label("currency")] if cs.currency_column else [])
    return (sa.select(*cols, sa.func.sum(amount).label("amount"))
            .where(*cond)
            .group_by(*keys)
            .order_by(*keys))


# ------------------------------------------------------------------------------------------------
# health


@dataclass(frozen=True)
class HealthQueries:
    """The health checks of one model, each a ``Select`` (None when the spec lacks the column).

    Attributes:
        daily_exposures: ``day, arm, n_exposures, n_units`` per local day of exposure.
        score_histogram: ``day, bin, n`` per local day; ``bin`` = number of ``bin_edges`` ≤ score
            (0 … len(edges)); NULL scores land in bin NULL. None without a score column or edges.
        reference_edges: one row, columns ``q0, q1, …``: score quantiles over the reference window.
        freshness: one row: ``max_exposure_ts``, ``max_outcome_ts`` (UTC).
    """

    daily_exposures: Select
    score_histogram: Select | None
    reference_edges: Select | None
    freshness: Select


def health_queries(
    spec: ModelSpec | Sequence[ModelSpec],
    *,
    start: dt.date,
    end: dt.date,
    bin_edges: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    reference: tuple[dt.date, dt.date] | None = None,
    quantiles: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    dialect_ops: DialectOps | None = None,
    daily_start: dt.date | None = None,
) -> HealthQueries:
    """Daily exposure counts, score histograms on fixed edges, reference edges and freshness.

    Args:
        spec: one model, or a batch sharing an exposures table (:func:`health_batch_key`): then
            every query is grouped by the model column and each row leads with ``model_value``.
        start, end: local days (model time zone) of the daily queries, inclusive.
        daily_start: first day of the daily exposure counts when it differs from ``start`` (a
            refresh reads them over the whole history, the histogram over its last days: D53).
        bin_edges: fixed, increasing histogram edges (from :attr:`HealthQueries.reference_edges`
            of a reference window, computed once and stored); no histogram when None. For a
            batch, a mapping from model value to its edges (models without edges get no histogram).
        reference: (first, last) local day of the reference window for the quantile edges.
        quantiles: the quantiles that become edges.
    """
    ops = dialect_ops or DialectOps()
    spec, batch = _batch(spec)
    src = spec.attribution.exposures
    if src is None:
        raise ParameterError(f"model {spec.name!r} has no [attribution.exposures]: no exposure health")
    tz = spec.timezone
    E = _table(src.table, src.unit, src.timestamp, src.arm, src.model, src.score).alias("e")
    ts = E.c[src.timestamp]
    by_model = [E.c[src.model].label("model_value")] if batch else []
    group = [E.c[src.model]] if batch else []

    def in_days(a: dt.date, b: dt.date, suffix: str) -> list[ColumnElement]:
        return [
            ts >= ops.instant(f"from_{suffix}", local_midnight_utc(a, tz)),
            ts < ops.instant(f"to_{suffix}", local_midnight_utc(b + dt.timedelta(days=1), tz)),
            *_model_filter(src, E, spec, batch),
        ]

    day = ops.local_day(ts, tz).label("day")
    daily = (
        sa.select(*by_model, day, E.c[src.arm].label("arm"), sa.func.count().label("n_exposures"),
                  sa.func.count(sa.distinct(E.c[src.unit])).label("n_units"))
        .where(*in_days(daily_start or start, end, "daily"))
        .group_by(*group, day, E.c[src.arm])
        .order_by(*group, day, E.c[src.arm])
    )
    hist = edges = None
    if src.score is not None:
        score = ops.to_double(E.c[src.score])
        if bin_edges is not None:
            hist = _histogram(E, src, batch, score, day, bin_edges, in_days(start, end, "hist"))
        if reference is not None:
            qs = [float(q) for q in quantiles]
            if not qs or any(not 0.0 < q < 1.0 for q in qs):
                raise ParameterError(f"quantiles must lie strictly between 0 and 1 (got {qs})")
            cols = [expr.label(f"q{i}") for i, expr in enumerate(ops.quantiles(score, qs))]
            edges = sa.select(*by_model, *cols).where(*in_days(reference[0], reference[1], "ref"),
                                                      E.c[src.score].is_not(None))
            if batch:
                edges = edges.group_by(*group).order_by(*group)
    fresh = _freshness(spec, src, E, ts, ops, batch)
    return HealthQueries(daily, hist, edges, fresh)


def _check_edges(edges: Sequence[float]) -> list[float]:
    edges_list = [float(e) for e in edges]
    if not edges_list or any(b <= a for a, b in zip(edges_list, edges_list[1:])):
        raise ParameterError(f"bin_edges must be non-empty and strictly increasing (got {edges_list})")
    return edges_list


def _histogram(E, src: ExposureSource, batch: list[ModelSpec] | None, score, day,
               bin_edges: Sequence[float] | Mapping[str, Sequence[float]], where: list[ColumnElement]) -> Select | None:
    """Per day, the number of exposures per bin (bin = number of edges ≤ score, NULL score → NULL).

    A batch joins its rows to a small derived table of each model's edges (one row per model,
    one column per edge, missing edges NULL so that they never count): every model keeps its
    own edges in one scan. ``where`` filters the rows (days and, for a batch, its models)."""
    if not batch:
        edges_list = _check_edges(bin_edges)  # type: ignore[arg-type]
        parts = [sa.case((score >= sa.bindparam(f"edge_{i}", e, type_=sa.Float), 1), else_=0)
                 for i, e in enumerate(edges_list)]
        bin_ = sa.case((score.is_(None), sa.null()), else_=sum(parts[1:], parts[0])).label("bin")
        return sa.select(day, bin_, sa.func.count().label("n")).where(*where).group_by(day, bin_).order_by(day, bin_)
    per_model = {model_value(s): _check_edges(bin_edges[model_value(s)])  # type: ignore[index]
                 for s in batch if bin_edges.get(model_value(s)) is not None}  # type: ignore[union-attr]
    if not per_model:
        return None
    width = max(len(e) for e in per_model.values())
    rows = [sa.select(sa.bindparam(f"hm_{i}", value, type_=sa.String).label("model_value"),
                      *[(sa.bindparam(f"he_{i}_{j}", edges[j], type_=sa.Float) if j < len(edges)
                         else sa.cast(sa.null(), sa.Float)).label(f"e{j}") for j in range(width)])
            for i, (value, edges) in enumerate(per_model.items())]
    table = (rows[0] if len(rows) == 1 else sa.union_all(*rows)).subquery("model_edges")
    parts = [sa.case((score >= table.c[f"e{j}"], 1), else_=0) for j in range(width)]
    bin_ = sa.case((score.is_(None), sa.null()), else_=sum(parts[1:], parts[0])).label("bin")
    model = E.c[src.model]
    return (sa.select(model.label("model_value"), day, bin_, sa.func.count().label("n"))
            .select_from(E.join(table, model == table.c.model_value)).where(*where)
            .group_by(model, day, bin_).order_by(model, day, bin_))


def _freshness(spec: ModelSpec, src: ExposureSource, E, ts, ops: DialectOps,
               batch: list[ModelSpec] | None = None) -> Select:
    out = spec.attribution.outcomes
    max_o = sa.null()
    if out is not None:
        O = _table(out.table, out.timestamp).alias("o")
        max_o = sa.select(sa.func.max(O.c[out.timestamp]))
        if out.where:
            max_o = max_o.where(ops.predicate(out.where))
        max_o = max_o.scalar_subquery()
    if batch:  # the outcomes' newest event is the same for every model of the batch (same table and filter)
        model = E.c[src.model]
        return (sa.select(model.label("model_value"), sa.func.max(ts).label("max_exposure_ts"),
                          max_o.label("max_outcome_ts")).where(*_model_filter(src, E, spec, batch))
                .group_by(model).order_by(model))
    max_e = sa.select(sa.func.max(ts)).where(*_model_filter(src, E, spec)).scalar_subquery()
    return sa.select(max_e.label("max_exposure_ts"), max_o.label("max_outcome_ts"))


def refuse_custom_sql(sql: str) -> None:  # pragma: no cover - documented entry point
    """Custom SQL sources are parsed with sqlglot and refused unless a single read-only SELECT."""
    from valuetrack.sqlsafety import check_select

    check_select(sql)


__all__ = [
    "AB_COLUMNS", "AbWindow", "DialectOps", "HealthQueries", "UnsafeSQL", "ab_aggregate", "ab_window",
    "as_of_cutoff", "billed_cost_query", "health_queries", "local_midnight_utc", "mask_columns", "membership_changes",
    "membership_masks", "membership_query", "panel_query",
    "series_query", "split_crossovers",
]


# ------------------------------------------------------------------------------------------------
# overlap: units served by several models


def _scan_key(spec: ModelSpec) -> tuple | None:
    """Models with equal keys read their served units from one scan of a shared exposures table
    (None: this one is read on its own). The same columns as the batched A/B pulls (D44); the
    treatment label and the time zone may differ between the models."""
    ex = spec.attribution.exposures
    if ex is None or ex.model is None:
        return None
    return (spec.connection, ex.table, ex.unit, ex.timestamp, ex.arm, ex.model)


_ONE, _ZERO = sa.literal_column("1", sa.Integer), sa.literal_column("0", sa.Integer)  # flags' values


def _served_units(specs: Sequence[ModelSpec], as_of: dt.date, ops: DialectOps, tag: Any, *,
                  flags: Mapping[str, dt.date] | None = None, since: dt.date | None = None,
                  units: Select | None = None) -> Select:
    """Distinct (*tag(i), unit) (``tag(i)``: model i's labelled integer columns) for the treatment arm of every model ``i`` of ``specs`` before the
    end of ``as_of`` (each model's own time zone).

    ``since``: only exposures from the start of that day on (each model's zone). ``units``: only
    the units that this one-column query returns. ``flags`` ``{label: day}``: one more column per
    label, 1 when the model served the unit before the end of that day (its zone), else 0.

    Models sharing an exposures table through its model column (:func:`_scan_key`) are read by
    one scan: ``model IN (…)`` joined to a small derived table of (model value, treatment label,
    tag, zone number), one row per model, so that two models reading the same model value each
    get its rows; when their time zones differ, each row's zone number picks the model's instants.
    Any other model is read on its own; the parts are put together with UNION ALL."""
    shared: dict[tuple, list[int]] = {}
    alone: list[int] = []
    for i, spec in enumerate(specs):
        _require_ab(spec)
        key = _scan_key(spec)
        if key is None:
            alone.append(i)
        else:
            shared.setdefault(key, []).append(i)
    bounds = {"cutoff": (as_of, operator.lt)}
    if since is not None:
        bounds["since"] = (since - dt.timedelta(days=1), operator.ge)
    parts: list[Select] = []
    for scan, members in enumerate(shared.values()):
        if len(members) == 1:
            alone.append(members[0])
            continue
        parts.append(_one_scan(specs, members, ops, tag, scan, bounds, flags or {}, units))
    for i in sorted(alone):
        spec = specs[i]
        ex = spec.attribution.exposures
        t = _table(ex.table, ex.unit, ex.timestamp, ex.arm, ex.model).alias(f"e{i}")
        ts = t.c[ex.timestamp]
        cond = [t.c[ex.arm] == sa.bindparam(f"arm_{i}", ex.treatment, type_=sa.String)]
        cond += [compare(ts, ops.instant(f"{name}_{i}", as_of_cutoff(day, spec.timezone)))
                 for name, (day, compare) in bounds.items()]
        if ex.model is not None:
            cond.append(t.c[ex.model] == sa.bindparam(f"model_{i}", model_value(spec), type_=sa.String))
        if units is not None:
            cond.append(t.c[ex.unit].in_(units))
        if not flags:
            parts.append(sa.select(*tag(i), t.c[ex.unit].label("unit")).where(*cond).distinct())
            continue
        marks = [sa.func.max(sa.case((ts < ops.instant(f"{label}_{i}", as_of_cutoff(day, spec.timezone)), _ONE), else_=_ZERO))
                 .label(label) for label, day in flags.items()]
        # the tag's columns are constants here: grouped by the unit alone (a constant in GROUP BY
        # would be read as a column position by some warehouses)
        parts.append(sa.select(*tag(i), t.c[ex.unit].label("unit"), *marks).where(*cond).group_by(t.c[ex.unit]))
    return parts[0] if len(parts) == 1 else sa.union_all(*parts)


def _one_scan(specs: Sequence[ModelSpec], members: Sequence[int], ops: DialectOps, tag: Any, scan: int,
              bounds: Mapping[str, tuple[dt.date, Any]], flags: Mapping[str, dt.date], units: Select | None) -> Select:
    """Distinct (*tag(i), unit) for the models ``members`` of ``specs``, which share an exposures
    table and its columns (:func:`_scan_key`), from one scan of it (:func:`_served_units`)."""
    ex = specs[members[0]].attribution.exposures
    zones = list(dict.fromkeys(specs[i].timezone for i in members))
    values = list(dict.fromkeys(model_value(specs[i]) for i in members))
    arms = list(dict.fromkeys(specs[i].attribution.exposures.treatment for i in members))
    p = f"s{scan}_"  # parameter names of this scan
    rows = [sa.select(sa.bindparam(f"{p}model_{i}", model_value(specs[i]), type_=sa.String).label("model_value"),
                      sa.bindparam(f"{p}arm_{i}", specs[i].attribution.exposures.treatment, type_=sa.String).label("arm"),
                      *tag(i),
                      # an int we computed, never user text
                      sa.literal_column(str(zones.index(specs[i].timezone)), sa.Integer).label("zone"))
            for i in members]
    m = sa.union_all(*rows).subquery(f"models{scan}")
    t = _table(ex.table, ex.unit, ex.timestamp, ex.arm, ex.model).alias(f"shared{scan}")
    ts = t.c[ex.timestamp]

    def per_zone(name: str, day: dt.date, compare: Any) -> ColumnElement:
        """``compare(ts, the instant of day's end)`` in each row's zone (a comparison with a bound
        instant in each branch, as everywhere else: a CASE of instants is a string to some drivers)."""
        if len(zones) == 1:
            return compare(ts, ops.instant(f"{p}{name}", as_of_cutoff(day, zones[0])))
        return sa.or_(*[sa.and_(m.c.zone == sa.literal_column(str(k), sa.Integer),
                                compare(ts, ops.instant(f"{p}{name}_{k}", as_of_cutoff(day, z))))
                        for k, z in enumerate(zones)])

    cond = []
    for name, (day, compare) in bounds.items():
        if len(zones) > 1:  # a plain range for the warehouse to prune on, then each model's own
            instants = [as_of_cutoff(day, z) for z in zones]
            edge = max(instants) if compare is operator.lt else min(instants)
            cond.append(compare(ts, ops.instant(f"{p}{name}", edge)))
        cond.append(per_zone(name, day, compare))
    if units is not None:
        cond.append(t.c[ex.unit].in_(units))
    query = (sa.select(*[m.c[c.name] for c in tag(members[0])], t.c[ex.unit].label("unit"),
                       *[sa.func.max(sa.case((per_zone(label, day, operator.lt), _ONE), else_=_ZERO)).label(label)
                         for label, day in flags.items()])
             .select_from(t.join(m, sa.and_(t.c[ex.model] == m.c.model_value, t.c[ex.arm] == m.c.arm)))
             .where(t.c[ex.model].in_([sa.bindparam(f"{p}in_{j}", v, type_=sa.String) for j, v in enumerate(values)]),
                    t.c[ex.arm].in_([sa.bindparam(f"{p}treatment_{j}", a, type_=sa.String) for j, a in enumerate(arms)]),
                    *cond))
    if flags:
        return query.group_by(*[m.c[c.name] for c in tag(members[0])], t.c[ex.unit])
    return query.distinct()


MASK_BITS = 52
"""Models per mask word of :func:`membership_query`: a word's sum of distinct bits stays below 2**52,
exact in a 64-bit integer and even where a driver passes it through a 64-bit float (the Snowflake
stand-in sums integers that way)."""


def mask_columns(n_models: int) -> list[str]:
    """The mask columns of :func:`membership_query` for ``n_models`` models: ``mask`` (models 0–51),
    then ``mask_1`` (52–103), ``mask_2``, …"""
    return ["mask" if w == 0 else f"mask_{w}" for w in range(-(-n_models // MASK_BITS))]


def membership_masks(frame: pd.DataFrame, n_models: int, prefix: str = "") -> list[int]:
    """Each row's mask as one Python int (model ``i`` is bit ``2**i``), from its mask words
    (``prefix``: ``"settled_"`` or ``"base_"`` for those masks of :func:`membership_query`)."""
    words = [frame[prefix + c] for c in mask_columns(n_models)]
    return [sum(int(w) << (MASK_BITS * k) for k, w in enumerate(row)) for row in zip(*words)]


def membership_changes(frame: pd.DataFrame, n_models: int) -> list[tuple[int, int, int, int]]:
    """The rows of :func:`membership_query` asked with ``settled`` (and ``since``) as
    :func:`valuetrack.value.overlap.advance_counts` takes them: ``(mask, base mask, settled mask,
    units)``, the base mask 0 when the query had no ``since`` (a whole-history count)."""
    base = membership_masks(frame, n_models, "base_") if "base_mask" in frame.columns else [0] * len(frame)
    return list(zip(membership_masks(frame, n_models), base, membership_masks(frame, n_models, "settled_"),
                    map(int, frame["units"])))


def membership_query(specs: Sequence[ModelSpec], *, as_of: dt.date, settled: dt.date | None = None,
                     since: dt.date | None = None, dialect_ops: DialectOps | None = None,
                     limit: int | None = None) -> Select:
    """Units per membership pattern: how many units the treatment arms of exactly each set of
    ``specs`` served up to ``as_of``.

    One GROUP BY on a bitmask: model ``i`` of ``specs`` is bit ``2**(i % 52)`` of mask word
    ``i // 52`` (:func:`mask_columns`; :func:`membership_masks` puts the words together); each
    unit's mask is the sum of the distinct bits of the models that served it (a bitwise OR, since
    each model counts once per unit); rows ``(mask[, mask_1, …], units)``, one per pattern that
    occurs, single-model patterns included (they give each model's own served units). ``limit``:
    at most that many rows (any of them), so that a caller can tell that there are more patterns
    than it accepts without reading them all. The models must read the same exposures table with
    the same unit column (:func:`valuetrack.value.overlap.kpi_groups`).

    ``settled``: each row also has the units' masks over the exposures before that day
    (``settled_mask``, …; 0: none yet). ``since``: only the units served from that day on (one
    more scan, of those days only), each row with their masks over the exposures before it
    (``base_mask``, …): the changes to counts made before ``since`` (D64).
    """
    ops = dialect_ops or DialectOps()
    if not specs:
        raise ParameterError("membership_query: no models")
    words = mask_columns(len(specs))

    def bits(i: int) -> list[ColumnElement]:  # ints we computed, never user text
        return [sa.literal_column(str(1 << i % MASK_BITS if w == i // MASK_BITS else 0), sa.BigInteger)
                .label(name.replace("mask", "bit")) for w, name in enumerate(words)]

    # the earlier masks asked for: each unit's models that served it before the start of that day
    earlier = {prefix: day for prefix, day in (("base", since), ("settled", settled)) if day is not None}
    recent = None
    if since is not None:
        recent = sa.select(_served_units(specs, as_of, ops, lambda i: [], since=since).cte("vt_recent").c.unit)
    served = _served_units(specs, as_of, ops, bits, units=recent,
                           flags={f"before_{p}": day - dt.timedelta(days=1) for p, day in earlier.items()}).subquery("served")

    def masks(prefix: str, flag: str | None) -> list[ColumnElement]:
        bit = [served.c[w.replace("mask", "bit")] for w in words]
        return [sa.cast(sa.func.sum(b * served.c[flag] if flag else b), sa.BigInteger).label(prefix + w)
                for b, w in zip(bit, words)]

    per_unit = (sa.select(served.c.unit, *masks("", None), *[c for p in earlier for c in masks(f"{p}_", f"before_{p}")])
                .group_by(served.c.unit).subquery("per_unit"))
    columns = [c for c in per_unit.c if c.name != "unit"]
    query = sa.select(*columns, sa.func.count().label("units")).group_by(*columns)
    return query if limit is None else query.limit(sa.literal_column(str(int(limit)), sa.Integer))


def shared_units_query(specs: Sequence[ModelSpec], *, as_of: dt.date, dialect_ops: DialectOps | None = None) -> Select:
    """Units served by both of every pair of ``specs`` (their treatment arms, up to ``as_of``):
    the fallback for a group too large for :func:`membership_query`.

    One query for the group: rows ``(model_a, model_b, shared)`` with ``model_a < model_b`` (the
    models' positions in ``specs``), pairs with no shared unit absent.
    """
    ops = dialect_ops or DialectOps()
    units = _served_units(specs, as_of, ops, lambda i: [sa.literal_column(str(i), sa.Integer).label("m")]).subquery("served")
    a, b = units.alias("a"), units.alias("b")
    return (sa.select(a.c.m.label("model_a"), b.c.m.label("model_b"), sa.func.count().label("shared"))
            .select_from(a.join(b, sa.and_(a.c.unit == b.c.unit, a.c.m < b.c.m)))
            .group_by(a.c.m, b.c.m))


# ------------------------------------------------------------------------------------------------
# a classifier's decisions and labels

DECISION_BINS = 100
"""Score bins of the decisions aggregate (width 0.01): other thresholds are valued on this grid."""
DECISION_COLUMNS = ("day", "bin", "decision", "n", "sum_s", "sum_s2", "n_labelled", "n_positive",
                    "sum_s_labelled", "sum_s2_labelled")


def decisions_query(spec: ModelSpec, start: dt.date, end: dt.date, *, as_of: dt.date,
                    dialect_ops: DialectOps | None = None) -> Select:
    """Sufficient statistics of a classifier's decisions, per local day of prediction × score bin
    × decision, for ``start <= day <= end``.

    One row per prediction id (repeats of an id count once: its first time, largest score and
    decision, its label and first label time). A label counts only if it was known before the end
    of ``as_of`` (so a report for an earlier date reads the same later). Columns: ``day``, ``bin``
    (0 … 99 = ⌊score·100⌋, −1 without a score), ``decision`` (1/0: the decision column, or score ≥
    threshold), ``n``, ``sum_s``, ``sum_s2`` (scores), ``n_labelled``, ``n_positive`` (labelled
    class 1), ``sum_s_labelled``, ``sum_s2_labelled``.
    """
    ops = dialect_ops or DialectOps()
    d = spec.decisions
    if d is None:
        raise ParameterError(f"model {spec.name!r} has no [decisions]")
    if end < start:
        raise ParameterError(f"end {end} is before start {start}")
    tz = spec.timezone
    P = _table(d.table, d.id, d.timestamp, d.label, d.label_timestamp, d.score, d.decision).alias("p")
    ts = P.c[d.timestamp]
    score = ops.to_double(P.c[d.score]) if d.score else sa.null()
    per_id = (
        sa.select(sa.func.min(ts).label("ts"), sa.func.max(score).label("score"),
                  sa.func.max(ops.to_double(P.c[d.decision])).label("decision") if d.decision
                  else sa.null().label("decision"),
                  sa.func.max(ops.to_double(P.c[d.label])).label("label"),
                  sa.func.min(P.c[d.label_timestamp]).label("label_ts"))
        .where(ts >= ops.instant("from_day", local_midnight_utc(start, tz)),
               ts < ops.instant("to_day", local_midnight_utc(end + dt.timedelta(days=1), tz)))
        .group_by(P.c[d.id])
        .subquery("per_id")
    )
    s = per_id.c.score
    bin_ = sa.case((s.is_(None), -1), (s >= 1.0, DECISION_BINS - 1), (s < 0.0, 0),
                   else_=sa.cast(sa.func.floor(s * DECISION_BINS), sa.Integer)).label("bin")
    if d.decision:
        decided = sa.case((per_id.c.decision == 1, 1), else_=0)
    else:
        decided = sa.case((s >= sa.bindparam("threshold", d.threshold, type_=sa.Float), 1), else_=0)
    decided = decided.label("decision")
    known = sa.and_(per_id.c.label.is_not(None),
                    per_id.c.label_ts < ops.instant("cutoff", as_of_cutoff(as_of, tz)))
    # one row per case with its keys computed, then a plain GROUP BY on columns (some engines
    # refuse to group by an expression repeated in the select list)
    cases = sa.select(
        ops.local_day(per_id.c.ts, tz).label("day"), bin_, decided, s.label("s"),
        sa.case((known, 1), else_=0).label("known"),
        sa.case((sa.and_(known, per_id.c.label == 1), 1), else_=0).label("positive"),
    ).subquery("cases")
    c = cases.c
    labelled_s = sa.case((c.known == 1, c.s), else_=None)
    return (
        sa.select(c.day, c.bin, c.decision, sa.func.count().label("n"), sa.func.sum(c.s).label("sum_s"),
                  sa.func.sum(c.s * c.s).label("sum_s2"), sa.func.sum(c.known).label("n_labelled"),
                  sa.func.sum(c.positive).label("n_positive"), sa.func.sum(labelled_s).label("sum_s_labelled"),
                  sa.func.sum(labelled_s * c.s).label("sum_s2_labelled"))
        .group_by(c.day, c.bin, c.decision)
        .order_by(c.day, c.bin, c.decision)
    )
