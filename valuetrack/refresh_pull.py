"""Pulling a model's aggregates from its warehouse: pure reading, no app-database writes.

:func:`pull_model` runs the model's queries (A/B aggregate, time series, health) through a
connector and returns a frozen :class:`PulledAggregates`; the refresh layer hands it to
:class:`valuetrack.store.aggregates.AggregateStore`, which writes it in one transaction.

Incremental refresh: the store remembers, per model, the last cohort day that was already mature
(``mature_through``) at the last successful refresh. The next pull passes
``since_day = mature_through + 1``: every cohort day before it is final and is not read again,
every cohort still immature last time is re-read. A cohort day is mature once
``as_of >= day + window_days + outcome_lag_days``.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from valuetrack.connectors.base import Connector, QueryResult, utc_naive
from valuetrack.errors import ParameterError, ValidationError
from valuetrack.queries import (
    DECISION_COLUMNS,
    ab_aggregate,
    billed_cost_query,
    decisions_query,
    health_queries,
    model_value,
    panel_query,
    series_batch_columns,
    series_batch_key,
    series_batch_query,
    series_query,
    split_crossovers,
)
from valuetrack.registry.spec import ModelSpec, guardrail_view

HISTORY_START = dt.date(2000, 1, 1)
"""First cohort day read by a model's first (full) refresh."""
HEALTH_DAYS = 90
"""Days of score-histogram history read when no ``since_day`` narrows it. The daily exposure
counts are read over the whole history instead: they are the predictions that the cost per 1,000
predictions is charged on, in every month (docs/decisions.md D53)."""
REFERENCE_DAYS = 28
"""Length of the default reference window for score-histogram edges."""

_SUM_COLUMNS = ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")


@dataclass(frozen=True)
class PulledAggregates:
    """Everything one refresh pulled for one model.

    Attributes:
        model: the model's name.
        as_of: the as-of date of the pull (nothing after this local day was read).
        since_day: first cohort/series day read (earlier days were final and kept).
        exposures_since: first day of the daily exposure counts read: ``HISTORY_START`` (the whole
            history) on a first refresh and when the stored counts do not reach back to it (D53),
            else ``since_day``.
        mature_through: last mature cohort day (``as_of - window_days - outcome_lag_days``).
        ab: per day × arm [× segment]: n, n_units, sum_y, sum_y2, sum_x, sum_x2, sum_xy, mature;
            empty (with these columns) for a model without a holdout.
        crossovers: per day [× segment]: n_crossover.
        series: day, value, one column per control series; None without a series.
        health: ``daily_exposures``, ``score_histogram``, ``freshness`` frames (when defined).
        bin_edges: the histogram edges used (given, or from the reference window), or None.
        costs: one entry per query: purpose, elapsed_s, attempts, query_id and the warehouse cost.
        decisions: a classifier's decisions aggregate (see :func:`valuetrack.queries.decisions_query`)
            from ``decisions_since``, or None without ``[decisions]``.
        decisions_since: first prediction day read (labels arrive late: the last ``label_lag_days``
            are always re-read).
        guardrails: per guardrail of ``[[models.guardrails]]``, its A/B aggregate (see
            :class:`PulledGuardrail`).
        billed: the model's bill summed per UTC day and currency (``day, currency, amount``), the
            whole bill re-read at every refresh (bills are revised after the fact), or None
            without ``[cost_source]``.
    """

    model: str
    as_of: dt.date
    since_day: dt.date
    mature_through: dt.date
    ab: pd.DataFrame
    crossovers: pd.DataFrame
    series: pd.DataFrame | None
    health: Mapping[str, pd.DataFrame]
    bin_edges: tuple[float, ...] | None
    costs: tuple[Mapping[str, Any], ...] = field(default=())
    decisions: pd.DataFrame | None = None
    decisions_since: dt.date | None = None
    guardrails: Mapping[str, PulledGuardrail] = field(default_factory=dict)
    billed: pd.DataFrame | None = None
    exposures_since: dt.date | None = None
    definition: str | None = None
    """The digest of the model's queries it was read with (:func:`model_definition`)."""

    @property
    def exposures_whole(self) -> bool:
        """Whether the daily exposure counts were read over the whole history."""
        return self.exposures_since == HISTORY_START

    @property
    def total_cost(self) -> dict[str, Any]:
        """Costs summed over the queries (numeric fields only), plus the query count."""
        total: dict[str, Any] = {"queries": len(self.costs)}
        for c in self.costs:
            for k, v in {"elapsed_s": c.get("elapsed_s"), **dict(c.get("cost", {}))}.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    total[k] = total.get(k, 0) + v
        return total

    @property
    def rows(self) -> int:
        return len(self.ab) + len(self.crossovers) + (0 if self.series is None else len(self.series)) + sum(
            len(f) for f in self.health.values()) + (0 if self.decisions is None else len(self.decisions)) + (
            0 if self.billed is None else len(self.billed)) + sum(len(g.ab) for g in self.guardrails.values())


