"""Per-model and portfolio value from the stored aggregates (no warehouse access).

For each model: the effect to date (A/B on mature cohorts, or the structural counterfactual), then
money for the period asked (a month, or to date), then flags on the to-date figures.
"""

from __future__ import annotations

import calendar
import dataclasses
import functools
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from valuetrack import __version__
from valuetrack.context import Context, today_utc
from valuetrack.costviews import VIEWS as COST_VIEWS
from valuetrack.errors import ValidationError
from valuetrack.jsonsafe import num
from valuetrack.attribution.methods import Effect
from valuetrack.attribution.methods import get as get_method
from valuetrack.attribution.methods.ab import SUMS as _SUMS
from valuetrack.attribution.methods.ab import ab_inputs as _ab_inputs
from valuetrack.registry.spec import AMORTISATION_MONTHS, ModelSpec, latest
from valuetrack.registry.store import RegisteredModel
from valuetrack.store.aggregates import AggregateStore
from valuetrack.value.flags import Flag, evaluate_flags, with_stakes
from valuetrack.value.fx import FxError, FxRates
from valuetrack.value.overlap import Deduction, Overlap, Pattern, deduct
from valuetrack.days import calendar_months, day_ordinals
from valuetrack.value.roi import PRIOR, DailyMoney, daily_money, money_value, payback_date


@dataclass(frozen=True)
class ModelValue:
    """One model's money figures for one period, with the provenance to recompute them."""

    model: str
    display_name: str
    team: str
    owner: str
    status: str
    method: str
    kpi: str
    currency: str
    period_start: dt.date
    period_end: dt.date
    as_of: dt.date
    treated_units: float
    predictions: float
    gross: float | None
    gross_se: float | None
    cost: float
    net: float | None
    ci_net: tuple[float, float] | None
    roi: float | None
    ci_roi: tuple[float, float] | None
    prob_positive: float | None
    expected_loss: float | None
    provisional: bool
    trusted: bool
    reason: str | None
    effect_abs: float | None
    effect_se: float | None
    effect_rel: float | None
    p_value: float | None
    srm_p_value: float | None
    days_since_exposure: int | None
    live_days: int
    payback_date: dt.date | None
    registry_revision: int
    data_window: tuple[dt.date | None, dt.date | None]
    alpha: float = 0.05
    holdout: dict[str, Any] | None = None
    health: dict[str, Any] | None = None
    risk: dict[str, Any] | None = None
    state: str = "ok"
    """"ok", or "error" when the model could not be valued this time (``error`` says why, in a
    sentence a person can act on); an error row carries the model's last good figures, if any."""
    error: str | None = None
    last_valued: dt.date | None = None
    """For an error row: the as-of date of the figures it carries (None: never valued)."""
    requested_method: str | None = None
    """The registered method when another one valued the model (``auto``), else None."""
    method_reason: str | None = None
    """Why ``method`` was chosen (``auto``), else None."""
    decisions: dict[str, Any] | None = None
    """A classifier's decisions in money over the same period (valuetrack.value.decisions), beside the
    causal estimate and never added to it; None without ``[decisions]``."""
    cost_one_off: float = 0.0
    """One-off costs incurred in the period (an event before launch counts on the launch day)."""
    amortisation: float = 0.0
    """The one-off costs amortised into the period (straight line by day over ``amortisation_months``)."""
    cost_fully_loaded: float = 0.0
    """Running cost + amortisation: the cost of the fully loaded view."""
    net_fully_loaded: float | None = None
    ci_net_fully_loaded: tuple[float, float] | None = None
    roi_fully_loaded: float | None = None
    ci_roi_fully_loaded: tuple[float, float] | None = None
    amortisation_months: int = 36
    cost_billing: dict[str, Any] | None = None
    """With ``[cost_source]``: how ``cost`` splits between the settled bill and the manifest's estimate
    (valuetrack.value.billing.summary): ``billed``, ``estimated``, ``estimate_on_billed_days``,
    ``billed_days``, ``estimated_days``, ``settled_from``, ``settled_through``; None without one."""
    design: dict[str, Any] | None = None
    """Designs beyond one holdout (attribution/methods/designs.py): ``ramp`` (the allocation periods
    and the naive pooled estimate), ``challenger`` (comparisons and the recommendation),
    ``triangulation`` (holdout vs time series); None for a plain design."""
    native: dict[str, Any] | None = None
    """For a model whose ``currency`` is not the reporting one: the period's figures in its own
    currency (``currency``, ``gross``, ``cost``, ``net``) and the rates used (``rate_first``,
    ``rate_last``, ``rate_mean``: reporting currency per 1 unit of it; to date also ``one_off_costs``
    in its currency and ``one_off_costs_reporting`` at the rates of the days they were incurred).
    None for a model in the reporting currency. ``design`` and ``decisions`` are in its currency."""
    guardrails: list[dict[str, Any]] | None = None
    """Each guardrail's estimate and money over the period (valuetrack.value.guardrails); None
    without ``[[guardrails]]``. Those with ``in_net`` are inside ``gross``."""
    net_adjusted: float | None = None
    """Net value with the overrides agreed with finance (``net`` + ``override_amount``; D37). Every
    statistic (intervals, P(net > 0), flags, payback) is of the unadjusted ``net``."""
    override_amount: float = 0.0
    """How much of ``net_adjusted`` comes from overrides in this period (0 without any)."""
    overrides: list[dict[str, Any]] | None = None
    """The overrides counted in this period: id, category (amount | share), amount (money or share),
    days, reason, who and when, and ``effect`` (their part of ``override_amount``); None without."""
    exclusions: dict[str, Any] | None = None
    """To date, with excluded windows (D36): the windows, the days left out, and the estimate with
    its interval ``with`` the exclusions (as valued) and ``without`` them; None without windows."""

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["ci_net"] = list(self.ci_net) if self.ci_net else None
        out["ci_roi"] = list(self.ci_roi) if self.ci_roi else None
        for k in ("ci_net_fully_loaded", "ci_roi_fully_loaded"):
            out[k] = list(out[k]) if out[k] else None
        out["data_window"] = list(self.data_window)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelValue:
        """Back from ``to_dict`` (or its JSON, as stored with each result)."""
        def day(v: Any) -> Any:
            return dt.date.fromisoformat(v[:10]) if isinstance(v, str) else v

        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        for k in ("period_start", "period_end", "as_of", "payback_date", "last_valued"):
            if k in known:
                known[k] = day(known[k])
        for k in ("ci_net", "ci_roi", "ci_net_fully_loaded", "ci_roi_fully_loaded"):
            known[k] = tuple(known[k]) if known.get(k) else None
        known["data_window"] = tuple(day(v) for v in (known.get("data_window") or (None, None)))
        return cls(**known)


