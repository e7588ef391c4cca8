"""The portfolio's value at risk, from the valuations a :class:`PortfolioValue` already holds.

Turns each active model's stored aggregates into the inputs of :mod:`valuetrack.value.var`
(daily volume, today's money per unit of volume net of per-prediction cost, the month-by-month
estimates for the drift, fixed cost, shared KPI and overlap) and simulates the next 12 months and
the next month. Runs where valuation runs (the end of a refresh); pages, the CLI and reports read
the stored result. docs/methods-var.md explains the method and its assumptions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from valuetrack import __version__
from valuetrack.jsonsafe import num
from valuetrack.registry.spec import latest
from valuetrack.value.var import VarModelInput, fit, values_at_risk

HISTORY_DAYS = 365
"""Days of volume history the factor model is estimated on."""
HORIZONS = {"12m": 365, "1m": 30}
"""Horizons simulated, in days from the as-of date."""
LEVEL = 0.05
PATHS = 4000
SEED = 20


@dataclass(frozen=True)
class PortfolioVar:
    """The portfolio's value at risk at an as-of date.

    Attributes:
        as_of: the as-of date (simulations start on it: the first day without data).
        currency: the reporting currency.
        level: the tail probability (0.05).
        horizons: "12m" and "1m": each a :class:`valuetrack.value.var.VarResult` dict (expected,
            var, es, per-model figures).
        models: the models simulated.
        left_out: models not simulated, each {"model", "reason"}.
        factor: the fitted common demand factor: persistence ``phi``, ``days`` used, each model's
            ``loading`` and the ``mean_correlation`` of log volume it implies between models.
        paths, seed: the simulation's size and seed; version: the library version.
    """

    as_of: dt.date
    currency: str
    level: float
    horizons: dict[str, dict[str, Any]]
    models: list[str]
    left_out: list[dict[str, str]]
    factor: dict[str, Any]
    paths: int = PATHS
    seed: int = SEED
    version: str = __version__
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def portfolio_var(pv: Any, *, paths: int = PATHS, seed: int = SEED) -> PortfolioVar:
    """The 5 % value at risk and expected shortfall of ``pv``'s active models (a to-date
    :class:`valuetrack.value.portfolio.PortfolioValue`), at 12 months and at 1 month."""
    last = pv.as_of - dt.timedelta(days=1)
    days = [last - dt.timedelta(days=HISTORY_DAYS - 1 - t) for t in range(HISTORY_DAYS)]
    values = {m.model: m for m in pv.models}
    kept, left_out = [], []
    for name, valuation in pv.valuations.items():
        reason = _left_out_reason(valuation, values.get(name))
        if reason:
            left_out.append({"model": name, "reason": reason})
        else:
            kept.append(valuation)
    monthly = _ab_monthly([v for v in kept if v.effect.method == "ab"])
    inputs = [_model_input(v, days, monthly.get(v.reg.name)) for v in kept]
    notes = []
    if not inputs:
        return PortfolioVar(pv.as_of, pv.currency, LEVEL, {}, [], left_out, {}, paths, seed,
                            notes=["no active model has a value estimate yet"])
    overlap = _overlap_matrix([m.name for m in inputs], pv.overlaps)
    fm = fit(inputs, days, overlap)
    horizons = {h: r.to_dict() for h, r in values_at_risk(inputs, fm, pv.as_of, HORIZONS, level=LEVEL, paths=paths,
                                                            seed=seed).items()}
    corr = fm.volume_correlation()
    off = ~np.eye(len(inputs), dtype=bool)
    factor = {"phi": num(fm.phi_f), "days": fm.days_used,
              "mean_correlation": num(corr[off].mean()) if off.any() else None,
              "loadings": {m.name: num(x) for m, x in zip(inputs, fm.loadings)},
              "drift_sd": {m.name: num(x) for m, x in zip(inputs, fm.drift_sd)}}
    if len(inputs) == 1:
        notes.append("one model: no correlation to estimate")
    return PortfolioVar(pv.as_of, pv.currency, LEVEL, horizons, [m.name for m in inputs], left_out, factor,
                        paths, seed, notes=notes)


def _left_out_reason(valuation: Any, value: Any) -> str | None:
    if valuation.reg.spec.status != "active":
        return "retired"
    if value is None or value.state != "ok":
        return "could not be valued"
    if value.gross is None:
        return value.reason or "no value estimate yet"
    return None


def _model_input(valuation: Any, days: list[dt.date], ab_monthly: tuple[np.ndarray, np.ndarray] | None) -> VarModelInput:
    """The simulation's inputs for one model (``ab_monthly``: an A/B model's monthly estimates)."""
    spec, data, effect = valuation.reg.spec, valuation.data, valuation.effect
    sign = 1.0 if spec.kpi.higher_is_better else -1.0
    # a forecast: the amounts in effect today (dated amounts: the newest)
    rate = valuation.rate_today  # forward-looking: today's rate into the reporting currency
    vpu = latest(spec.kpi.value_per_unit) * rate
    per_prediction = latest(spec.cost_per_1k_predictions) / 1000.0 * rate
    if effect.method == "ab":
        volume = _daily(data.treated_by_day, days)
        predictions = _daily(data.predictions_by_day, days)
        ratio = _ratio(predictions, volume)
        per_unit = sign * effect.per_unit * vpu - per_prediction * ratio
        monthly, ses = ab_monthly
        monthly, ses = sign * monthly * vpu - per_prediction * ratio, ses * vpu
    else:  # a time series: the counterfactual gap per day, scaled by predictions when logged
        months = [m for m in valuation.months() if m.gross is not None]
        lengths = np.array([(m.period_end - m.period_start).days + 1 for m in months], dtype=float)
        predictions = _daily(data.predictions_by_day, days)
        has_volume = np.isfinite(predictions).sum() >= 28
        volume = predictions if has_volume else np.ones(len(days))
        per_day = float(np.nanmean(volume[-90:]))
        gross = np.array([m.gross for m in months], dtype=float) / lengths / per_day
        gross_se = np.array([m.gross_se or 0.0 for m in months], dtype=float) / lengths / per_day
        recent = gross[-3:] if len(gross) else np.array([0.0])
        per_unit = float(np.mean(recent)) - (per_prediction if has_volume else 0.0)
        monthly, ses = gross - (per_prediction if has_volume else 0.0), gross_se
    out = spec.attribution.outcomes
    kpi = f"{spec.connection}|{out.table}|{out.value}|{(out.where or '').strip()}" if out is not None else None
    return VarModelInput(spec.name, volume, float(per_unit), np.asarray(monthly, dtype=float),
                         np.asarray(ses, dtype=float), float(latest(spec.monthly_cost)) * rate, kpi)


def _daily(series: pd.Series, days: list[dt.date]) -> np.ndarray:
    return series.reindex(days).to_numpy(dtype=float) if len(series) else np.full(len(days), np.nan)


def _ratio(predictions: np.ndarray, volume: np.ndarray) -> float:
    """Predictions per unit of volume (for per-prediction cost), over days with both."""
    ok = np.isfinite(predictions) & np.isfinite(volume) & (volume > 0)
    return float(predictions[ok].sum() / volume[ok].sum()) if ok.any() else 0.0


def _ab_monthly(valuations: list[Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each A/B model's effect per treated unit of each month's mature cohorts, with standard errors
    (model name → (effects, standard errors), oldest month first); the months of all the models
    that share analysis settings are analysed in one batch."""
    from valuetrack.attribution.ab import ArmStats, analyze_ab_batch
    from valuetrack.value.portfolio import _SUMS

    out = {v.reg.name: (np.empty(0), np.empty(0)) for v in valuations}
    batches: dict[Any, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for v in valuations:
        sums = v.ab_month_sums  # computed with the model (in its worker, when there is one)
        if sums is not None:
            batches.setdefault(sums[2], []).append((v.reg.name, sums[0], sums[1]))
    for config, members in batches.items():
        fields = len(_SUMS) if config.cuped else 3
        c, t = (np.concatenate([m[k] for m in members])[:, :fields] for k in (1, 2))
        r = analyze_ab_batch(ArmStats(*c.T), ArmStats(*t.T), config)
        cuts = np.cumsum([len(m[1]) for m in members])[:-1]
        for (name, _, _), effect, se in zip(members, np.split(np.asarray(r["effect_abs"], dtype=float), cuts),
                                            np.split(np.asarray(r["se_abs"], dtype=float), cuts)):
            out[name] = (effect, se)
    return out


def ab_month_sums(valuation: Any) -> tuple[np.ndarray, np.ndarray, Any] | None:
    """Per month with mature cohorts in both arms: the control's and the treatment's sums (months ×
    ``SUMS``; missing values skipped, NaN where a month has none) and the model's analysis settings."""
    from valuetrack.value.portfolio import _SUMS, _ab_inputs

    spec, ab, effect = valuation.reg.spec, valuation.data.ab, valuation.effect
    ex = spec.attribution.exposures
    if not len(ab):
        return None
    days, day = pd.factorize(ab["day"])  # a cohort day's rows share their month and maturity
    months, month = np.unique(np.array([d.year * 12 + d.month - 1 for d in day])[days], return_inverse=True)
    mature = np.array([d <= effect.mature_through for d in day])[days]
    in_month = (month[:, None] == np.arange(len(months))[None, :]) & mature[:, None]  # rows × months
    arm = ab["arm"].to_numpy()
    values = np.column_stack([ab[k].to_numpy(dtype=float) for k in _SUMS])
    sums, rows = {}, {}
    for label in (ex.control, ex.treatment):
        mask = (in_month & (arm == label)[:, None]).T.astype(float)  # months × rows
        rows[label] = mask.sum(axis=1)
        sums[label] = np.where(mask @ np.isfinite(values) > 0, mask @ np.nan_to_num(values), np.nan)  # months × sums
    both = (rows[ex.control] > 0) & (rows[ex.treatment] > 0)
    if not both.any():
        return None
    c, t = (sums[label][both] for label in (ex.control, ex.treatment))
    cuped = bool(np.isfinite(c[:, 3]).all() and np.isfinite(t[:, 3]).all())  # every month has Σx
    config = _ab_inputs(spec, dict(zip(_SUMS, c[0])), dict(zip(_SUMS, t[0])), valuation.alpha, cuped)[2]
    return c, t, config


def _overlap_matrix(names: list[str], overlaps: list[Any]) -> np.ndarray:
    """Share of common units between two models: √(share_a·share_b), the correlation of two sums
    over units that have that many units in common (0 where they share none)."""
    index = {n: i for i, n in enumerate(names)}
    m = np.zeros((len(names), len(names)))
    for o in overlaps:
        if o.model_a in index and o.model_b in index and o.share_a is not None and o.share_b is not None:
            i, j = index[o.model_a], index[o.model_b]
            m[i, j] = m[j, i] = float(np.sqrt(o.share_a * o.share_b))
    return m