@dataclass(frozen=True)
class PulledGuardrail:
    """One guardrail's A/B aggregate: the model's query on the guardrail's outcomes (no segments).

    Attributes:
        since_day: first cohort day read (the model's, or the whole history when the guardrail is
            new or its definition changed).
        definition: digest of what the query reads (:func:`guardrail_definition`).
        ab: per day × arm: n, n_units, the sums and ``mature``.
    """

    since_day: dt.date
    definition: str
    ab: pd.DataFrame


def _digest(what: Any) -> str:
    """32 hex digits of a sha256 over ``what`` as canonical JSON."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:32]


def guardrail_definition(spec: ModelSpec, guardrail: Any) -> str:
    """A digest of everything a guardrail's aggregate depends on: a change re-reads its history."""
    view = guardrail_view(spec, guardrail).to_dict()
    return _digest({"timezone": view["timezone"], "aggregation": view["kpi"]["aggregation"],
                    "attribution": {k: v for k, v in view["attribution"].items() if k not in ("method", "treatment_share")}})


def model_definition(spec: ModelSpec) -> str:
    """A digest of everything the model's stored aggregates depend on (what its warehouse queries
    read: connection, time zone, KPI aggregation, exposures, outcomes, windows, series, decisions'
    columns): when it changes, the next refresh re-reads the whole history (D66) rather than adding
    new days read one way to final days read another. Money and the valuation's own settings
    (costs, value per unit, thresholds, method, treatment share, decision threshold) are not in it."""
    d = spec.to_dict()
    decisions = {k: v for k, v in (d.get("decisions") or {}).items() if k not in ("threshold", "label_lag_days")}
    return _digest({"connection": d["connection"], "timezone": d["timezone"], "aggregation": d["kpi"]["aggregation"],
                    "attribution": {k: v for k, v in d["attribution"].items() if k not in ("method", "treatment_share")},
                    "decisions": decisions})


def mature_through(spec: ModelSpec, as_of: dt.date) -> dt.date:
    """The last cohort day that is mature at ``as_of``."""
    a = spec.attribution
    return as_of - dt.timedelta(days=a.window_days + a.outcome_lag_days)