@dataclass(frozen=True)
class PortfolioValue:
    """The portfolio for one period: every model's value, totals and flags."""

    as_of: dt.date
    period: str
    period_start: dt.date
    period_end: dt.date
    currency: str
    alpha: float
    models: list[ModelValue]
    flags: list[Flag]
    overlaps: list[Overlap] = field(default_factory=list)
    prior: str = PRIOR
    valuations: dict[str, ModelValuation] = field(default_factory=dict, repr=False, compare=False)
    """The per-model valuations behind the figures (for charts and reports; not serialised)."""
    overlap_patterns: list[dict[str, Any]] = field(default_factory=list)
    """Per membership pattern of two or more models sharing units and a KPI: the units and the value
    deducted (valuetrack.value.overlap.Deduction.patterns)."""
    deduction: Deduction = field(default_factory=Deduction, repr=False, compare=False)
    """The overlap deduction of this period (the totals read it)."""
    patterns: list[Pattern] = field(default_factory=list, repr=False, compare=False)
    """The unit counts the refresh stored (each month's deduction is made from them)."""

    @property
    def totals(self) -> dict[str, Any]:
        """Portfolio sums, with value that overlapping models would count more than once deducted
        (``double_counted``, see valuetrack.value.overlap) and its uncertainty in the interval.

        ``reconciliation`` is how the rows become the total: the sum of the rows' net values
        (models with an estimate), minus the overlap deduction, minus the cost of the models
        without an estimate (their cost counts, their value is unknown) = the total net value."""
        valued = [m for m in self.models if m.state == "ok"]
        rows = [m for m in valued if m.gross is not None]
        without = [m for m in valued if m.gross is None]
        d = self.deduction
        gross = sum(m.gross for m in rows) - d.amount  # type: ignore[misc]
        cost = sum(m.cost for m in valued)
        loaded_cost = sum(m.cost_fully_loaded or m.cost for m in valued)
        # the total is Σ kept_i · gross_i: its variance Σ kept_i² · se_i² (docs/methods-value.md)
        se = math.sqrt(sum((d.kept.get(m.model, 1.0) * (m.gross_se or 0.0)) ** 2 for m in rows))
        v = money_value(gross, se, 1, 1, True, cost, alpha=self.alpha)
        net = float(v.net) if rows else -cost
        overrides = sum(m.override_amount or 0.0 for m in valued)
        return {"gross": gross, "gross_se": se if rows else None, "cost": cost, "net": net,
                "ci_net": [float(v.net_lo), float(v.net_hi)] if rows else None,
                "override_amount": overrides, "net_adjusted": net + overrides,
                "prob_positive": float(v.prob_positive) if rows else None,
                "cost_fully_loaded": loaded_cost, "net_fully_loaded": (gross if rows else 0.0) - loaded_cost,
                "double_counted": d.amount, "double_counted_se": d.se, "overlap_warnings": list(d.warnings),
                "reconciliation": {"rows": float(sum(m.net for m in rows)),  # type: ignore[misc]
                                   # 0.0 - x: no deduction reads 0.0, never -0.0 (JSON, CSV)
                                   "overlap": 0.0 - d.amount, "no_estimate_cost": 0.0 - float(sum(m.cost for m in without)),
                                   "total": net, "models_without_estimate": [m.model for m in without]},
                "models": len(self.models), "flagged": len({f.model for f in self.flags}),
                # models in error are left out of the sums: their last good figures are of another date
                "not_valued": len(self.models) - len(valued), "last_valued_included": False}

    @property
    def failures(self) -> list[ModelValue]:
        """The models that could not be valued this time (state "error"), each saying why."""
        return [m for m in self.models if m.state != "ok"]

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of, "period": self.period, "period_start": self.period_start,
                "period_end": self.period_end, "currency": self.currency, "alpha": self.alpha,
                "prior": self.prior, "cost_views": COST_VIEWS, "totals": self.totals,
                "models": [m.to_dict() for m in self.models],
                "flags": [f.to_dict() for f in self.flags], "overlaps": [o.to_dict() for o in self.overlaps],
                "overlap_patterns": list(self.overlap_patterns)}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([m.to_dict() for m in self.models])


def parse_month(month: str) -> tuple[dt.date, dt.date]:
    try:
        first = dt.datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise ValidationError(f"--month: {month!r} is not a month YYYY-MM") from None
    return first, dt.date(first.year, first.month, calendar.monthrange(first.year, first.month)[1])


def value_portfolio(ctx: Context, *, as_of: dt.date | None = None, month: str | None = None,
                    alpha: float = 0.05, names: list[str] | None = None,
                    reuse: PortfolioValue | None = None, workers: int = 1,
                    prepare: Any = None, done: dict[str, Any] | None = None) -> PortfolioValue:
    """Value of every registered model (or ``names``) for ``month`` or to date, with flags.

    ``reuse``: another PortfolioValue of the same as-of date and alpha whose valuations (the loaded
    aggregates and fitted effects) serve this one too, e.g. the month view after the to-date view.
    ``prepare``: a function of one valuation returning a dict of further per-model figures (kept in
    ``valuation.prepared``), computed with the model's own figures. ``workers`` > 1: the models are
    valued in that many forked processes (valuetrack.value.parallel; the same figures, D49).
    ``done``: per model, its valuation already made (with ``prepare``) in a worker, or why it failed
    (valuetrack.value.parallel.EarlyValuation); the others are valued here.
    """
    as_of = as_of or today_utc()
    last_day = as_of - dt.timedelta(days=1)
    registered = ctx.registry.list()
    if names:
        registered = [m for m in registered if m.name in set(names)]
    if month:  # refuse a bad month before any work
        start, end = parse_month(month)
        end = min(end, last_day)
    else:
        start, end = None, last_day
    cached = reuse.valuations if reuse is not None and (reuse.as_of, reuse.alpha) == (as_of, alpha) else {}
    fx = FxSource(ctx)
    notes = ctx.notes.by_model()  # annotations, excluded windows, overrides (one query)
    valuations: dict[str, ModelValuation] = {}
    values, to_date, healths = [], [], []
    done = dict(done or {})
    if workers > 1 and not cached and not done:
        from valuetrack.value.parallel import value_models

        done = value_models(ctx, registered, as_of, alpha, notes, prepare, workers)
    for reg in registered:
        try:
            if reg.name in done:
                got = done[reg.name]
                if isinstance(got, str):  # the worker's sentence for a model that could not be valued
                    raise _Failed(got)
                v, total = got
                v._fx = fx  # the rates are read again in this process if a later figure needs them
            else:
                v = cached.get(reg.name)
                if v is None or v.reg.revision != reg.revision:
                    v = ModelValuation.load(ctx, reg, as_of, alpha=alpha, fx=fx, notes=notes.get(reg.name, ()))
                total = value_one(v, prepare)
            value = v.period(start, end) if month else total
            if month:
                value = dataclasses.replace(value, health=total.health)
            valuations[reg.name] = v
            if v.data.refresh_error:  # valued, but on the aggregates of the last good refresh
                last = v.data.last_ok["as_of"] if v.data.last_ok else None
                total, value = (dataclasses.replace(x, state="error", error=v.data.refresh_error, last_valued=last)
                                for x in (total, value))
        except Exception as exc:  # one model's failure never reaches the others
            sentence = str(exc) if isinstance(exc, _Failed) else failure_sentence(reg, exc)
            total = value = _error_value(reg, sentence, as_of, alpha, ctx.settings.currency,
                                         ctx.ledger.last_good(reg.name, as_of))
        values.append(value)
        to_date.append(total)
        healths.append(valuations[reg.name].health if reg.name in valuations else None)
    values = _with_risk(values, healths)
    ok = [(valuations[r.name], t) for r, t in zip(registered, to_date) if t.state == "ok"]
    flags = evaluate_flags(_flag_frame([v for v, _ in ok], [t for _, t in ok]), alpha=alpha) if ok else []
    flags = with_stakes(flags, [t for _, t in ok])  # the money at stake orders them, worst first (D42)
    patterns = stored_patterns(ctx)
    d = overlap_deduction(patterns, values, {v.model: v.treated_units for v in to_date if v.state == "ok"})
    if not month:
        start = min((v.period_start for v in values), default=end)
    return PortfolioValue(as_of, month or "to-date", start, end, ctx.settings.currency, alpha, values, flags,
                          d.pairs, valuations=valuations, overlap_patterns=d.patterns, deduction=d, patterns=patterns)


class _Failed(Exception):
    """A model a worker process could not value; the message is its failure sentence."""


def value_one(v: ModelValuation, prepare: Any = None) -> ModelValue:
    """A loaded model's figures to date, and what ``prepare`` adds (one model's whole valuation:
    the same code in this process and in a worker)."""
    total = v.to_date()
    if v.reg.spec.status == "active":
        v.look_window(total.live_days)  # the flags' first look (time series), computed with the model's figures
    if prepare is not None:
        v.prepared = prepare(v)
    fits = getattr(v.data, "fits", None)
    if fits is not None:  # the structural results kept, with every sum this valuation asked of them (D65)
        fits.keep()
    return total


def stored_patterns(ctx: Context) -> list[Pattern]:
    """The unit counts per membership pattern the latest refresh stored; an app database whose
    last refresh predates them (upgraded in place) has its pairs counted pair by pair, with a
    warning, until the next refresh."""
    found = [Pattern.from_dict(p) for p in ctx.overlaps.patterns()]
    if found:
        return found
    return [Pattern((o["model_a"], o["model_b"]), (o["model_a"], o["model_b"]), o["shared_units"], True)
            for o in ctx.overlaps.read() if o["shared_kpi"] and o["shared_units"] > 0]


def overlap_deduction(patterns: list[Pattern], values: list[ModelValue], treated_to_date: dict[str, float]) -> Deduction:
    """The deduction for the period of ``values`` (models not valued claim nothing)."""
    ok = [v for v in values if v.state == "ok"]
    return deduct(patterns, {v.model: v.gross for v in ok}, {v.model: v.gross_se for v in ok}, treated_to_date)


