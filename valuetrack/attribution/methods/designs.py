"""Designs beyond one holdout, for the ``ab`` method (docs/methods-ab.md):

- a **ramped rollout** (``[[attribution.allocation]]``): the effect stratified by allocation period;
- a **challenger** (``[attribution.challenger]``): champion and challenger each valued against the
  holdout and against each other on net value per unit, with a recommendation;
- **triangulation** (a holdout *and* ``[attribution.series]`` with a launch date): the holdout's and
  the time series' totals over the same days compared at the scheduled looks.

Each takes the two-arm :class:`Effect` of the holdout and returns it with its fields replaced or its
``details`` extended; the model's value stays the champion's against the holdout.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from valuetrack.attribution.methods.base import Effect, NotEstimable

if TYPE_CHECKING:  # pragma: no cover
    from valuetrack.registry.spec import ModelSpec

DAYS_PER_MONTH = 365.25 / 12


def _arm_sums(rows: pd.DataFrame, arm: str, periods: np.ndarray | None = None, n_periods: int = 1) -> pd.DataFrame:
    """Per-period sums of one arm (one row per period, zeros where a period has no rows)."""
    from valuetrack.attribution.methods.ab import SUMS

    mine = rows[rows["arm"] == arm] if len(rows) else rows
    key = periods[(rows["arm"] == arm).to_numpy()] if periods is not None else np.zeros(len(mine), dtype=int)
    out = mine[list(SUMS)].astype(float).groupby(key).sum(min_count=1)
    return out.reindex(range(n_periods)).fillna({"n": 0.0, "sum_y": 0.0, "sum_y2": 0.0})


def _json(x: Any) -> Any:
    a = np.asarray(x)
    if a.dtype.kind == "f":
        return [None if not np.isfinite(v) else float(v) for v in a.reshape(-1)] if a.ndim else (
            float(a) if np.isfinite(a) else None)
    return a.tolist()


# -- ramped rollouts ----------------------------------------------------------------------------


def ramped(spec: ModelSpec, mature: pd.DataFrame, effect: Effect, alpha: float, cuped: bool) -> Effect:
    """The effect stratified by the allocation period of each cohort day (a unit's first exposure)."""
    from valuetrack.attribution import sequential
    from valuetrack.attribution.methods.ab import ab_inputs
    from valuetrack.attribution.ramp import period_index, stratified_effect

    a = spec.attribution
    ex = a.exposures
    steps = a.allocation
    # days before the first step belong to it: its share holds from the launch
    period = np.maximum(period_index(pd.to_datetime(mature["day"]).dt.date.tolist(), list(steps)), 0)
    n = len(steps)
    c, t, config = ab_inputs(spec, _arm_sums(mature, ex.control, period, n), _arm_sums(mature, ex.treatment, period, n),
                             alpha, cuped)
    shares = np.array([s.treatment_share for s in steps])
    r = stratified_effect(c, t, shares, config)
    est, se = float(r["effect_abs"]), float(r["se_abs"])
    if not np.isfinite(est):
        return Effect.none("ab", "no allocation period has units in both arms yet", effect.mature_through)
    srm_p = float(r["srm_p_value"])
    base = effect.details.get("mean_control")
    n_total = float(np.sum(c.n) + np.sum(t.n))
    half_cs = se * float(sequential.cs_multiplier(n_total, alpha, config.sequential_tuning))
    srm_alarm = srm_p < config.srm_alpha
    reason = (f"sample ratio mismatch against the allocation schedule (chi-squared p = {srm_p:.3g} < "
              f"{config.srm_alpha:g}); assignment or logging is broken, do not trust the effect") if srm_alarm else None
    details = {**effect.details, "effect_abs": est, "se_abs": se, "ci_abs": _json(r["ci_abs"]),
               "cs_abs": [est - half_cs, est + half_cs], "p_value": float(r["p_value"]),
               "srm_p_value": srm_p, "srm_alarm": srm_alarm, "trusted": not srm_alarm, "reason": reason,
               "effect_rel": est / base if base else None, "se_rel": None, "ci_rel": None, "cs_rel": None,
               "p_value_seq": None, "e_value": None, "p_value_rel": None, "p_value_seq_rel": None, "e_value_rel": None,
               "ramp": {"periods": [{"from": s.start.isoformat(), "treatment_share": s.treatment_share,
                                     "n_control": float(nc), "n_treatment": float(nt), "weight": w}
                                    for s, nc, nt, w in zip(steps, c.n, t.n, _json(r["weights"]))],
                        "pooled_effect_abs": _json(r["pooled_effect_abs"]),
                        "srm_log_e_value": float(r["srm_log_e_value"]), "note": r["note"].item()}}
    return dataclasses.replace(effect, per_unit=est, per_unit_se=se, effect_rel=details["effect_rel"],
                               p_value=details["p_value"], srm_p_value=srm_p, trusted=not srm_alarm,
                               reason=reason, details=details)


# -- champion vs challenger --------------------------------------------------------------------


def _cost_per_unit(monthly: float, per_1k: float, predictions: float, units: float, days: int) -> float:
    cost = monthly * days / DAYS_PER_MONTH + per_1k * predictions / 1000.0
    return cost / units if units > 0 else float("nan")


def with_challenger(spec: ModelSpec, mature: pd.DataFrame, data: Any, effect: Effect, alpha: float, cuped: bool,
                    as_of: dt.date) -> Effect:
    """Champion vs challenger against the holdout and each other; the recommendation in details."""
    from valuetrack.attribution.ab import ArmStats
    from valuetrack.attribution.methods.ab import ab_inputs
    from valuetrack.attribution.multiarm import Design, compare_versions
    from valuetrack.registry.spec import latest

    a = spec.attribution
    ex, ch = a.exposures, a.challenger
    sums = {arm: _arm_sums(mature, arm).iloc[0] for arm in (ex.control, ex.treatment, ch.arm)}
    if sums[ch.arm]["n"] < 2:
        return dataclasses.replace(effect, details={**effect.details, "challenger": {
            "arm": ch.arm, "label": ch.label or ch.arm, "recommendation": "not enough evidence yet",
            "reason": "no mature cohorts of the challenger yet"}})
    c, t, config = ab_inputs(spec, sums[ex.control], sums[ex.treatment], alpha, cuped)
    _, v, _ = ab_inputs(spec, sums[ex.control], sums[ch.arm], alpha, cuped)
    arms: dict[str, ArmStats] = {ex.control: c, ex.treatment: t, ch.arm: v}
    days = max(len(set(mature["day"])), 1)
    daily = data.daily if getattr(data, "daily", None) is not None else pd.DataFrame()
    mt = effect.mature_through
    preds = {}
    for arm in (ex.treatment, ch.arm):
        rows = daily[(daily["arm"] == arm) & (daily["day"] <= mt)] if len(daily) and "arm" in daily else daily.iloc[0:0]
        preds[arm] = float(rows["n_exposures"].sum()) if len(rows) else float(sums[arm]["n"])
    costs = {ex.control: 0.0,
             # the decision is about what each version costs from now on: the amounts in effect today
             ex.treatment: _cost_per_unit(latest(spec.monthly_cost), latest(spec.cost_per_1k_predictions),
                                          preds[ex.treatment],
                                          float(sums[ex.treatment]["n"]), days),
             ch.arm: _cost_per_unit(ch.monthly_cost, ch.cost_per_1k_predictions, preds[ch.arm], float(sums[ch.arm]["n"]),
                                    days)}
    shares = {ex.control: 1.0 - a.treatment_share - ch.treatment_share, ex.treatment: a.treatment_share,
              ch.arm: ch.treatment_share}
    recent = mature[mature["day"] > mt - dt.timedelta(days=28)] if len(mature) else mature
    per_day = float(recent["n"].sum()) / 28.0 if len(recent) else None
    r = compare_versions(arms, Design(ex.control, ex.treatment, ch.arm, shares, costs),
                         value_per_unit=latest(spec.kpi.value_per_unit), higher_is_better=spec.kpi.higher_is_better,
                         config=config, daily_units=per_day)
    label = ch.label or ch.arm
    comparisons = {}
    for name, cmp in r["comparisons"].items():
        comparisons[name] = {"net_per_unit": _json(cmp["net_per_unit"]), "se": _json(cmp["se"]),
                             "cs": _json(cmp["cs"]), "log_e_value": _json(cmp["log_e_value"]),
                             "significant": bool(cmp["significant"])}
    days_left = float(r["days_to_decision"]) if per_day else float("nan")
    out = {"arm": ch.arm, "label": label, "recommendation": str(r["recommendation"]),
           "days_to_decision": None if not np.isfinite(days_left) else int(days_left),
           "decision_in_sight": bool(np.isfinite(days_left)) or str(r["recommendation"]) != "not enough evidence yet",
           "comparisons": comparisons, "cost_per_unit": {k: _json(val) for k, val in costs.items()},
           "planned_shares": shares, "n": {k: float(sums[k]["n"]) for k in sums},
           "srm_p_value": _json(r["srm_p_value"]), "srm_log_e_value": _json(r["srm_log_e_value"])}
    return dataclasses.replace(effect, details={**effect.details, "challenger": out})


# -- triangulation -------------------------------------------------------------------------------


def triangulated(spec: ModelSpec, data: Any, effect: Effect, as_of: dt.date, alpha: float) -> Effect:
    """The holdout's and the time series' totals over launch … launch + the last scheduled look."""
    from valuetrack.attribution import methods
    from valuetrack.attribution.triangulate import compare_methods
    from valuetrack.attribution.sequential import ts_look

    if effect.per_unit is None or effect.per_unit_se is None:
        return effect
    launch = spec.interventions[0].start
    look = int(ts_look((as_of - launch).days))
    out: dict[str, Any] = {"look": look, "ts_method": "structural" if spec.attribution.series.controls else "its"}
    if not look:
        out["status"] = "waiting for the first scheduled look (day 30 after the launch)"
        return dataclasses.replace(effect, details={**effect.details, "triangulation": out})
    try:
        ts = methods.get(out["ts_method"]).estimate(spec, data, as_of, alpha=alpha)
    except NotEstimable as exc:
        out["status"] = f"the time series gave no estimate: {exc.message}"
        return dataclasses.replace(effect, details={**effect.details, "triangulation": out})
    if ts.ts is None:
        out["status"] = ts.reason or "no time-series estimate yet"
        return dataclasses.replace(effect, details={**effect.details, "triangulation": out})
    end = launch + dt.timedelta(days=look - 1)
    ex = spec.attribution.exposures
    ab = data.ab
    treated = ab[(ab["arm"] == ex.treatment) & (ab["day"] >= launch) & (ab["day"] <= end)] if len(ab) else ab
    units = float(treated["n"].sum()) if len(treated) else 0.0
    try:
        gap, gap_se, _ = ts.ts.gap_between(launch, end)
    except (ValueError, KeyError) as exc:
        out["status"] = f"the time series does not cover launch … day {look}: {exc}"
        return dataclasses.replace(effect, details={**effect.details, "triangulation": out})
    r = compare_methods(effect.per_unit * units, effect.per_unit_se * units, gap, gap_se, alpha)
    out.update(status="compared", window=[launch.isoformat(), end.isoformat()], treated_units=units,
               ab_total=effect.per_unit * units, ab_se=effect.per_unit_se * units, ab_trusted=effect.trusted,
               ts_total=float(gap), ts_se=float(gap_se), ts_trusted=ts.trusted, ts_reason=ts.reason,
               difference=float(r["difference"]), se=float(r["se"]), p_value=float(r["p_value"]),
               level=float(r["level"]), disagree=bool(r["disagree"]))
    return dataclasses.replace(effect, details={**effect.details, "triangulation": out})