def pull_model(
    spec: ModelSpec,
    connector: Connector,
    *,
    as_of: dt.date,
    since_day: dt.date | None = None,
    bin_edges: Sequence[float] | None = None,
    reference: tuple[dt.date, dt.date] | None = None,
    timeout_s: float | None = None,
    guardrail_definitions: Mapping[str, str] | None = None,
    prefetched: Mapping[str, tuple[pd.DataFrame, dict[str, Any]]] | None = None,
    whole_exposures: bool = False,
) -> PulledAggregates:
    """Run the model's aggregate queries on its warehouse and return the results.

    Args:
        spec: the model.
        connector: the warehouse connector of ``spec.connection``.
        as_of: nothing after this local day (model time zone) is read.
        since_day: first cohort day to (re-)read; None reads the whole history (first refresh).
        bin_edges: fixed score-histogram edges (stored from an earlier refresh); when None and the
            model has a score, edges are computed on ``reference`` (default: the 28 days before
            ``since_day``, or the first 28 days of the health window).
        reference: the reference window (first, last day) for the edges.
        timeout_s: per-query timeout (the connection's default when None).
        guardrail_definitions: the definition digest stored for each guardrail; a guardrail whose
            digest differs (or is absent) is read from the start of the history.
        prefetched: results already read for this model by a batch query (:func:`pull_models`),
            by purpose, with their cost entry; those queries are not run again.
        whole_exposures: read the daily exposure counts over the whole history even though
            ``since_day`` is given (the stored counts do not reach back: an app database whose
            first refresh read only the last HEALTH_DAYS of them, before D53).

    Raises:
        WarehouseError: a query failed after its retries (nothing is returned; the caller keeps
            the previously stored aggregates).
    """
    if since_day is not None and since_day > as_of:
        raise ParameterError(f"since_day {since_day} is after as_of {as_of}")
    start = since_day or HISTORY_START
    ops = connector.ops
    costs: list[dict[str, Any]] = []

    def batched(purpose: str) -> bool:  # a batch query read it, and normalised it (_prefetch)
        return bool(prefetched) and purpose in prefetched

    def arms_and_crossovers(frame: pd.DataFrame, purpose: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """An A/B aggregate's (per-arm rows, crossover rows): split by the batch query (_prefetch), or here."""
        if batched(purpose):
            return frame, prefetched[f"{purpose}:crossovers"][0]
        return split_crossovers(normalize_ab(frame))

    def run(build: Any, purpose: str) -> pd.DataFrame:
        """The result of the statement ``build()`` makes (built only when no batch query read it)."""
        if prefetched and purpose in prefetched:
            frame, cost = prefetched[purpose]
            costs.append(cost)
            return frame
        res: QueryResult = connector.run(build(), model=spec.name, purpose=purpose, timeout_s=timeout_s)
        costs.append({"purpose": purpose, "elapsed_s": round(res.elapsed_s, 6), "attempts": res.attempts,
                      "query_id": res.query_id, "cost": dict(res.cost)})
        return res.frame

    mt = mature_through(spec, as_of)
    seg = spec.attribution.exposures.segment if spec.attribution.exposures else None
    ab_cols = ["day", "arm"] + (["segment"] if seg else []) + ["n", "n_units", *_SUM_COLUMNS, "mature"]
    if spec.has_holdout:
        frame = run(lambda: ab_aggregate(spec, cohort_start=start, cohort_end=as_of, as_of=as_of, dialect_ops=ops),
                    "ab")
        ab, xo = arms_and_crossovers(frame, "ab")
        ab["mature"] = [d <= mt for d in ab["day"]]
        ab = ab if list(ab.columns) == ab_cols else ab[ab_cols]
    else:
        ab = pd.DataFrame(columns=ab_cols)
        xo = pd.DataFrame(columns=["day"] + (["segment"] if seg else []) + ["n_crossover"])

    guardrails: dict[str, PulledGuardrail] = {}
    if spec.has_holdout:
        stored = guardrail_definitions or {}
        for g in spec.guardrails:  # the model's A/B query on the guardrail's outcomes (batched by pull_models)
            definition = guardrail_definition(spec, g)
            g_start = start if stored.get(g.name) == definition else HISTORY_START
            frame = run(lambda: ab_aggregate(  # noqa: B023 - called at once
                guardrail_view(spec, g), cohort_start=g_start, cohort_end=as_of, as_of=as_of, dialect_ops=ops),
                f"guardrail-{g.name}")
            frame, _ = arms_and_crossovers(frame, f"guardrail-{g.name}")
            frame["mature"] = [d <= mt for d in frame["day"]]
            cols = ["day", "arm", "n", "n_units", *_SUM_COLUMNS, "mature"]
            guardrails[g.name] = PulledGuardrail(g_start, definition, frame[cols].reset_index(drop=True))

    series = None
    if spec.attribution.series is not None:
        series = normalize_days(run(lambda: series_query(spec, start, as_of, dialect_ops=ops), "series"))
    if spec.attribution.panel is not None:
        panel = panel_wide(normalize_days(run(lambda: panel_query(spec, start, as_of, dialect_ops=ops), "panel")))
        series = panel if series is None else series.merge(panel, on="day", how="outer").sort_values("day")

    health: dict[str, pd.DataFrame] = {}
    edges: tuple[float, ...] | None = tuple(bin_edges) if bin_edges is not None else None
    exposures_since = None
    if spec.attribution.exposures is not None:
        h_start = since_day or (as_of - dt.timedelta(days=HEALTH_DAYS - 1))
        exposures_since = exposures_start(since_day, whole_exposures)
        if edges is None and spec.attribution.exposures.score is not None:
            ref = reference or _default_reference(h_start)
            edges = edges_from(run(lambda: health_queries(spec, start=h_start, end=as_of, reference=ref,
                                                          dialect_ops=ops).reference_edges, "health-edges"))
        hq = functools.cache(lambda: health_queries(spec, start=h_start, end=as_of, bin_edges=edges,
                                                    daily_start=exposures_since, dialect_ops=ops))
        frame = run(lambda: hq().daily_exposures, "health-daily")
        health["daily_exposures"] = frame if batched("health-daily") else normalize_days(frame)
        if batched("health-histogram") or hq().score_histogram is not None:
            frame = run(lambda: hq().score_histogram, "health-histogram")
            health["score_histogram"] = frame if batched("health-histogram") else normalize_days(frame)
        health["freshness"] = _utc_naive(run(lambda: hq().freshness, "health-freshness"))
    decisions = decisions_since = None
    if spec.decisions is not None:
        decisions_since = min(start, as_of - dt.timedelta(days=spec.decisions.label_lag_days))
        decisions = normalize_decisions(run(lambda: decisions_query(spec, decisions_since, as_of, as_of=as_of,
                                                                    dialect_ops=ops), "decisions"))
    billed = None
    if spec.cost_source is not None:
        # the whole bill every time: a correction may land on any earlier day (even a final month)
        first = spec.interventions[0].start if spec.interventions else HISTORY_START
        billed = normalize_billed(run(lambda: billed_cost_query(spec, min(first, as_of), as_of, dialect_ops=ops),
                                      "billing"), spec.cost_source.currency)
    return PulledAggregates(
        model=spec.name, as_of=as_of, since_day=start, mature_through=mt, ab=ab, crossovers=xo,
        series=series, health=health, bin_edges=edges, costs=tuple(costs), decisions=decisions,
        decisions_since=decisions_since, billed=billed, guardrails=guardrails, exposures_since=exposures_since,
        definition=model_definition(spec),
    )


def exposures_start(since_day: dt.date | None, whole: bool = False) -> dt.date:
    """First day of the daily exposure counts a pull reads: the whole history on a first refresh
    (``since_day`` None) or when asked (``whole``), else ``since_day``."""
    return HISTORY_START if since_day is None or whole else since_day


def pull_models(
    specs: Sequence[ModelSpec],
    connector: Connector,
    *,
    as_of: dt.date,
    since_days: Mapping[str, dt.date | None],
    bin_edges: Mapping[str, Sequence[float] | None],
    timeout_s: float | None = None,
    guardrail_definitions: Mapping[str, Mapping[str, str]] | None = None,
    whole_exposures: Collection[str] = (),
    on_pulled: Callable[[str, PulledAggregates | Exception], None] | None = None,
) -> dict[str, PulledAggregates | Exception]:
    """Pull several models of one connection, with one query per shared exposures or series table.

    Models that read the same exposures table (through its model column) with the same query
    shape (:func:`valuetrack.queries.ab_batch_key`, :func:`~valuetrack.queries.health_batch_key`)
    and the same first day are read by one query grouped by model, for the A/B aggregate and each
    exposure-health query; the rest run per model (:func:`pull_model`). Each model's cost entry
    for a shared query carries its share of the query's elapsed time and cost (``batch`` = how many
    models shared it, ``query_id`` the same for all). A shared query that fails is not fatal: its
    models are pulled one by one, so that one broken model fails alone.

    Guardrails (``[[models.guardrails]]``) batch the same way: the guardrails of the same name whose
    views of their models (registry.spec.guardrail_view) share a query shape and a first day are
    read by one query, and so are the daily series of the models reading one table and day column
    from the same first day (:func:`valuetrack.queries.series_batch_query`). ``guardrail_definitions``: per model, the digests stored for its guardrails.
    ``whole_exposures``: the models whose daily exposure counts are read over the whole history
    although they have a ``since_day`` (see :func:`pull_model`). ``on_pulled(name, result)`` is
    called for each model as soon as its pull is complete (in the order of ``specs``).

    Returns: per model name, its pull, or the exception that stopped it.
    """
    from valuetrack.queries import ab_batch_key, health_batch_key

    def start_of(spec: ModelSpec) -> dt.date:
        return since_days.get(spec.name) or HISTORY_START

    def health_start(spec: ModelSpec) -> dt.date:
        return since_days.get(spec.name) or (as_of - dt.timedelta(days=HEALTH_DAYS - 1))

    def daily_start(spec: ModelSpec) -> dt.date:
        return exposures_start(since_days.get(spec.name), spec.name in whole_exposures)

    prefetched: dict[str, dict[str, tuple[pd.DataFrame, dict[str, Any]]]] = {s.name: {} for s in specs}
    for key, group in _groups(specs, lambda s: (ab_batch_key(s), start_of(s))):
        _prefetch(group, prefetched, connector, "ab", timeout_s, lambda g: ab_aggregate(
            g, cohort_start=key[1], cohort_end=as_of, as_of=as_of, dialect_ops=connector.ops))
    for key, group in _groups(specs, lambda s: (health_batch_key(s), health_start(s), daily_start(s))):
        h_start = key[1]
        edges: dict[str, tuple[float, ...] | None] = {
            model_value(s): tuple(bin_edges[s.name]) if bin_edges.get(s.name) is not None else None for s in group}
        scored = group[0].attribution.exposures.score is not None
        need = [s for s in group if edges[model_value(s)] is None]
        if scored and len(need) > 1:
            ref = _default_reference(h_start)
            got = _prefetch(need, prefetched, connector, "health-edges", timeout_s, lambda g: health_queries(
                g, start=h_start, end=as_of, reference=ref, dialect_ops=connector.ops).reference_edges)
            for s in need if got else []:
                edges[model_value(s)] = edges_from(prefetched[s.name]["health-edges"][0])
        hq = health_queries(group, start=h_start, end=as_of, daily_start=key[2], dialect_ops=connector.ops,
                            bin_edges={k: v for k, v in edges.items() if v is not None} if scored else None)
        _prefetch(group, prefetched, connector, "health-daily", timeout_s, lambda g: hq.daily_exposures)
        if hq.score_histogram is not None:
            with_edges = [s for s in group if edges[model_value(s)] is not None]
            _prefetch(with_edges, prefetched, connector, "health-histogram", timeout_s, lambda g: hq.score_histogram)
        _prefetch(group, prefetched, connector, "health-freshness", timeout_s, lambda g: hq.freshness)
    by_table: dict[tuple, list[ModelSpec]] = {}
    for s in specs:  # the daily series of the models reading the same table: one query
        if series_batch_key(s) is not None:
            by_table.setdefault((series_batch_key(s), start_of(s)), []).append(s)
    for (_, start), group in by_table.items():
        if len(group) > 1:
            _prefetch_series(group, prefetched, connector, timeout_s, start, as_of)
    definitions = guardrail_definitions or {}
    views = []  # (view, guardrail name, first day): the model's A/B query on each guardrail's outcomes
    for s in specs:
        for g in s.guardrails if s.has_holdout else ():
            same = (definitions.get(s.name) or {}).get(g.name) == guardrail_definition(s, g)
            views.append((guardrail_view(s, g), g.name, start_of(s) if same else HISTORY_START))
    for key, group in _groups(views, lambda v: (ab_batch_key(v[0]), v[1], v[2])):
        _prefetch([v[0] for v in group], prefetched, connector, f"guardrail-{key[1]}", timeout_s, lambda g: ab_aggregate(
            g, cohort_start=key[2], cohort_end=as_of, as_of=as_of, dialect_ops=connector.ops))
    out: dict[str, PulledAggregates | Exception] = {}
    for spec in specs:
        try:
            out[spec.name] = pull_model(spec, connector, as_of=as_of, since_day=since_days.get(spec.name),
                                        bin_edges=bin_edges.get(spec.name), timeout_s=timeout_s,
                                        prefetched=prefetched[spec.name],
                                        guardrail_definitions=definitions.get(spec.name),
                                        whole_exposures=spec.name in whole_exposures)
        except Exception as exc:  # noqa: BLE001 - the caller records each model's failure
            out[spec.name] = exc
        if on_pulled is not None:
            on_pulled(spec.name, out[spec.name])
    return out


def _groups(specs: Sequence[Any], key: Any) -> list[tuple[Any, list[Any]]]:
    """Groups of two or more models (or guardrail views: (spec, name, day)) with the same (non-None)
    batch key. A query grouped by model reads each model value once, so a model reading the same rows
    as another one of the group (the same ``model_value``, e.g. a copy being compared) is left out of
    it and runs its own query."""
    groups: dict[Any, list[Any]] = {}
    seen: dict[Any, set[str]] = {}
    for s in specs:
        k = key(s)
        value = model_value(s[0] if isinstance(s, tuple) else s)
        if k[0] is not None and value not in seen.setdefault(k, set()):
            seen[k].add(value)
            groups.setdefault(k, []).append(s)
    return [(k, g) for k, g in groups.items() if len(g) > 1]


def _prefetch(group: Sequence[ModelSpec], prefetched: dict[str, dict[str, Any]], connector: Connector, purpose: str,
              timeout_s: float | None, build: Any) -> bool:
    """Run one query for ``group`` and split its rows by model (``model_value``); False if it failed
    (its models then run their own query)."""
    if not group:
        return False
    try:
        res = connector.run(build(list(group)), model=group[0].name, purpose=f"{purpose}-batch", timeout_s=timeout_s)
    except ParameterError:
        raise  # a query valuetrack built wrongly: a bug to see, not a warehouse failure to route around
    except Exception:  # noqa: BLE001 - isolation: per-model queries follow
        return False
    frame, crossovers = res.frame, None
    if purpose == "ab" or purpose.startswith("guardrail-"):  # once for the batch, not once per model
        frame, crossovers = split_crossovers(normalize_ab(frame), by=["model_value"])
    elif purpose in ("health-daily", "health-histogram"):
        frame = normalize_days(frame)
    cost = _share(res, purpose, len(group))
    frame, parts = _by_model(frame)
    for s in group:
        first, end = parts.get(model_value(s), (0, 0))
        prefetched[s.name][purpose] = (frame.iloc[first:end].reset_index(drop=True), cost)
    if crossovers is not None:  # split once for the batch too (pull_model's arms_and_crossovers)
        crossovers, parts = _by_model(crossovers)
        for s in group:
            first, end = parts.get(model_value(s), (0, 0))
            prefetched[s.name][f"{purpose}:crossovers"] = (crossovers.iloc[first:end].reset_index(drop=True), None)
    return True


def _share(res: QueryResult, purpose: str, n: int) -> dict[str, Any]:
    """Each of the ``n`` models' cost entry for a query they shared: its share of the elapsed time
    and cost, the same ``query_id``, and ``batch`` = n."""
    return {"purpose": purpose, "elapsed_s": round(res.elapsed_s / n, 6), "attempts": res.attempts,
            "query_id": res.query_id, "batch": n,
            "cost": {k: (v / n if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                     for k, v in dict(res.cost).items()}}


def _prefetch_series(group: Sequence[ModelSpec], prefetched: dict[str, dict[str, Any]], connector: Connector,
                     timeout_s: float | None, start: dt.date, as_of: dt.date) -> None:
    """Read the daily series of ``group`` (one table and day column) by one query and give each
    model the frame its own :func:`series_query` gives; if the query fails, each model runs its own."""
    try:
        res = connector.run(series_batch_query(group, start, as_of, dialect_ops=connector.ops), model=group[0].name,
                            purpose="series-batch", timeout_s=timeout_s)
    except ParameterError:
        raise  # a query valuetrack built wrongly: a bug to see, not a warehouse failure to route around
    except Exception:  # noqa: BLE001 - isolation: per-model queries follow
        return
    frame = normalize_days(res.frame)
    label = {c: f"c{i}" for i, c in enumerate(series_batch_columns(group))}
    cost = _share(res, "series", len(group))
    for spec in group:
        s = spec.attribution.series
        prefetched[spec.name]["series"] = (pd.DataFrame(
            {"day": frame["day"], "value": frame[label[s.value]], **{c: frame[label[c]] for c in s.controls}}), cost)


def _by_model(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, tuple[int, int]]]:
    """A batch query's rows sorted by ``model_value`` (stable: each model's rows keep their order),
    without that column, and each model value's (first, end) rows: one sort, then a slice per model
    (a groupby part and its own column drop cost a millisecond per model)."""
    codes, uniques = pd.factorize(frame["model_value"].astype(str).to_numpy())
    order = np.argsort(codes, kind="stable")
    frame = frame.drop(columns=["model_value"]).take(order).reset_index(drop=True)
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1)).tolist()
    return frame, {str(u): (bounds[i], bounds[i + 1]) for i, u in enumerate(uniques)}


