"""Valuation: the one place where stored aggregates become the figures people see.

It runs when something changes, never on a read (docs/architecture.md):

- at the end of ``valuetrack refresh`` (:func:`valuetrack.refresh.refresh` calls :func:`revalue`);
- after a registry edit (register, save, retire), at the as-of date of the newest valuation;
- on ``valuetrack revalue``.

Each run values the whole portfolio once (flags, overlaps and totals are portfolio-wide) and
writes one as-of to the ledger in one transaction: per model the figures to date, every month,
health, risk, holdout, diagnostics, flags and the daily timeline, with provenance (refresh id,
registry revision, library version, input hash). Pages, ``value``, ``flags``, ``models show`` and
the reports read that record (valuetrack.ledger) and compute nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pandas as pd

from valuetrack import __version__
from valuetrack.context import Context, past_as_of, today_utc
from valuetrack.store.ledger import LedgerRecord, collector_paused, jsonable, series_columns
from valuetrack.days import calendar_months, day_ordinals

log = logging.getLogger(__name__)
ATTEMPTS = 5  # valuations re-run when the inputs change while they compute (then the newer run wins)
TO_DATE = "to-date"


@dataclass(frozen=True)
class Valued:
    """What one valuation did.

    Attributes:
        as_of: the as-of date valued.
        asof_id: the ledger as-of written, or None when a newer valuation superseded this one.
        reason: "refresh", "edit" or "revalue".
        models: models valued.
        errors: models that could not be valued (their records say why).
        flagged: models flagged.
        net: portfolio net value to date.
        attempts: runs needed (inputs that change during a run make it run again).
        elapsed_s: wall time.
        failures: why each model that could not be valued could not be.
    """

    as_of: dt.date
    asof_id: int | None
    reason: str
    models: int
    errors: int
    flagged: int
    net: float | None
    attempts: int
    elapsed_s: float
    failures: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def describe(self) -> str:
        if self.asof_id is None:
            return (f"Valued {self.models} models as of {self.as_of}, but the registry or the data changed meanwhile: "
                    "the valuation that change started records the newer figures.")
        return (f"Valued {self.models} models as of {self.as_of} ({self.errors} could not be valued, "
                f"{self.flagged} flagged) in {self.elapsed_s:.1f}s; ledger as-of {self.asof_id}.")


def revalue(ctx: Context, *, as_of: dt.date | None = None, reason: str = "revalue", alpha: float = 0.05,
            workers: int | None = 1, early: Any = None) -> Valued:
    """Value the whole portfolio as of ``as_of`` (default today, UTC) and write it to the ledger.

    Re-runs (up to ``ATTEMPTS`` times) when a model is edited or a refresh lands while it computes,
    so the ledger's newest as-of always includes every change made before it was written.
    ``workers``: processes valuing the models (valuetrack.value.parallel); None chooses by the
    portfolio's size and the CPUs, for command-line processes only. ``early``: the models'
    valuations started during the refresh (valuetrack.value.parallel.EarlyValuation), used when
    nothing else changed meanwhile.
    """
    as_of = past_as_of(as_of or today_utc())
    if workers is None:
        from valuetrack.value.parallel import workers_for

        workers = workers_for(len(ctx.registry.list()))
    store = ctx.ledger
    started = time.perf_counter()
    for attempt in range(1, ATTEMPTS + 1):
        var: list[Any] = []  # the value at risk, simulated beside the months and the write (CLI)
        got = early.collect(as_of, alpha) if early is not None and attempt == 1 else None
        token, valued = got if got is not None else (store.token(), None)
        try:
            record, pv = build_record(ctx, as_of=as_of, reason=reason, alpha=alpha, token=token, workers=workers,
                                      on_valued=lambda pv: var.append(_start_var(pv, background=workers > 1)),
                                      valued=valued)
            asof_id = store.write(record)
        finally:  # waited for even when the write was refused or failed: the child is not left running
            result = var[0]() if var else None
        if asof_id is not None:
            ctx.var.record(result, pv.as_of)
            break
        log.info("valuation as of %s: inputs changed while valuing (attempt %d), valuing again", as_of, attempt)
    return Valued(as_of, asof_id, reason, len(pv.models), len(pv.failures), len({f.model for f in pv.flags}),
                  pv.totals["net"], attempt, round(time.perf_counter() - started, 3),
                  {m.model: m.error or "it could not be valued" for m in pv.failures})


@contextlib.contextmanager
def early_valuation(ctx: Context, as_of: dt.date, alpha: float = 0.05) -> Iterator[Any]:
    """For a command-line refresh: the models valued while it pulls (D57,
    valuetrack.value.parallel.EarlyValuation; pass it to the refresh and to :func:`revalue`) when
    the portfolio is large enough for worker processes, else None; the workers end with the block."""
    from valuetrack.value.parallel import EarlyValuation, workers_for

    workers = workers_for(len(ctx.registry.list()))
    early = EarlyValuation(ctx, as_of, alpha, preparer(ctx, alpha), workers) if workers > 1 else None
    try:
        yield early
    finally:
        if early is not None:
            early.close()


def revalue_after_edit(ctx: Context) -> Valued | None:
    """After a registry edit: value again at the newest valuation's as-of (None when nothing has been
    valued yet: the first refresh fills the ledger)."""
    latest = ctx.ledger.asof()
    if latest is None:
        return None
    # (a database valued as of a later day before such dates were refused is valued as of tomorrow)
    as_of = min(latest["as_of"], today_utc() + dt.timedelta(days=1))
    return revalue(ctx, as_of=as_of, reason="edit", alpha=latest["alpha"])


# ------------------------------------------------------------------------------------------------


def build_record(ctx: Context, *, as_of: dt.date, reason: str, alpha: float, token: tuple,
                 workers: int = 1, on_valued: Any = None, valued: dict[str, Any] | None = None
                 ) -> tuple[LedgerRecord, Any]:
    """Value every registered model and shape the ledger record (nothing is written); also returns
    the PortfolioValue it came from. ``on_valued(pv)`` is called once the models are valued, before
    the record is shaped. ``valued``: the models already valued (with :func:`preparer`'s figures)
    as of ``token``, e.g. during the refresh (value_portfolio's ``done``)."""
    from valuetrack.value.portfolio import value_portfolio

    pv = value_portfolio(ctx, as_of=as_of, alpha=alpha, prepare=preparer(ctx, alpha), workers=workers, done=valued)
    if on_valued is not None:
        on_valued(pv)
    with collector_paused():  # millions of live objects: a full collection would walk them for nothing
        return _record(ctx, pv, as_of=as_of, reason=reason, alpha=alpha, token=token)


def _record(ctx: Context, pv: Any, *, as_of: dt.date, reason: str, alpha: float,
            token: tuple) -> tuple[LedgerRecord, Any]:
    """The ledger record of the valued portfolio ``pv`` (models, periods, months, series, flags),
    and ``pv`` with each model's payback date."""
    from valuetrack.value.portfolio import replaced

    last_day = as_of - dt.timedelta(days=1)
    models, live_month, month_rows, timelines, hashes, values = [], {}, {}, [], {}, []
    month_figures: dict[str, dict[str, Any]] = {}  # per model, its months' figures as JSON (_prepare)
    for mv in pv.models:
        val = pv.valuations.get(mv.model)
        status = val.prepared["status"] if val is not None else ctx.aggregates.status(mv.model)
        ok = status.last_ok or {}
        if val is None:  # could not be valued: the record says why
            hashes[mv.model] = _sha({"model": mv.model, "error": mv.error})
            models.append(_model_row(mv, ok.get("id"), hashes[mv.model], jsonable({"refresh": _refresh_info(status)})))
            values.append(mv)
            continue
        mv = dataclasses.replace(mv, payback_date=val.prepared["payback"])
        hashes[mv.model] = val.prepared["hash"]
        models.append(_model_row(mv, ok.get("id"), hashes[mv.model], val.prepared["detail"]))
        live_month[mv.model] = f"{val.live_from:%Y-%m}" if val.live_from else "9999-12"
        month_rows[mv.model] = {f"{m.period_start:%Y-%m}": m for m in val.months()}
        month_figures[mv.model] = val.prepared["month_figures"]
        timelines.append({"model_name": mv.model, "series": val.prepared["series"]})
        values.append(mv)
    pv = dataclasses.replace(pv, models=values)

    periods = {TO_DATE: _period(pv)}
    monthly = []
    starts = [v.live_from for v in pv.valuations.values() if v.live_from is not None]
    bounds = calendar_months(min(starts), last_day) if starts else {}
    for mv in pv.models:  # the months before a model went live, valued in one pass per model
        val = pv.valuations.get(mv.model)
        if val is not None:  # (most of them valued with the model: _prepare)
            month_rows[mv.model].update(val.prepared["before"])
            before = [m for m in bounds if m not in month_rows[mv.model]]
            month_rows[mv.model].update(zip(before, val.periods([bounds[m] for m in before])))
    for month, (first, last) in bounds.items():
        # a live month has the same figures as the month's own period, shown from the 1st
        values = [replaced(month_rows[mv.model][month], period_start=first, health=mv.health)
                  for mv in pv.models if mv.model in pv.valuations]
        mp = _month_portfolio(ctx, pv, values, month, first, last)
        periods[month] = _period(mp)
        start = jsonable(first)
        # the month's JSON as the model's valuation shaped it (a month before launch: here), shown
        # from the 1st, with this month's risk and without health
        monthly += [{"model_name": v.model, "month": month, "live": month >= live_month[v.model], "net": v.net,
                     "figures": {**(month_figures[v.model].get(month) or month_json(v)), "period_start": start,
                                 "risk": jsonable(v.risk), "health": None}} for v in mp.models]
    flags = [{"model_name": f.model, "type": f.type, "p_value": f.p_value, "reason": f.reason, "action": f.action,
              "evidence": f.evidence, "at_stake": f.at_stake} for f in pv.flags]
    # the structural fits the models used, kept for the next valuation (D52; a cache: no figure reads it)
    fits = {name: v.data.fits.used for name, v in pv.valuations.items() if getattr(v.data, "fits", None) is not None}
    # and the segment sums their breakdowns used (D68; a cache too)
    segment_sums = {name: v.prepared["segment_sums"] for name, v in pv.valuations.items()
                    if v.prepared.get("segment_sums") is not None}
    record = LedgerRecord(
        as_of=as_of, reason=reason, actor=getattr(ctx.actor, "name", "") or "", alpha=alpha,
        currency=pv.currency, library_version=__version__, refresh_id=token[1], registry_version=token[0],
        input_hash=_sha({"as_of": as_of, "alpha": alpha, "models": hashes}), token=token, periods=periods,
        models=models, monthly=monthly, timeline=timelines, flags=flags, fits=fits,
        segment_sums=segment_sums)
    return record, pv


def preparer(ctx: Context, alpha: float) -> Any:
    """What the record needs of each model beyond its figures to date, computed in the process that
    valued it (a worker): its payback, months (with those before it went live, from the first month
    of the newest valuation's), their JSON, chart series, input hash, detail and refresh status."""
    first = ctx.ledger.first_month()
    return functools.partial(_prepare, ctx, alpha, dt.date.fromisoformat(f"{first}-01") if first else None)


def _prepare(ctx: Context, alpha: float, first_month: dt.date | None, v: Any) -> dict[str, Any]:
    cumulative, daily = cumulative_rows(v), v.data.daily
    segments, kept_sums = _segments(ctx, v, alpha)
    status = v.data.status if v.data.status is not None else ctx.aggregates.status(v.reg.name)
    effect = v.effect
    detail = {"effect": {"method": effect.method, "trusted": effect.trusted, "reason": effect.reason,
                         "mature_through": effect.mature_through, "is_ts": effect.ts is not None},
              "details": effect.details or {}, "live_from": v.live_from,
              "live_to": max(daily["day"]) if v.reg.spec.status == "retired" and len(daily) else None,
              "refresh": _refresh_info(status),
              # annotations, excluded windows and overrides as this valuation used them (charts, reports)
              "notes": [n.to_dict() for n in v.notes if n.active],
              "segments": segments}
    daily = daily[[c for c in ("day", "arm", "n_exposures") if c in daily.columns]] if len(daily) else None
    series = {"timeline": series_columns(v.timeline()), "cumulative": series_columns(cumulative),
              "daily": series_columns(daily)}
    # the months are computed here (in the worker) and kept in the valuation, with those before the
    # model went live back to the first of the newest valuation (the record's months most likely
    # start there; it values any other itself), and their JSON
    live = f"{v.live_from:%Y-%m}" if v.live_from else "9999-12"
    bounds = {m: b for m, b in calendar_months(first_month, v.last_day).items() if m < live} if first_month else {}
    before = dict(zip(bounds, v.periods(list(bounds.values())))) if bounds else {}
    figures = {f"{m.period_start:%Y-%m}": month_json(m) for m in v.months()}
    figures.update((m, month_json(value)) for m, value in before.items())
    return {"payback": payback_from(cumulative), "hash": input_hash(v, alpha), "series": series, "status": status,
            "detail": jsonable(detail), "before": before, "month_figures": figures, "segment_sums": kept_sums}


def _segments(ctx: Context, v: Any, alpha: float) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """An A/B model's uplift per segment of ``attribution.exposures.segment`` (empty without one),
    on the mature cohort days its valuation used (its excluded windows left out); and the sums it
    used, to keep for the next valuation (D68: it sums only the days that matured since the kept
    sums, when they are for the same excluded windows and no refresh re-read their days)."""
    from valuetrack.attribution.methods.ab import mature_through, segment_breakdown
    from valuetrack.value.notes import exclusion_windows

    spec = v.reg.spec
    ex = spec.attribution.exposures
    if spec.attribution.method != "ab" or ex is None or ex.segment is None or not len(v.data.ab):
        return [], None
    through, windows = mature_through(spec, v.as_of), exclusion_windows(v.notes)
    key = json.dumps([[a.isoformat(), b.isoformat()] for a, b in windows])
    kept = ctx.ledger.kept_segment_sums(spec.name)
    if kept is not None and kept["windows"] == key and kept["through"] <= through:
        rows = kept["sums"]
        if kept["through"] < through:
            rows = _add_sums(rows, ctx.aggregates.segment_sums(spec.name, through, windows, after=kept["through"]))
    else:
        rows = ctx.aggregates.segment_sums(spec.name, through, windows)
    return (segment_breakdown(spec, rows, alpha=alpha),
            {"through": through, "windows": key, "sums": rows})


def _add_sums(rows: list[dict[str, Any]], more: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sums per segment × arm (records) plus those of ``more``, as SQL's SUM adds: a NULL (None)
    is no term, and a sum with no term is NULL."""
    out = {(r["segment"], r["arm"]): dict(r) for r in rows}
    for r in more:
        have = out.setdefault((r["segment"], r["arm"]), dict.fromkeys(r) | {"segment": r["segment"], "arm": r["arm"]})
        for k, x in r.items():
            if k not in ("segment", "arm") and x is not None:
                have[k] = x if have[k] is None else have[k] + x
    return [out[k] for k in sorted(out)]


def month_json(value: Any) -> dict[str, Any]:
    """A month's figures as the ledger stores them, but for what the portfolio's month sets (the
    first day shown, risk, health: :func:`_record`)."""
    return jsonable(value.to_dict())


def _start_var(pv: Any, *, background: bool) -> Any:
    """Start simulating the portfolio's value at risk from the same valuations: in a forked process
    while this one shapes and writes the record (``background``), else now. Returns the function
    giving its result; a failure is the result's reason and never stops the valuation."""
    if not background:
        result = _var(pv)
        return lambda: result
    from valuetrack.value.parallel import in_child

    return in_child(lambda: _var(pv))


def _var(pv: Any) -> dict[str, Any]:
    from valuetrack.value.portfolio_var import portfolio_var

    try:
        return portfolio_var(pv).to_dict()
    except Exception as exc:  # noqa: BLE001 - a VaR that cannot be computed says why, the valuation stands
        return {"as_of": pv.as_of, "error": f"the value at risk could not be computed: {type(exc).__name__}: {exc}"}


def _model_row(mv: Any, refresh_id: int | None, digest: str, detail: dict[str, Any]) -> dict[str, Any]:
    """A model's ledger row (``detail``: as JSON already)."""
    return {"model_name": mv.model, "state": mv.state, "error": mv.error, "registry_revision": mv.registry_revision,
            "refresh_id": refresh_id, "input_hash": digest, "net": mv.net, "figures": jsonable(mv.to_dict()),
            "detail": detail}


def _refresh_info(status: Any) -> dict[str, Any]:
    ok = status.last_ok or {}
    keep = ("id", "as_of", "finished_at", "mature_through", "max_exposure_ts", "max_outcome_ts", "cost")
    last = status.last_attempt or {}
    return {"stale": status.stale, "reason": status.reason, "last_ok": {k: ok.get(k) for k in keep} if ok else None,
            "last_attempt": {k: last.get(k) for k in ("id", "status", "started_at", "finished_at", "error")}
            if last else None}


def _month_portfolio(ctx: Context, pv: Any, values: list[Any], month: str, first: dt.date, last: dt.date) -> Any:
    """The portfolio for one month: the models' months, risk on the month's figures, flags to date,
    overlaps deducted on the month's gross value (the to-date unit counts and shares)."""
    from valuetrack.value.portfolio import PortfolioValue, _with_risk, overlap_deduction

    values = _with_risk(values, [pv.valuations[v.model].health for v in values])
    d = overlap_deduction(pv.patterns, values, {v.model: v.treated_units for v in pv.models if v.state == "ok"})
    return PortfolioValue(pv.as_of, month, first, last, pv.currency, pv.alpha, values, pv.flags, d.pairs,
                          overlap_patterns=d.patterns, deduction=d, patterns=pv.patterns)


def _period(pv: Any) -> dict[str, Any]:
    return {"start": pv.period_start, "end": pv.period_end, "totals": pv.totals,
            "overlaps": [o.to_dict() for o in pv.overlaps], "overlap_patterns": pv.overlap_patterns,
            "prior": pv.prior}


def cumulative_rows(valuation: Any) -> pd.DataFrame:
    """Cumulative net value from launch to each month end (and the last day), with its interval,
    each point a library period (so intervals come from variances, never from added bounds)."""
    start = valuation.live_from
    if start is None:
        return pd.DataFrame(columns=COLUMNS)
    ends = [last for _, last in calendar_months(start, valuation.last_day).values()]
    values = valuation.periods([(start, end) for end in ends])
    if not values:
        return pd.DataFrame(columns=COLUMNS)
    return pd.DataFrame({  # built column by column (the same values and dtypes as from one dict per row)
        "day": ends, "net": [v.net for v in values],
        "net_lo": [v.ci_net[0] if v.ci_net else None for v in values],
        "net_hi": [v.ci_net[1] if v.ci_net else None for v in values], "cost": [v.cost for v in values],
        "provisional": [v.provisional for v in values], "one_off": [valuation.one_off_to(end) for end in ends],
        "net_fully_loaded": [v.net_fully_loaded for v in values],
        "cost_fully_loaded": [v.cost_fully_loaded for v in values]}, columns=COLUMNS)


COLUMNS = ["day", "net", "net_lo", "net_hi", "cost", "provisional", "one_off", "net_fully_loaded", "cost_fully_loaded"]
"""The cumulative rows: net value (running costs) with its interval, running cost, one-off costs
incurred to the day, and the fully loaded net value and cost (one-off costs amortised)."""


def payback_from(cumulative: pd.DataFrame) -> dt.date | None:
    """The first point of the cumulative net value at or above the one-off costs incurred by then
    (valuetrack.value.roi.payback_at): the payback tile, the chart's marker and ``value --json`` all
    show this one date."""
    from valuetrack.value.roi import payback_at

    if not len(cumulative):
        return None
    return payback_at(list(cumulative["day"]), cumulative["net"].astype(float).to_numpy(),
                      cumulative["one_off"].to_numpy())


def input_hash(valuation: Any, alpha: float) -> str:
    """sha256 over what a model's figures depend on: spec, revision, notes (excluded windows,
    overrides), as-of, alpha, library version and the stored aggregates read (same hash, same figures)."""
    d = valuation.data
    return _sha({"spec": valuation.reg.spec.to_dict(), "revision": valuation.reg.revision,
                 "notes": [n.to_dict() for n in valuation.notes],
                 "as_of": valuation.as_of, "alpha": alpha, "version": __version__,
                 "data": [frame_digest(f) for f in (d.ab, d.series, d.daily, d.histogram, d.decisions)]
                 + ([frame_digest(d.billed)] if valuation.reg.spec.cost_source is not None else [])
                 + ([frame_digest(d.guardrails)] if valuation.reg.spec.guardrails else [])
                 # the rates used (a corrected rate changes the figures)
                 + ([hashlib.sha256(valuation.rate.tobytes()).hexdigest()] if valuation.rate is not None else []),
                 "freshness": {k: (d.last_ok or {}).get(k) for k in ("max_exposure_ts", "max_outcome_ts", "mature_through")}})


def frame_digest(frame: pd.DataFrame | None) -> str:
    """sha256 over a frame's column names and values, column by column: numbers and booleans
    by their bytes, days by their ordinals, text by its lengths and characters, anything else by its
    repr: equal frames, equal digests; any changed value, a changed digest. The index is not part of it."""
    if frame is None or not len(frame):
        return "empty"
    h = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    for _, col in frame.items():
        values = col.to_numpy()
        h.update(f"|{values.dtype.str}|".encode())
        if values.dtype.kind in "biufcmM":
            h.update(np.ascontiguousarray(values).tobytes())
            continue
        items = values.tolist()
        kinds = set(map(type, items))
        if kinds == {dt.date}:
            h.update(b"d" + day_ordinals(items).tobytes())
        elif kinds == {str}:  # each text's length, then the texts
            h.update(b"s" + np.fromiter(map(len, items), dtype=np.int64, count=len(items)).tobytes())
            h.update("".join(items).encode("utf-8", "surrogatepass"))
        else:
            h.update(b"r" + repr(items).encode())
    return h.hexdigest()


def _sha(value: Any) -> str:
    return hashlib.sha256(json.dumps(jsonable(value), sort_keys=True, separators=(",", ":")).encode()).hexdigest()
