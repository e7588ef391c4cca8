"""Money: gross value, cost, net value, ROI, P(net value > 0), payback.

Definitions (docs/methods-value.md):
- gross value of a period = per-unit effect × treated units first exposed in the period × value per
  unit, sign-flipped for lower-is-better KPIs so that positive always means good. The effect is the
  one estimated on all mature cohorts to date, so the months of a year add up exactly to the year.
- net = gross − cost; ROI = net / cost (None when the cost is 0).
- The interval of net is gross's interval shifted by the (known) cost; ROI's is gross's ÷ cost − 1.
  Intervals come from standard errors (normal approximation), never by adding bounds.
- P(net > 0) under a flat prior on the effect: Φ(net / se).

Everything here is vectorised over arrays of models or periods.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from valuetrack.errors import ParameterError

PRIOR = "flat prior on the effect (normal approximation)"


@dataclass(frozen=True)
class ValueArrays:
    """Value figures for k models or periods (arrays of shape (k,)); NaN where undefined.

    Attributes:
        gross, gross_se: gross value and its standard error (money).
        cost: cost of the period (money), treated as known.
        net, net_lo, net_hi: net value and its two-sided 1 − alpha interval.
        roi, roi_lo, roi_hi: net / cost and its interval (NaN when cost is 0).
        prob_positive: P(net value > 0) under a flat prior.
        expected_loss: E[max(0, −net)] under the same posterior (money at risk).
    """

    gross: np.ndarray
    gross_se: np.ndarray
    cost: np.ndarray
    net: np.ndarray
    net_lo: np.ndarray
    net_hi: np.ndarray
    roi: np.ndarray
    roi_lo: np.ndarray
    roi_hi: np.ndarray
    prob_positive: np.ndarray
    expected_loss: np.ndarray
    alpha: float = field(default=0.05)


def money_value(
    effect: Any,
    effect_se: Any,
    units: Any,
    value_per_unit: Any,
    higher_is_better: Any,
    cost: Any,
    *,
    alpha: float = 0.05,
) -> ValueArrays:
    """Gross/net value, ROI and their uncertainty from a per-unit effect.

    Args:
        effect: per-unit absolute effect on the KPI (treatment − control), shape (k,).
        effect_se: its standard error.
        units: treated units first exposed in the period (for a time-series model pass 1 and the
            period's total gap as ``effect``).
        value_per_unit: money per KPI unit.
        higher_is_better: False flips the sign (a reduction of losses is a gain).
        cost: the period's cost in money.
        alpha: 1 − interval level.
    """
    if not 0 < alpha < 1:
        raise ParameterError(f"alpha must be in (0, 1), got {alpha}")
    effect, effect_se, units, vpu, cost = (np.asarray(a, dtype=float) for a in (effect, effect_se, units, value_per_unit, cost))
    sign = np.where(np.asarray(higher_is_better, dtype=bool), 1.0, -1.0)
    if np.any(effect_se < 0) or np.any(units < 0) or np.any(vpu < 0) or np.any(cost < 0):
        raise ParameterError("effect_se, units, value_per_unit and cost must be >= 0")
    gross = sign * effect * units * vpu
    gross_se = effect_se * units * vpu
    net = gross - cost
    z = stats.norm.ppf(1 - alpha / 2)
    net_lo, net_hi = net - z * gross_se, net + z * gross_se
    with np.errstate(divide="ignore", invalid="ignore"):
        has_cost = cost > 0
        roi = np.where(has_cost, net / cost, np.nan)
        roi_lo = np.where(has_cost, net_lo / cost, np.nan)
        roi_hi = np.where(has_cost, net_hi / cost, np.nan)
        zscore = np.where(gross_se > 0, net / gross_se, np.sign(net) * np.inf)
    prob_positive = np.where(gross_se > 0, stats.norm.cdf(zscore), (net > 0).astype(float))
    expected_loss = _expected_shortfall(net, gross_se)
    return ValueArrays(gross, gross_se, cost, net, net_lo, net_hi, roi, roi_lo, roi_hi, prob_positive, expected_loss, alpha)


def _expected_shortfall(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """E[max(0, −X)] for X ~ N(mean, sd²); max(0, −mean) when sd = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(sd > 0, mean / sd, 0.0)
        normal = sd * stats.norm.pdf(u) - mean * stats.norm.cdf(-u)
    return np.where(sd > 0, normal, np.maximum(0.0, -mean))


def one_sided_p_below(estimate: Any, se: Any, bound: Any) -> np.ndarray:
    """p-value of H0: true value ≥ bound against H1: true value < bound (normal)."""
    estimate, se, bound = (np.asarray(a, dtype=float) for a in (estimate, se, bound))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (estimate - bound) / se, np.where(estimate < bound, -np.inf, np.inf))
    return stats.norm.cdf(z)


def period_cost(
    monthly_cost: float,
    cost_per_1k_predictions: float,
    predictions: float,
    start: dt.date,
    end: dt.date,
    live_from: dt.date | None,
    live_to: dt.date | None = None,
) -> float:
    """Cost of [start, end] (inclusive): the monthly cost pro-rated by live days of each calendar
    month, plus the per-prediction cost. ``live_from``/``live_to`` bound when the model ran."""
    if end < start:
        raise ParameterError(f"period end {end} is before its start {start}")
    lo = max(start, live_from) if live_from else start
    hi = min(end, live_to) if live_to else end
    fixed = 0.0
    day = lo
    while day <= hi:
        month_days = calendar.monthrange(day.year, day.month)[1]
        month_end = dt.date(day.year, day.month, month_days)
        last = min(hi, month_end)
        fixed += monthly_cost * ((last - day).days + 1) / month_days
        day = last + dt.timedelta(days=1)
    return fixed + cost_per_1k_predictions * predictions / 1000.0


def payback_date(months: list[dt.date], net_by_month: list[float], one_off_costs: float) -> dt.date | None:
    """First month-end at which cumulative net value covers the one-off costs (None if not yet)."""
    total = 0.0
    for month, net in zip(months, net_by_month):
        total += net
        if total >= one_off_costs:
            return dt.date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
    return None