def edges_from(row: pd.DataFrame) -> tuple[float, ...] | None:
    """Histogram edges from a reference-quantiles row: finite values, sorted, ties merged."""
    values = [float(v) for v in row.iloc[0].tolist() if v is not None] if len(row) else []
    clean = sorted({v for v in values if v == v})  # drop NaN (empty window), dedupe ties
    return tuple(clean) if clean else None


def normalize_billed(frame: pd.DataFrame, currency: str | None) -> pd.DataFrame:
    """A billed-cost result as ``day, currency, amount``: dates, the constant currency added when
    the bill has no currency column, float amounts (a day whose sum is NULL counts 0)."""
    frame = normalize_days(frame)
    frame.columns = [str(c).lower() for c in frame.columns]
    if "currency" not in frame.columns:
        frame["currency"] = currency
    frame["currency"] = [str(c) if c is not None else (currency or "") for c in frame["currency"]]
    frame["amount"] = pd.to_numeric(frame["amount"].map(_to_float), errors="coerce").fillna(0.0).astype("float64")
    return frame[["day", "currency", "amount"]].reset_index(drop=True)


def panel_wide(long: pd.DataFrame) -> pd.DataFrame:
    """Panel rows (day, unit, value) as one column per unit, named ``unit:<unit>``: the form in which
    the panel is stored with the model's series."""
    from valuetrack.attribution.methods.panel import UNIT_PREFIX

    too_long = [u for u in long["unit"].unique() if len(str(u)) > 120]
    if too_long:
        raise ValidationError(f"panel unit {str(too_long[0])[:40]!r}... is longer than 120 characters; "
                              "use a shorter unit column (an id rather than a name)")
    if not len(long):
        return pd.DataFrame(columns=["day"])
    wide = long.pivot_table(index="day", columns="unit", values="value", aggfunc="sum")
    wide.columns = [f"{UNIT_PREFIX}{u}" for u in wide.columns]
    return wide.reset_index().sort_values("day").reset_index(drop=True)