def failure_sentence(reg: RegisteredModel, exc: BaseException) -> str:
    """Why a model could not be valued, in a sentence a person can act on (never a traceback)."""
    from valuetrack.errors import ValuetrackError

    method = reg.spec.attribution.method
    if reg.problems:
        return (f"its stored registration is no longer valid ({reg.problems[0]}); fix the manifest and run "
                "`valuetrack models register --file FILE`")
    if isinstance(exc, ValuetrackError):
        return f"could not be valued by method {method!r}: {exc.message}"
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return (f"the {method!r} fit failed ({type(exc).__name__}{': ' + text if text else ''}); check the model's "
            "data on its page, or choose another method in its manifest")


def _error_value(reg: RegisteredModel, error: str, as_of: dt.date, alpha: float, currency: str,
                 last_good: dict[str, Any] | None) -> ModelValue:
    """The row of a model that could not be valued: its last good figures (if any), state "error"."""
    spec = reg.spec
    if last_good is not None:
        good = ModelValue.from_dict(last_good)
        return dataclasses.replace(good, state="error", error=error, last_valued=good.as_of, as_of=as_of,
                                   registry_revision=reg.revision)
    day = as_of - dt.timedelta(days=1)
    return ModelValue(
        model=spec.name, display_name=spec.display_name, team=spec.team, owner=spec.owner, status=spec.status,
        method=spec.attribution.method, kpi=spec.kpi.name, currency=currency, period_start=day, period_end=day,
        as_of=as_of, treated_units=0.0, predictions=0.0, gross=None, gross_se=None, cost=0.0, net=None, ci_net=None,
        roi=None, ci_roi=None, prob_positive=None, expected_loss=None, provisional=False, trusted=False,
        reason=error, effect_abs=None, effect_se=None, effect_rel=None, p_value=None, srm_p_value=None,
        days_since_exposure=None, live_days=0, payback_date=None, registry_revision=reg.revision,
        data_window=(None, None), alpha=alpha, state="error", error=error, last_valued=None)


def _with_risk(values: list[ModelValue], healths: list[Any]) -> list[ModelValue]:
    """Attach each model's risk (expected loss, P(net < 0), concentration, health problems)."""
    from valuetrack.value.risk import portfolio_risk

    nan = float("nan")
    risks = portfolio_risk([v.net if v.net is not None else nan for v in values],
                           [v.gross_se if v.gross_se is not None else nan for v in values],
                           [v.gross if v.gross is not None else nan for v in values],
                           healths, models=[v.model for v in values])
    return [replaced(v, risk=r.to_dict()) for v, r in zip(values, risks)]


def replaced(value: ModelValue, **changes: Any) -> ModelValue:
    """``dataclasses.replace(value, **changes)`` for a ModelValue, without its 50-argument frozen
    ``__init__`` (a tenth of the cost: the record copies a row per model per month). The same object:
    ModelValue has no ``__post_init__`` and its ``__init__`` only sets the fields."""
    unknown = changes.keys() - ModelValue.__dataclass_fields__.keys()
    if unknown:
        raise TypeError(f"ModelValue has no field {sorted(unknown)[0]!r}")
    new = object.__new__(ModelValue)
    new.__dict__.update(value.__dict__, **changes)
    return new