def _utc_naive(frame: pd.DataFrame) -> pd.DataFrame:
    """The freshness row's timestamps as naive UTC (:func:`utc_naive`); a frame of naive datetime64
    columns (what most drivers give) is already that."""
    if not len(frame) or all(isinstance(t, np.dtype) and t.kind == "M" for t in frame.dtypes):
        return frame
    return frame.map(utc_naive)


def _default_reference(health_start: dt.date) -> tuple[dt.date, dt.date]:
    return health_start - dt.timedelta(days=REFERENCE_DAYS), health_start - dt.timedelta(days=1)


def _to_date(v: Any) -> Any:
    if v is None or (isinstance(v, float) and v != v) or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.date()
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, str):
        return dt.date.fromisoformat(v[:10])
    return v


def _to_float(v: Any) -> Any:
    if v is None:
        return np.nan
    if isinstance(v, Decimal):
        return float(v)
    return v


def _numbers(values: pd.Series) -> pd.Series:
    """A column as numbers (Decimal and None from some drivers; already numeric from others)."""
    if values.dtype != object:
        return pd.to_numeric(values, errors="coerce")
    return pd.to_numeric(values.map(_to_float), errors="coerce")


def normalize_days(frame: pd.DataFrame) -> pd.DataFrame:
    """Make ``day`` a ``datetime.date`` and Decimal numbers floats, whatever the driver returned."""
    frame = frame.copy()
    if "day" in frame.columns and not all(type(v) is dt.date for v in frame["day"]):  # DuckDB's are already dates
        frame["day"] = [_to_date(v) for v in frame["day"]]
    for col in frame.columns:
        if col != "day" and frame[col].dtype == object and any(isinstance(v, Decimal) for v in frame[col]):
            frame[col] = pd.to_numeric(frame[col].map(_to_float))
    return frame