class FxSource:
    """The rates of ``[fx]``, read once per valuation and only if a model needs them; a failure to
    read them fails only the models that need them (each says why)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._rates: FxRates | None = None
        self._error: Exception | None = None

    def get(self) -> FxRates:
        if self._rates is None and self._error is None:
            from valuetrack.fx import load_rates

            try:
                fx = self.ctx.settings.fx
                stored = self.ctx.fx_rates.read() if fx is not None and fx.csv is None else None
                self._rates = load_rates(self.ctx.settings, stored)
            except Exception as exc:  # noqa: BLE001 - re-raised for each model that needs rates
                self._error = exc
        if self._error is not None:
            raise self._error
        assert self._rates is not None
        return self._rates


class ModelValuation:
    """One model's effect to date and the money it makes in any period: the single place where
    stored aggregates become value (portfolio, model page, reports all go through it)."""

    def __init__(self, reg: RegisteredModel, data: _ModelData, effect: Effect, as_of: dt.date,
                 currency: str, alpha: float, fx: FxSource | FxRates | None = None, notes: tuple[Any, ...] = (),
                 unexcluded: tuple[Any, Any] | None = None) -> None:
        self.reg, self.data, self.effect, self.as_of, self.currency, self.alpha = reg, data, effect, as_of, currency, alpha
        self.model_currency = reg.spec.currency or currency
        self._fx = fx
        self.notes = tuple(notes)
        """The model's active notes (valuetrack.store.notes): annotations, excluded windows, overrides."""
        self.unexcluded = unexcluded
        """With excluded windows: (data, effect) of the same model without them, for the comparison."""
        self.prepared: dict[str, Any] = {}
        """What the caller's ``prepare`` computed for this model (value_portfolio)."""

    @classmethod
    def load(cls, ctx: Context, reg: RegisteredModel, as_of: dt.date, *, alpha: float = 0.05,
             fx: FxSource | None = None, notes: Any = None) -> ModelValuation:
        from valuetrack.value.notes import exclude_days, exclusion_windows

        notes = tuple(ctx.notes.list(reg.name) if notes is None else notes)
        data = _ModelData.load(ctx.aggregates, reg.spec, as_of)
        if reg.spec.attribution.series is not None:  # kept structural fits (D52): fewer filter passes, same figures
            from valuetrack.attribution.timeseries import FitCache

            data = dataclasses.replace(data, fits=FitCache(ctx.ledger.fits(reg.name)))
        windows = exclusion_windows(notes)
        unexcluded = None
        if windows:  # the estimate without them too, to show what the exclusion changes (D36)
            unexcluded = (data, estimate_effect(reg.spec, data, as_of, alpha=alpha))
            data = exclude_days(data, windows)
        return cls(reg, data, estimate_effect(reg.spec, data, as_of, alpha=alpha), as_of, ctx.settings.currency, alpha,
                   fx if fx is not None else FxSource(ctx), notes, unexcluded)

    @property
    def foreign(self) -> bool:
        """True when the model's amounts are in another currency than the reporting one."""
        return self.model_currency != self.currency

    @property
    def rates(self) -> FxRates | None:
        """The [fx] rates (None for a model in the reporting currency); FxError/ConfigError when they
        cannot be read."""
        if not self.foreign:
            return None
        fx = self._fx.get() if isinstance(self._fx, FxSource) else self._fx
        if fx is None:
            raise FxError(f"no rates for {self.model_currency}: the model's currency is not the reporting currency "
                          f"{self.currency}, and no [fx] rates were given")
        return fx

    @functools.cached_property
    def _span(self) -> tuple[dt.date, dt.date]:
        """The days of the model's daily money: from its launch or first data, to the last day."""
        data = self.data
        firsts = [d for d in (self.live_from,
                              data.treated_by_day.index[0] if len(data.treated_by_day) else None,
                              data.predictions_by_day.index[0] if len(data.predictions_by_day) else None)
                  if d is not None]
        return (min(firsts) if firsts else self.last_day), self.last_day

    @functools.cached_property
    def rate(self) -> np.ndarray | None:
        """Each day's rate over the daily money's days (reporting currency per 1 unit of the model's
        currency), or None for a model in the reporting currency. FxError names the currency and the
        first day without a usable rate (one published at most 4 days before)."""
        if not self.foreign:
            return None
        first, last = self._span
        return self.rates.daily(self.model_currency, first, last)

    @property
    def live_from(self) -> dt.date | None:
        return _live_from(self.reg.spec, self.data)

    @property
    def last_day(self) -> dt.date:
        return self.as_of - dt.timedelta(days=1)

    @functools.cached_property
    def guardrail_estimates(self) -> list[Any]:
        """Each guardrail's effect to date (valuetrack.value.guardrails), by the model's A/B method."""
        if not self.reg.spec.guardrails:
            return []
        from valuetrack.value.guardrails import estimate_guardrails

        return estimate_guardrails(self.reg.spec, self.data.guardrails, self.data, self.as_of, self.alpha)

    @functools.cached_property
    def money(self) -> DailyMoney:
        """The model's money per day (value per unit, running cost, one-off costs incurred and
        amortised): the one place the manifest's (dated) amounts become daily money."""
        return self._money(self.rate)

    @functools.cached_property
    def money_native(self) -> DailyMoney:
        """The same daily money in the model's own currency (for its ``native`` figures)."""
        return self._money(None)

    def _money(self, rate: np.ndarray | None) -> DailyMoney:
        spec, data = self.reg.spec, self.data
        first = self._span[0]
        live_to = None
        if spec.status == "retired" and len(data.predictions_by_day):
            live_to = data.predictions_by_day.index[-1]
        end = spec.interventions[-1].end if spec.interventions else None
        if end is not None:  # the last intervention window closed: the model stopped serving (and costing) then
            live_to = end if live_to is None else min(live_to, end)
        return daily_money(first=first, last=self.last_day, monthly_cost=spec.monthly_cost,
                           cost_per_1k_predictions=spec.cost_per_1k_predictions,
                           value_per_unit=spec.kpi.value_per_unit, one_off_costs=spec.one_off_costs,
                           amortisation_months=spec.amortisation_months, live_from=self.live_from,
                           live_to=live_to, predictions=data.predictions_by_day, billed=self.billed, rate=rate)

    @functools.cached_property
    def billed(self) -> Any:
        """The model's billed cost per day and its settled days (valuetrack.value.billing), or None
        without ``[cost_source]``."""
        source = self.reg.spec.cost_source
        if source is None:
            return None
        from valuetrack.value.billing import billed_cost

        return billed_cost(self.data.billed, source, as_of=self.as_of, currency=self.model_currency, model=self.reg.name)

    def one_off_to(self, day: dt.date) -> float:
        """One-off costs incurred from the start of the series to ``day`` (for the payback date)."""
        m = self.money
        return m.total("one_off", m.days[0], day) if len(m.days) else 0.0

    @functools.cached_property
    def rate_today(self) -> float:
        """The last day's rate (forward-looking figures: holdout sizing, value at risk); 1 without one."""
        return float(self.rate[-1]) if self.rate is not None and len(self.rate) else 1.0

    def period(self, start: dt.date, end: dt.date) -> ModelValue:
        return self.periods([(start, end)])[0]

    def periods(self, bounds: list[tuple[dt.date, dt.date]]) -> list[ModelValue]:
        """:meth:`period` for each [start, end] of ``bounds`` (their money in one vectorised pass)."""
        values = _values_for(self.reg, self.data, self.effect, bounds, self.as_of, self.currency, self.alpha,
                             self.money, self.guardrail_estimates, foreign=self.foreign, adjust=self._adjust)
        return [self._finish(value, start, end) for value, (start, end) in zip(values, bounds)]

    def _finish(self, value: ModelValue, start: dt.date, end: dt.date) -> ModelValue:
        if self.foreign:
            value = dataclasses.replace(value, native=self._native(start, end))
        decisions = self.reg.spec.decisions
        if decisions is None:
            return value
        from valuetrack.value.decisions import decision_value

        return dataclasses.replace(value, decisions=decision_value(self.data.decisions, decisions, start, end,
                                                                   alpha=self.alpha).to_dict())

    def _native(self, start: dt.date, end: dt.date) -> dict[str, Any]:
        """The period's figures in the model's own currency, and the rates that converted them."""
        own = _value_for(self.reg, self.data, self.effect, start, end, self.as_of, self.model_currency, self.alpha,
                         self.money_native, self.guardrail_estimates)
        m = self.money
        used = self.rate[m._slice(start, end)] if self.rate is not None and end >= start else np.zeros(0)
        return {"currency": self.model_currency, "gross": own.gross, "cost": own.cost, "net": own.net,
                "rate_first": float(used[0]) if len(used) else None, "rate_last": float(used[-1]) if len(used) else None,
                "rate_mean": float(used.mean()) if len(used) else None}

    def to_date(self) -> ModelValue:
        value = self.period(self.live_from or self.last_day, self.last_day)
        months = self.months()
        payback = payback_date([m.period_start for m in months], [m.net or 0.0 for m in months],
                               [self.one_off_to(m.period_end) for m in months]) if months else None
        native = value.native
        if native is not None:
            days = self.money.days
            native = {**native, "one_off_costs": self.money_native.total("one_off", days[0], days[-1]) if len(days) else 0.0,
                      "one_off_costs_reporting": self.one_off_to(self.last_day)}
        return dataclasses.replace(value, payback_date=payback, holdout=self.holdout(value),
                                   health=self.health.to_dict(), exclusions=self.exclusions(), native=native)

    def _adjust(self, start: dt.date, end: dt.date, net: float | None, cost: float) -> dict[str, Any]:
        """The period's adjusted net value beside the unadjusted one (D37), as ModelValue fields."""
        from valuetrack.value.notes import adjusted, adjustment

        if end < start:
            return {"net_adjusted": net}

        def gross_between(lo: dt.date, hi: dt.date) -> float | None:
            return _value_for(self.reg, self.data, self.effect, lo, hi, self.as_of, self.currency, self.alpha,
                              self.money, foreign=self.foreign).gross

        total, rows = adjustment(self.notes, start, end, gross_between)
        return {"net_adjusted": adjusted(net, cost, total, rows), "override_amount": total, "overrides": rows or None}

    def exclusions(self) -> dict[str, Any] | None:
        """To date: the excluded windows and the estimate with and without them (D36), or None."""
        if self.unexcluded is None:
            return None
        from valuetrack.value.notes import comparison, exclusion_windows

        start, end = self.live_from or self.last_day, self.last_day
        raw_data, raw_effect = self.unexcluded
        with_value = _value_for(self.reg, self.data, self.effect, start, end, self.as_of, self.currency, self.alpha,
                                self.money, foreign=self.foreign)
        raw_value = _value_for(self.reg, raw_data, raw_effect, start, end, self.as_of, self.currency, self.alpha,
                               self.money, foreign=self.foreign)
        return comparison((self.effect, with_value), (raw_effect, raw_value), self.alpha,
                          exclusion_windows(self.notes), self.notes, _live_from(self.reg.spec, raw_data), end)

    @functools.cached_property
    def health(self) -> Any:
        """Health checks as of the valuation date (freshness, volume, drift, SRM, completeness)."""
        from valuetrack.value.health import model_health

        d = self.data
        return model_health(self.reg.spec, daily_exposures=d.daily, score_histogram=d.histogram, ab=d.ab,
                            last_ok=d.last_ok, as_of=self.as_of,
                            bin_edges=(d.last_ok or {}).get("bin_edges"), series=d.series)

    def holdout(self, value: ModelValue) -> dict[str, Any] | None:
        """Cost and sizing of the holdout to date (A/B models only)."""
        from valuetrack.value.holdout import size_holdout

        spec, ab = self.reg.spec, self.data.ab
        if self.effect.method != "ab" or not len(ab):
            return None
        ex = spec.attribution.exposures
        n_t, n_c = self.data.arm_units(ex.treatment), self.data.arm_units(ex.control)
        sizing = size_holdout(effect=self.effect.per_unit, effect_se=self.effect.per_unit_se, n_treatment=n_t,
                              n_control=n_c, value_per_unit=latest(spec.kpi.value_per_unit) * self.rate_today,
                              higher_is_better=spec.kpi.higher_is_better, cost=value.cost,
                              daily_units=self.data.units_after(self.last_day - dt.timedelta(days=28)) / 28.0,
                              alpha=self.alpha)
        return sizing.to_dict()

    def months(self) -> list[ModelValue]:
        """Value per calendar month from the first live month to the as-of month (partial months
        clipped); computed once per valuation (to date, payback and the ledger's months reuse it)."""
        return list(self._months)

    @functools.cached_property
    def _months(self) -> tuple[ModelValue, ...]:
        if self.live_from is None:
            return ()
        return tuple(self.periods([(max(first, self.live_from), last)
                                   for first, last in calendar_months(self.live_from, self.last_day).values()]))

    def look_window(self, live_days: int) -> tuple[int, ModelValue | None]:
        """A time-series model's first look for the flags (valuetrack.value.anytime.ts_look of its
        live days) and its figures over those days from launch; (0, None) for an A/B model or no look
        yet. Computed once per valuation (in the worker that valued the model, by :func:`value_one`)."""
        if "_look" not in self.__dict__:
            from valuetrack.value.anytime import ts_look

            look = int(ts_look(live_days)) if self.effect.method != "ab" and self.live_from is not None else 0
            window = self.period(self.live_from, self.live_from + dt.timedelta(days=look - 1)) if look else None
            self.__dict__["_look"] = (look, window)
        return self.__dict__["_look"]

    @functools.cached_property
    def ab_month_sums(self) -> tuple[np.ndarray, np.ndarray, Any] | None:
        """The A/B sums per month of mature cohorts the value at risk reads
        (valuetrack.value.portfolio_var.ab_month_sums)."""
        from valuetrack.value.portfolio_var import ab_month_sums

        return ab_month_sums(self)

    def for_parent(self) -> ModelValuation:
        """This valuation as a worker process sends it back (valuetrack.value.parallel): what the
        parent reads of it, without what it does not (D59). The parent reads the figures computed
        here (to date, months, health, ``prepared``, the flags' look window, the value at risk's
        monthly A/B sums and daily volumes) and computes only the months before the model went live
        (:meth:`periods`: the daily money, the running counts, the notes and decisions). Left here:
        the stored rows (A/B, series, daily, histogram, guardrails, bill), the time series'
        simulated paths (1.4 MB per structural model) and the estimate without excluded windows; a
        parent that read them would fail (:class:`_LeftInWorker`), never get other figures."""
        d = self.data
        for name in ("treated_by_day", "predictions_by_day", "_prefix", "ab_span", "_units"):
            getattr(d, name)  # cached in ``d`` before the rows they come from are left out
        for name in ("money", "health", "guardrail_estimates", "billed", "rate_today", "_months"):
            getattr(self, name)
        if self.foreign:
            self.money_native  # noqa: B018 - cached (the months before launch read it)
        left = {name: _LEFT for name in ("series", "daily", "histogram", "guardrails", "billed", "_ab_columns")}
        if self.effect.method == "ab" and d._units is not None:  # else the flags sum the rows themselves
            try:
                self.ab_month_sums  # noqa: B018 - cached
                left["ab"] = _LEFT
            except Exception:  # noqa: BLE001 - the value at risk reads the rows and says what failed
                pass
        data = object.__new__(type(d))
        data.__dict__.update(d.__dict__, **left)
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__, data=data, unexcluded=None, _fx=None)
        ts = self.effect.ts
        if ts is not None and getattr(ts, "paths", None) is not None:
            # the months before launch lie in the pre-period: no simulated path is read for them
            windows = tuple(_without_paths(w) for w in ts.windows)
            out.effect = dataclasses.replace(self.effect, ts=_without_paths(ts, windows=windows))
        return out

    def timeline(self) -> pd.DataFrame:
        """Daily view for charts.

        A/B models: per cohort day, the cumulative effect over all cohorts up to that day with its
        fixed-horizon interval (``ci_lo``, ``ci_hi``) and always-valid band (``cs_lo``, ``cs_hi``),
        ``provisional`` when the day's cohort is not yet mature, and the cumulative gross value to
        that day (``cum_gross`` with its standard error ``cum_gross_se``) using the effect to date,
        as the period figures do. Time-series models: the counterfactual frame of the fit (actual,
        counterfactual, bands, cumulative effect) with ``cum_net`` in money.
        """
        spec = self.reg.spec
        sign = 1.0 if spec.kpi.higher_is_better else -1.0
        vpu = spec.kpi.value_per_unit
        if self.effect.ts is not None:
            frame = self.effect.ts.to_frame()
            if len(frame):
                frame = frame.rename(columns={"date": "day"})
                if isinstance(vpu, tuple) or self.foreign:  # each day's gap at that day's value per unit
                    day = [d.date() if hasattr(d, "date") else d for d in frame["day"]]
                    amounts = self._vpu_on(day)
                    frame["cum_value"] = sign * np.nancumsum(frame["effect"].to_numpy(dtype=float) * amounts)
                else:
                    frame["cum_value"] = sign * frame["cum_effect"] * vpu
            return frame
        if self.effect.method != "ab" or not len(self.data.ab):
            return pd.DataFrame()
        return _ab_timeline(spec, self.data, self.effect, self.alpha, self.guardrail_estimates,
                            self._vpu_on if self.foreign or isinstance(vpu, tuple) else None,
                            self._rate_on if self.foreign else None)

    def _rate_on(self, days: list[dt.date]) -> np.ndarray:
        """Each day's rate (reporting currency per 1 unit of the model's); NaN outside the series."""
        m = self.money
        idx = m.days.get_indexer(days)
        return np.where(idx >= 0, m.rate[np.maximum(idx, 0)] if m.rate is not None and len(m.days) else np.nan, np.nan)

    def _vpu_on(self, days: list[dt.date]) -> np.ndarray:
        """The value per KPI unit in the reporting currency on each of ``days`` (dated amounts and
        rates: the daily money series); NaN on a day outside it."""
        m = self.money
        idx = m.days.get_indexer(days)
        return np.where(idx >= 0, m.value_per_unit[np.maximum(idx, 0)] if len(m.days) else np.nan, np.nan)


class _LeftInWorker:
    """In place of what a worker does not send back (ModelValuation.for_parent): reading it fails."""

    def _fail(self, *args: Any) -> Any:
        raise RuntimeError("this part of the valuation stayed in the worker process that valued the model "
                           "(ModelValuation.for_parent)")

    __len__ = __getitem__ = __iter__ = _fail


_LEFT = _LeftInWorker()


def _without_paths(ts: Any, **changes: Any) -> Any:
    """A time-series result without its simulated paths (the parent reads none)."""
    new = object.__new__(type(ts))
    new.__dict__.update(ts.__dict__, paths=_LEFT, **changes)
    return new


def _ab_timeline(spec: ModelSpec, data: _ModelData, effect: Effect, alpha: float,
                 guardrails: list[Any] | None = None, vpu_on: Any = None, rate_on: Any = None) -> pd.DataFrame:
    from valuetrack.attribution.ab import analyze_ab_batch

    ex = spec.attribution.exposures
    found = None if spec.attribution.allocation else _cumulative_arms(data.ab, (ex.control, ex.treatment),
                                                                       getattr(data, "_ab_columns", None))
    if found is not None:
        days, cum, cuped = found
    else:
        by_arm = {}
        for label in (ex.control, ex.treatment):
            rows = data.ab[data.ab["arm"] == label]
            by_arm[label] = rows.groupby("day")[list(_SUMS)].sum(min_count=1).astype(float)
        days = sorted(set(by_arm[ex.control].index) | set(by_arm[ex.treatment].index))
        cum = {k: v.reindex(days).fillna(0.0).cumsum() for k, v in by_arm.items()}
        cuped = all(v["sum_x"].notna().all() for v in by_arm.values())
    if not days:
        return pd.DataFrame()
    r = analyze_ab_batch(*_ab_inputs(spec, cum[ex.control], cum[ex.treatment], alpha, cuped))
    if spec.attribution.allocation:  # a ramp: the cumulative effect stratified by step, as the estimate is
        r = _ramp_timeline(spec, by_arm, days, alpha, cuped)
    columns = {"day": days, "effect": r["effect_abs"], "ci_lo": r["ci_abs"][..., 0], "ci_hi": r["ci_abs"][..., 1],
               "cs_lo": r["cs_abs"][..., 0], "cs_hi": r["cs_abs"][..., 1],
               "n_control": np.asarray(cum[ex.control]["n"]), "n_treatment": np.asarray(cum[ex.treatment]["n"]),
               "provisional": np.array([d > effect.mature_through for d in days], dtype=bool)}
    if effect.per_unit is not None:  # the frame is built once, with every column (not column by column)
        sign = 1.0 if spec.kpi.higher_is_better else -1.0
        vpu = spec.kpi.value_per_unit
        units = columns["n_treatment"]
        raw_units = units
        if vpu_on is not None:  # each day's treated units at that day's value per unit (dated, converted)
            new = np.diff(units, prepend=0.0)
            new = np.where(new != 0, new * np.nan_to_num(vpu_on(days)), 0.0)
            units, vpu = np.cumsum(new), 1.0
        columns["cum_gross"] = sign * effect.per_unit * units * vpu
        columns["cum_gross_se"] = (effect.per_unit_se or 0.0) * units * vpu
        extra = _guardrail_money(guardrails)
        if extra is not None:  # guardrails that enter net value, per treated unit
            if rate_on is not None:  # in the model's currency: each day's treated units at that day's rate
                new = np.diff(raw_units, prepend=0.0)
                raw_units = np.cumsum(np.where(new != 0, new * np.nan_to_num(rate_on(days)), 0.0))
            columns["cum_gross"] = columns["cum_gross"] + extra[0] * raw_units
            columns["cum_gross_se"] = columns["cum_gross_se"] + extra[1] * raw_units
    return pd.DataFrame(columns)