def normalize_decisions(frame: pd.DataFrame) -> pd.DataFrame:
    """Normalise a decisions aggregate: dates, int counts and keys, float sums (NULL sums → 0)."""
    frame = normalize_days(frame)
    for col in DECISION_COLUMNS[1:]:
        values = pd.to_numeric(frame[col].map(_to_float), errors="coerce").fillna(0)
        frame[col] = values.astype("float64") if col.startswith("sum_") else values.astype("int64")
    return frame[list(DECISION_COLUMNS)].reset_index(drop=True)


def normalize_ab(frame: pd.DataFrame) -> pd.DataFrame:
    """Normalise an A/B aggregate: dates, int counts, float sums; rows sorted (arm NULLs last)."""
    frame = normalize_days(frame)
    for col in ("n", "n_units"):
        frame[col] = _numbers(frame[col]).fillna(0).astype("int64")
    for col in _SUM_COLUMNS:
        frame[col] = _numbers(frame[col]).astype("float64")
    frame["arm"] = frame["arm"].astype(object).where(frame["arm"].notna(), None)
    keys = ["day", "arm"] + (["segment"] if "segment" in frame.columns else [])
    return frame.sort_values(keys, na_position="last", key=lambda s: s.astype(str) if s.name != "day" else s,
                             ).reset_index(drop=True)