def _cumulative_arms(ab: pd.DataFrame, labels: tuple[str, str], columns: Any = None
                     ) -> tuple[list, dict[str, dict[str, np.ndarray]], bool] | None:
    """Per arm, the running sums of its daily statistics over the days of either arm (0 on a day
    without rows), and whether every row has a covariate: what a group-by per arm, a reindex and a
    cumulative sum give, in arrays. Only for one row per arm and day with numeric sums (the store's
    reads): then each day's sum is its row, and the running sums add the same numbers in the same
    order. None otherwise (the caller groups). ``columns``: the rows' day ordinals and arms when
    already at hand (_ModelData._ab_columns)."""
    if not len(ab) or any(ab[c].dtype.kind not in "iuf" for c in _SUMS):
        return None
    if columns is not None:
        ordinal, arm = columns[0], columns[1]
    else:
        arm = ab["arm"].to_numpy(dtype=object)
        day = ab["day"].tolist()
        if not all(type(d) is dt.date for d in day):
            return None
        ordinal = day_ordinals(day)
    values = np.column_stack([ab[k].to_numpy(dtype=float) for k in _SUMS])  # a frame of the columns cost 3× more
    masks = [arm == label for label in labels]
    if any(np.any(np.diff(ordinal[m]) <= 0) for m in masks):
        return None  # a day twice in an arm (or unsorted): grouped by the caller
    all_days = np.unique(np.concatenate([ordinal[m] for m in masks]))
    cum, cuped = {}, True
    for label, m in zip(labels, masks):
        rows = values[m]
        cuped = cuped and not np.isnan(rows[:, _SUMS.index("sum_x")]).any()
        full = np.zeros((len(all_days), len(_SUMS)))
        full[np.searchsorted(all_days, ordinal[m])] = np.where(np.isnan(rows), 0.0, rows)
        running = np.cumsum(full, axis=0)
        cum[label] = {k: running[:, i] for i, k in enumerate(_SUMS)}
    return [dt.date.fromordinal(o) for o in all_days.tolist()], cum, cuped


def _ramp_timeline(spec: ModelSpec, by_arm: dict[str, pd.DataFrame], days: list, alpha: float,
                   cuped: bool) -> dict[str, Any]:
    """Per cohort day, the effect to that day stratified by allocation step (attribution/ramp.py)."""
    from valuetrack.attribution import sequential
    from valuetrack.attribution.ramp import period_index, stratified_effect

    steps = list(spec.attribution.allocation)
    step = np.maximum(period_index(days, steps), 0)
    onehot = np.eye(len(steps))[step]  # (days, steps)
    cum = {k: {c: np.cumsum(v.reindex(days)[c].fillna(0.0).to_numpy()[:, None] * onehot, axis=0) for c in _SUMS}
           for k, v in by_arm.items()}
    from valuetrack.attribution.ab import ArmStats

    ex = spec.attribution.exposures
    fields = _SUMS if cuped else _SUMS[:3]
    c, t = (ArmStats(*(cum[arm][f] for f in fields)) for arm in (ex.control, ex.treatment))
    config = _ab_inputs(spec, by_arm[ex.control].sum(), by_arm[ex.treatment].sum(), alpha, cuped)[2]
    r = stratified_effect(c, t, np.array([a.treatment_share for a in steps]), config)
    n_total = np.asarray(c.n).sum(axis=1) + np.asarray(t.n).sum(axis=1)
    half = r["se_abs"] * sequential.cs_multiplier(n_total, alpha, config.sequential_tuning)
    return {"effect_abs": r["effect_abs"], "ci_abs": r["ci_abs"],
            "cs_abs": np.stack([r["effect_abs"] - half, r["effect_abs"] + half], axis=-1)}


# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ModelData:
    ab: pd.DataFrame
    series: pd.DataFrame
    daily: pd.DataFrame
    histogram: pd.DataFrame
    last_ok: dict[str, Any] | None
    treatment: str | None = None
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    guardrails: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per guardrail × day × arm sums of ``[[guardrails]]`` (AggregateStore.read_guardrails)."""
    refresh_error: str | None = None
    """Why the model's last refresh failed (its aggregates are the last good ones), or None."""
    billed: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The bill per day and currency (``day, currency, amount``) from ``[cost_source]``, days before the as-of."""
    first_day: dt.date | None = None
    """The first cohort day before any excluded window was taken out (launch, cost and live days
    follow the data as stored; value/notes.py)."""
    status: Any = None
    """The model's refresh status as read with its aggregates (AggregateStore.status), or None."""
    fits: Any = None
    """With a series: the structural fits kept from earlier valuations
    (valuetrack.attribution.timeseries.FitCache, D52); after the fit, the entries it used."""

    @functools.cached_property
    def treated_by_day(self) -> pd.Series:
        """Treated units per cohort day (sorted), for period sums."""
        if self._ab_columns is not None:  # whole counts on dates: from the arrays, as _by_day sums them
            days, arms, n = self._ab_columns
            treated = arms == self.treatment
            return _by_ordinal(days[treated], n[treated], "n")
        rows = self.ab[self.ab["arm"] == self.treatment] if len(self.ab) else self.ab
        return _by_day(rows, "n")

    @functools.cached_property
    def _ab_columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The A/B rows' day ordinals, arms and units, read once per valuation; None unless ``n``
        holds whole numbers and ``day`` dates (the store's reads; then pandas sums instead)."""
        n = self.ab["n"].to_numpy() if len(self.ab) else None
        if n is None or n.dtype.kind not in "iu":
            return None
        day = self.ab["day"].tolist()
        if set(map(type, day)) != {dt.date}:
            return None
        return day_ordinals(day), self.ab["arm"].to_numpy(dtype=object), n

    @functools.cached_property
    def _units(self) -> tuple[dict[str, float], np.ndarray, np.ndarray] | None:
        """Each arm's units (Σ n), and the A/B rows' day ordinals and units (whole counts), or None
        when ``n`` is not a whole-number column (then the sums below are taken by pandas)."""
        if self._ab_columns is None:
            return None
        days, arms, n = self._ab_columns
        return {a: float(n[arms == a].sum()) for a in set(arms.tolist())}, days, n

    def arm_units(self, arm: str) -> float:
        """Σ n of an arm's rows (the units it holds to date; whole counts, so exact in any order)."""
        if self._units is None:
            return float(self.ab.loc[self.ab["arm"] == arm, "n"].sum()) if len(self.ab) else 0.0
        return self._units[0].get(arm, 0.0)

    def units_after(self, day: dt.date) -> float:
        """Σ n of the rows of cohort days after ``day`` (both arms)."""
        if self._units is None:
            return float(self.ab.loc[self.ab["day"] > day, "n"].sum()) if len(self.ab) else 0.0
        _, days, n = self._units
        return float(n[days > day.toordinal()].sum())

    @functools.cached_property
    def ab_span(self) -> tuple[dt.date | None, dt.date | None]:
        """First and last stored cohort day (None, None without A/B rows); read once per valuation."""
        if not len(self.ab):
            return None, None
        days = self.ab["day"]
        return min(days), max(days)

    @functools.cached_property
    def predictions_by_day(self) -> pd.Series:
        return _by_day(self.daily, "n_exposures")

    @functools.cached_property
    def _prefix(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per daily count (treated units, predictions): its days and running sums from 0."""
        out = {}
        for name, series in (("treated", self.treated_by_day), ("predictions", self.predictions_by_day)):
            days = day_ordinals(series.index)
            out[name] = days, np.concatenate([[0.0], np.cumsum(np.nan_to_num(series.to_numpy(dtype=float)))])
        return out

    def count_between(self, which: str, start: dt.date, end: dt.date) -> tuple[float, int, int]:
        """The sum of a daily count (``treated`` or ``predictions``) over [start, end], its number of
        days with a row, and the position after the period's last day with a row. The counts are
        whole numbers, so the difference of running sums is the sum exactly, in O(log days) for
        each of a valuation's many periods."""
        days, running = self._prefix[which]
        lo = int(days.searchsorted(start.toordinal(), "left"))
        hi = int(days.searchsorted(end.toordinal(), "right"))
        if hi <= lo:
            return 0.0, 0, hi
        return float(running[hi] - running[lo]), hi - lo, hi

    @classmethod
    def load(cls, store: AggregateStore, spec: ModelSpec, as_of: dt.date) -> _ModelData:
        # the days before the as-of, selected in the database (the same rows, in the same order)
        ab = store.read_ab_by_day(spec.name, before=as_of)
        series = store.read_series(spec.name)
        if len(series):  # filtered after the pivot: a control series has a column even with no earlier day
            series = series[series["day"] < as_of]
        health = store.read_health(spec.name, before=as_of)
        daily, histogram = health["daily_exposures"], health["score_histogram"]
        treatment = spec.attribution.exposures.treatment if spec.attribution.exposures else None
        decisions = store.read_decisions(spec.name, before=as_of) if spec.decisions is not None else pd.DataFrame()
        status = store.status(spec.name)
        failed = status.last_attempt is not None and status.last_attempt["status"] == "failed"
        guardrails = store.read_guardrails(spec.name) if spec.guardrails else pd.DataFrame()
        billed = store.read_billed(spec.name, before=as_of) if spec.cost_source is not None else pd.DataFrame()
        return cls(ab, series, daily, histogram, status.last_ok, treatment, decisions, guardrails,
                   status.reason if failed else None, billed, status=status)


def _by_day(frame: pd.DataFrame, column: str) -> pd.Series:
    if not len(frame):
        return pd.Series([], dtype=float, index=pd.Index([], dtype="object"))
    counts, days = frame[column].to_numpy(), frame["day"].tolist()
    if counts.dtype.kind in "iu" and frame["day"].dtype == object and set(map(type, days)) == {dt.date}:
        return _by_ordinal(day_ordinals(days), counts, column)
    return frame.groupby("day")[column].sum().astype(float).sort_index()


def _by_ordinal(ordinal: np.ndarray, counts: np.ndarray, column: str) -> pd.Series:
    """Whole counts on day ordinals (the store's reads) summed per day by bincount, exactly as the
    group-by of :func:`_by_day`."""
    if not len(ordinal):
        return pd.Series([], dtype=float, index=pd.Index([], dtype="object"))
    distinct, where = np.unique(ordinal, return_inverse=True)
    index = pd.Index([dt.date.fromordinal(o) for o in distinct.tolist()], dtype="object", name="day")
    return pd.Series(np.bincount(where, weights=counts, minlength=len(distinct)), index=index, name=column)


def _between(series: pd.Series, start: dt.date, end: dt.date) -> pd.Series:
    """The part of a day-indexed, sorted series within [start, end]."""
    if not len(series):
        return series
    days = series.index
    return series.iloc[days.searchsorted(start, "left"):days.searchsorted(end, "right")]


def estimate_effect(spec: ModelSpec, data: _ModelData, as_of: dt.date, *, alpha: float = 0.05) -> Effect:
    """The model's effect to date from its stored aggregates, by its registered method (the
    registry in valuetrack.attribution.methods; an unknown method raises ValidationError)."""
    return get_method(spec.attribution.method).estimate(spec, data, as_of, alpha=alpha)


def _live_from(spec: ModelSpec, data: _ModelData) -> dt.date | None:
    if spec.interventions:
        return spec.interventions[0].start
    if data.first_day is not None:
        return data.first_day
    return data.ab_span[0]


def _guardrail_money(guardrails: list[Any] | None) -> tuple[float, float] | None:
    """Money per treated unit of the guardrails that enter net value and its standard error (the
    sum of theirs: their covariance with the KPI is not stored), or None when none does."""
    if not guardrails:
        return None
    from valuetrack.value.guardrails import enters_net, net_money_per_unit

    return net_money_per_unit(0.0, 0.0, guardrails) if enters_net(guardrails) else None


def _value_for(reg: RegisteredModel, data: _ModelData, effect: Effect, start: dt.date, end: dt.date,
               as_of: dt.date, currency: str, alpha: float, money_series: DailyMoney,
               guardrails: list[Any] | None = None, *, foreign: bool = False) -> ModelValue:
    return _values_for(reg, data, effect, [(start, end)], as_of, currency, alpha, money_series, guardrails,
                       foreign=foreign)[0]


def _values_for(reg: RegisteredModel, data: _ModelData, effect: Effect, periods: list[tuple[dt.date, dt.date]],
                as_of: dt.date, currency: str, alpha: float, money_series: DailyMoney,
                guardrails: list[Any] | None = None, *, foreign: bool = False,
                adjust: Callable[[dt.date, dt.date, float | None, float], dict[str, Any]] | None = None
                ) -> list[ModelValue]:
    """The model's figures for each of ``periods`` ([start, end] pairs). A valuation asks for some
    fifty periods per model (months, cumulative month-ends, to date): each period's sums are taken
    one by one, then the money of all of them in one vectorised :func:`money_value` (element-wise
    the same arithmetic as one period at a time: the same figures, bit for bit). ``adjust(start,
    end, net, cost)`` gives the overrides' fields of a period (ModelValuation._adjust)."""
    spec = reg.spec
    # a value per unit that changes by day (dated amounts, or a rate per day): summed day by day
    dated_vpu = isinstance(spec.kpi.value_per_unit, tuple) or foreign
    vpu = 1.0 if dated_vpu else spec.kpi.value_per_unit
    extra = _guardrail_money(guardrails) if effect.per_unit is not None else None
    k = len(periods)
    predictions, units, cost, amortisation, one_off = (np.zeros(k) for _ in range(5))
    gross, gross_se, weight, at = (np.full(k, np.nan) for _ in range(4))
    provisional, valued = np.zeros(k, dtype=bool), np.zeros(k, dtype=bool)
    for i, (start, end) in enumerate(periods):
        predictions[i] = data.count_between("predictions", start, end)[0]
        if end >= start:
            cost[i], amortisation[i], one_off[i] = money_series.totals(("cost", "amortised", "one_off"), start, end)
        g = g_se = None
        if effect.ts is not None:  # a daily gap (time-series and panel methods): summed over the period
            if end >= start:
                try:
                    if foreign:
                        g, g_se = _ts_money_daily(effect, money_series, start, end)
                    elif dated_vpu:
                        g, g_se = _ts_money(effect, money_series, start, end)
                    else:
                        g, g_se, _ = effect.ts.gap_between(start, end)
                    units[i] = 1.0
                except (ValueError, KeyError):
                    g, g_se = 0.0, 0.0  # the period lies outside the post-period
        elif effect.per_unit is not None:  # a per-unit effect (A/B) × the treated units of the period
            units[i], n_days, hi = data.count_between("treated", start, end)
            # provisional: the period's last cohort day with units is not yet mature
            provisional[i] = bool(n_days and effect.mature_through
                                  and data.treated_by_day.index[hi - 1] > effect.mature_through)
            g, g_se = effect.per_unit, effect.per_unit_se
        if g is None or g_se is None:
            continue
        valued[i], gross[i], gross_se[i] = True, g, g_se
        # a dated value per unit: each treated unit at the amount of its own day (Σ units × amount)
        weight[i] = money_series.weighted(_between(data.treated_by_day, start, end), start, end) \
            if dated_vpu and effect.ts is None else units[i]
        if extra is not None:  # their money is in the model's currency: each treated unit at its day's rate
            at[i] = money_series.weighted(_between(data.treated_by_day, start, end), start, end, "rate") \
                if money_series.rate is not None else units[i]
    money = loaded = None
    if valued.any():
        v = valued
        money = money_value(gross[v], gross_se[v], weight[v], vpu, spec.kpi.higher_is_better, cost[v], alpha=alpha)
        loaded = money_value(gross[v], gross_se[v], weight[v], vpu, spec.kpi.higher_is_better,
                             cost[v] + amortisation[v], alpha=alpha)
        if extra is not None:  # guardrails that enter net value (valuetrack.value.guardrails)
            total, total_se = money.gross + extra[0] * at[v], money.gross_se + extra[1] * at[v]
            money = money_value(total, total_se, 1.0, 1.0, True, cost[v], alpha=alpha)
            loaded = money_value(total, total_se, 1.0, 1.0, True, cost[v] + amortisation[v], alpha=alpha)
    row = np.cumsum(valued) - 1  # each valued period's place in the money arrays
    last_exposure = (data.last_ok or {}).get("max_exposure_ts")
    days_since = (as_of - (last_exposure.date() if isinstance(last_exposure, dt.datetime) else last_exposure)).days \
        if last_exposure else None
    live_from = _live_from(spec, data)
    if days_since is None and data.last_ok and spec.attribution.exposures is not None and live_from is not None:
        # a refresh found no exposure of it at all (its model_value matches no row?): none since launch
        days_since = max((as_of - live_from).days, 0)
    out = []
    for i, (start, end) in enumerate(periods):
        j = row[i] if valued[i] else None
        c, full = float(cost[i]), float(cost[i] + amortisation[i])
        net = num(money.net[j]) if j is not None else None
        value = ModelValue(
            model=spec.name, display_name=spec.display_name, team=spec.team, owner=spec.owner, status=spec.status,
            method=effect.method, kpi=spec.kpi.name, currency=currency, period_start=start, period_end=end,
            as_of=as_of, treated_units=float(units[i]), predictions=float(predictions[i]),
            gross=num(money.gross[j]) if j is not None else None,
            gross_se=num(money.gross_se[j]) if j is not None else None, cost=c, net=net,
            ci_net=(float(money.net_lo[j]), float(money.net_hi[j])) if j is not None else None,
            roi=num(money.roi[j]) if j is not None else None,
            ci_roi=(float(money.roi_lo[j]), float(money.roi_hi[j])) if j is not None and c > 0 else None,
            cost_one_off=float(one_off[i]), amortisation=float(amortisation[i]), cost_fully_loaded=full,
            net_fully_loaded=num(loaded.net[j]) if j is not None else None,
            ci_net_fully_loaded=(float(loaded.net_lo[j]), float(loaded.net_hi[j])) if j is not None else None,
            roi_fully_loaded=num(loaded.roi[j]) if j is not None else None,
            ci_roi_fully_loaded=(float(loaded.roi_lo[j]), float(loaded.roi_hi[j])) if j is not None and full > 0
            else None,
            amortisation_months=spec.amortisation_months or AMORTISATION_MONTHS,
            prob_positive=num(money.prob_positive[j]) if j is not None else None,
            expected_loss=num(money.expected_loss[j]) if j is not None else None,
            provisional=bool(provisional[i]), trusted=effect.trusted, reason=effect.reason,
            effect_abs=num(effect.per_unit) if effect.per_unit is not None else None,
            effect_se=num(effect.per_unit_se) if effect.per_unit_se is not None else None,
            effect_rel=effect.effect_rel, p_value=effect.p_value, srm_p_value=effect.srm_p_value,
            days_since_exposure=days_since, live_days=(as_of - live_from).days if live_from else 0,
            payback_date=None, registry_revision=reg.revision,
            data_window=data.ab_span,
            alpha=alpha, requested_method=effect.requested_method, method_reason=effect.method_reason,
            design={k: effect.details[k] for k in DESIGN_KEYS if k in effect.details} or None,
            cost_billing=_billing_summary(money_series, start, end) if spec.cost_source is not None else None,
            guardrails=[g.summary(float(units[i]), alpha) for g in guardrails] if guardrails else None,
            **(adjust(start, end, net, c) if adjust is not None else {}),
        )
        out.append(value)
    return out


def _billing_summary(money_series: DailyMoney, start: dt.date, end: dt.date) -> dict[str, Any] | None:
    """How the period's running cost splits between the settled bill and the estimate."""
    from valuetrack.value.billing import summary

    if money_series.billed is None:
        return None
    span = money_series._slice(start, end)
    lo, hi = span.start, span.stop
    estimate = money_series.estimated_cost[lo:hi]
    settled = money_series.settled[lo:hi]
    return summary(money_series.days[lo:hi], money_series.billed[lo:hi], settled, estimate)


def _ts_money_daily(effect: Effect, money_series: DailyMoney, start: dt.date, end: dt.date) -> tuple[float, float]:
    """A daily gap in money at a value per unit that changes every day (a rate per day): each day's
    gap at that day's amount; the standard error is the period's gap standard error at the mean
    amount of its days (the simulated paths are not re-weighted day by day: rates move far less
    than the gap's uncertainty; docs/methods-value.md, Currencies)."""
    days = money_series.days
    span = money_series._slice(start, end)
    lo, hi = span.start, span.stop
    amounts = money_series.value_per_unit[lo:hi]
    gap, gap_se, _ = effect.ts.gap_between(start, end)
    if not len(amounts):
        return 0.0, 0.0
    if np.all(amounts == amounts[0]):
        return gap * float(amounts[0]), gap_se * float(amounts[0])
    gross = sum(float(a) * effect.ts.gap_between(d, d)[0] for d, a in zip(days[lo:hi], amounts) if a)
    return gross, gap_se * float(amounts.mean())


def _ts_money(effect: Effect, money_series: DailyMoney, start: dt.date, end: dt.date) -> tuple[float, float]:
    """A daily gap in money when the value per unit changed: each stretch of one amount is summed at
    that amount. The standard error adds the stretches' errors (exact for one stretch, an upper
    bound otherwise: the stretches' gaps are correlated and their covariance is not kept)."""
    days = money_series.days
    span = money_series._slice(start, end)
    lo, hi = span.start, span.stop
    amounts = money_series.value_per_unit[lo:hi]
    if not len(amounts):
        gap, gap_se, _ = effect.ts.gap_between(start, end)
        return gap * float(money_series.value_per_unit[-1] if len(money_series.value_per_unit) else 0.0), 0.0
    breaks = [0, *[i for i in range(1, len(amounts)) if amounts[i] != amounts[i - 1]], len(amounts)]
    gross = se = 0.0
    for a, b in zip(breaks[:-1], breaks[1:]):
        gap, gap_se, _ = effect.ts.gap_between(days[lo + a], days[lo + b - 1])
        gross += float(amounts[a]) * gap
        se += float(amounts[a]) * gap_se
    return gross, se


DESIGN_KEYS = ("ramp", "challenger", "triangulation")


def _flag_frame(valuations: list[ModelValuation], values: list[ModelValue]) -> pd.DataFrame:
    """One row per active model with the columns of ``flags.REQUIRED`` (to-date ``values``)."""
    from valuetrack.value.anytime import planned_units

    rows = []
    for val, v in zip(valuations, values):
        spec = val.reg.spec
        if spec.status != "active":
            continue
        row = {"model": v.model, "family": "ab" if val.effect.method == "ab" else "ts", "live_days": v.live_days,
               "gross": _nan(v.gross), "gross_se": _nan(v.gross_se), "cost": v.cost, "net": _nan(v.net),
               "min_roi": spec.thresholds.min_roi, "unproven_after_days": spec.thresholds.unproven_after_days,
               "units": v.treated_units, "n_total": np.nan, "tuning": np.nan, "n_treatment": 0.0, "n_control": 0.0,
               "treatment_share": np.nan, "srm_p_value": v.srm_p_value,
               "look": 0, "look_gross": np.nan, "look_gross_se": np.nan, "look_cost": np.nan,
               # an A/B result is untrusted on SRM too; the flag rule tests SRM itself, sequentially
               "method_trusted": v.trusted or bool(val.effect.details.get("srm_alarm")),
               "method_reason": v.reason, "days_since_exposure": v.days_since_exposure,
               "has_data": v.gross is not None, "currency": v.currency}
        if row["family"] == "ab" and val.data.ab_span[0] is not None:  # the model has A/B rows
            ex = spec.attribution.exposures
            details = val.effect.details
            row["n_total"] = float(details.get("n_control") or 0) + float(details.get("n_treatment") or 0)
            row["n_treatment"] = val.data.arm_units(ex.treatment)
            row["n_control"] = val.data.arm_units(ex.control)
            row["treatment_share"] = spec.attribution.treatment_share
            row["triangulation"] = details.get("triangulation")
            design_srm = (details.get("ramp") or details.get("challenger") or {}).get("srm_log_e_value")
            if design_srm is not None:  # the design's own sequential SRM (schedule, or all arms)
                row["srm_log_e"], row["treatment_share"] = design_srm, np.nan
            recent = val.data.units_after(val.last_day - dt.timedelta(days=28))
            row["tuning"] = float(planned_units(recent / 28.0, spec.thresholds.unproven_after_days))
            if spec.guardrails:
                from valuetrack.value.guardrails import flag_inputs

                row["guardrails"] = flag_inputs(val.guardrail_estimates)
        elif row["family"] == "ts" and val.live_from is not None:
            look, window = val.look_window(v.live_days)
            if window is not None:
                row.update(look=look, look_gross=_nan(window.gross), look_gross_se=_nan(window.gross_se),
                           look_cost=window.cost)
        rows.append(row)
    from valuetrack.value.flags import REQUIRED

    return pd.DataFrame(rows, columns=[*REQUIRED, "srm_log_e", "triangulation", "guardrails"])


def _nan(x: float | None) -> float:
    return np.nan if x is None else x
