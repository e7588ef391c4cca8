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
import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri  # the normal cdf and its inverse, without scipy.stats' per-call overhead

from valuetrack.days import day_ordinals
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
    # a cost may be negative: a billed period whose credits or refunds exceed its charges (D40)
    if np.any(effect_se < 0) or np.any(units < 0) or np.any(vpu < 0):
        raise ParameterError("effect_se, units and value_per_unit must be >= 0")
    gross = sign * effect * units * vpu
    gross_se = effect_se * units * vpu
    net = gross - cost
    z = ndtri(1 - alpha / 2)
    net_lo, net_hi = net - z * gross_se, net + z * gross_se
    with np.errstate(divide="ignore", invalid="ignore"):
        has_cost = cost > 0
        roi = np.where(has_cost, net / cost, np.nan)
        roi_lo = np.where(has_cost, net_lo / cost, np.nan)
        roi_hi = np.where(has_cost, net_hi / cost, np.nan)
        zscore = np.where(gross_se > 0, net / gross_se, np.sign(net) * np.inf)
    prob_positive = np.where(gross_se > 0, ndtr(zscore), (net > 0).astype(float))
    expected_loss = _expected_shortfall(net, gross_se)
    return ValueArrays(gross, gross_se, cost, net, net_lo, net_hi, roi, roi_lo, roi_hi, prob_positive, expected_loss, alpha)


def _expected_shortfall(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """E[max(0, −X)] for X ~ N(mean, sd²); max(0, −mean) when sd = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(sd > 0, mean / sd, 0.0)
        normal = sd * np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi) - mean * ndtr(-u)
    return np.where(sd > 0, normal, np.maximum(0.0, -mean))


def one_sided_p_below(estimate: Any, se: Any, bound: Any) -> np.ndarray:
    """p-value of H0: true value ≥ bound against H1: true value < bound (normal)."""
    estimate, se, bound = (np.asarray(a, dtype=float) for a in (estimate, se, bound))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (estimate - bound) / se, np.where(estimate < bound, -np.inf, np.inf))
    return ndtr(z)


def payback_date(months: list[dt.date], net_by_month: list[float], one_off_costs: Any) -> dt.date | None:
    """First month-end at which cumulative net value (running costs) covers the one-off costs
    incurred by then (None if not yet). ``one_off_costs``: one number, or per month the one-off
    costs incurred from launch to that month's end (dated one-off costs)."""
    ends = [dt.date(m.year, m.month, calendar.monthrange(m.year, m.month)[1]) for m in months]
    return payback_at(ends, np.cumsum(np.asarray(net_by_month, dtype=float)), one_off_costs)


def payback_at(days: list[dt.date], cumulative_net: Any, one_off_costs: Any) -> dt.date | None:
    """The payback date: the first of ``days`` at which the cumulative net value covers the one-off
    costs incurred by then. A one-off cost incurred later starts the count again (payback of
    everything spent so far). ``one_off_costs``: a number, or the cumulative amount at each day."""
    dues = (list(one_off_costs) if isinstance(one_off_costs, (list, tuple, np.ndarray, pd.Series))
            else [one_off_costs] * len(days))
    found, previous = None, None
    for day, net, due in zip(days, cumulative_net, dues):
        if previous is not None and due > previous:
            found = None  # a new one-off cost: paid back only once it too is covered
        previous = due
        if found is None and net is not None and np.isfinite(net) and net >= due:
            found = day
    return found


# ------------------------------------------------------------------------------------------------
# The daily money series: the one place where a model's dated amounts become money per day


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later (the month's last day when it has fewer days)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class DailyMoney:
    """A model's money per day over [first, last]: what one KPI unit is worth, the running cost
    (the monthly cost pro-rated by the days of each calendar month while live, plus the cost per
    1,000 predictions) and the one-off costs, both as incurred and amortised (the fully loaded view).

    Every period figure (months, to date, payback, cumulative charts) sums these arrays, so a
    dated amount applies exactly to the days it covers (docs/methods-value.md, D30, D31).
    """

    days: pd.Index
    value_per_unit: np.ndarray
    fixed_cost: np.ndarray
    variable_cost: np.ndarray
    one_off: np.ndarray
    amortised: np.ndarray
    billed: np.ndarray | None = None
    """Billed cost per day from the model's [cost_source] (valuetrack.value.billing), or None."""
    settled: np.ndarray | None = None
    """True on the days whose billed cost has settled: there it replaces the estimate (D40)."""
    rate: np.ndarray | None = None
    """For a model in another currency: each day's rate (reporting currency per 1 unit of the model's;
    D33), already applied to every amount above; None for a model in the reporting currency."""

    # the derived arrays are computed once (the series is immutable): a valuation sums them over
    # some fifty periods per model

    @functools.cached_property
    def estimated_cost(self) -> np.ndarray:
        """The manifest's running-cost estimate per day: monthly cost share + per-prediction cost."""
        return self.fixed_cost + self.variable_cost

    @functools.cached_property
    def cost(self) -> np.ndarray:
        """Running cost per day: the settled billed cost where the model has a cost source and the
        day has settled, else the manifest's estimate."""
        if self.billed is None or self.settled is None:
            return self.estimated_cost
        return np.where(self.settled, self.billed, self.estimated_cost)

    @functools.cached_property
    def _ordinals(self) -> np.ndarray:
        """The days as proleptic ordinals (sorted integers: a searchsorted without object compares)."""
        return day_ordinals(self.days)

    def _slice(self, start: dt.date, end: dt.date) -> slice:
        o = self._ordinals
        return slice(int(o.searchsorted(start.toordinal(), "left")), int(o.searchsorted(end.toordinal(), "right")))

    def total(self, column: str, start: dt.date, end: dt.date) -> float:
        """Sum of one column (``cost``, ``fixed_cost``, ``one_off``, ``amortised`` ...) over [start, end]."""
        if not len(self.days) or end < start:
            return 0.0
        return float(np.sum(getattr(self, column)[self._slice(start, end)]))

    def totals(self, columns: tuple[str, ...], start: dt.date, end: dt.date) -> list[float]:
        """:meth:`total` of each of ``columns`` over [start, end] (the days looked up once)."""
        if not len(self.days) or end < start:
            return [0.0] * len(columns)
        span = self._slice(start, end)
        return [float(np.sum(getattr(self, column)[span])) for column in columns]

    def weighted(self, by_day: pd.Series, start: dt.date, end: dt.date, column: str = "value_per_unit") -> float:
        """Σ by_day[d] × value_per_unit[d] over [start, end] (treated units in money per KPI unit), or
        × another daily ``column`` (``rate``: treated units at each day's rate)."""
        part = by_day
        if not len(part) or end < start:
            return 0.0
        days = part.index
        part = part.iloc[days.searchsorted(start, "left"):days.searchsorted(end, "right")]
        if not len(part):
            return 0.0
        idx = self.days.get_indexer(part.index)
        if (idx < 0).any():  # a day outside the series (cannot happen for data within the range)
            raise ParameterError("daily money series does not cover the data's days")
        return float(np.dot(part.to_numpy(dtype=float), getattr(self, column)[idx]))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"day": list(self.days), "value_per_unit": self.value_per_unit,
                             "fixed_cost": self.fixed_cost, "variable_cost": self.variable_cost, "cost": self.cost,
                             "estimated_cost": self.estimated_cost,
                             "billed": self.billed if self.billed is not None else np.full(len(self.days), np.nan),
                             "settled": self.settled if self.settled is not None else np.zeros(len(self.days), bool),
                             "one_off": self.one_off, "amortised": self.amortised})


def daily_money(*, first: dt.date, last: dt.date, monthly_cost: Any, cost_per_1k_predictions: Any,
                value_per_unit: Any, one_off_costs: Any, amortisation_months: int | None,
                live_from: dt.date | None, live_to: dt.date | None = None,
                predictions: pd.Series | None = None, billed: Any = None,
                rate: np.ndarray | None = None) -> DailyMoney:
    """Build a model's :class:`DailyMoney` over [first, last].

    Args:
        monthly_cost, cost_per_1k_predictions, value_per_unit: a number or dated steps (the
            manifest's form, valuetrack.registry.spec.steps); each day takes the amount in effect.
        one_off_costs: a number (incurred on ``live_from``) or dated events. An event before
            ``first`` counts on ``first``; each is amortised straight line by day over
            ``amortisation_months`` months from the later of its date and ``live_from``.
        live_from, live_to: the monthly cost runs only on live days.
        predictions: predictions per day (date index), for the per-prediction cost.
        billed: the model's :class:`valuetrack.value.billing.BilledCost`: on its settled live days
            the billed cost replaces the estimate (monthly cost share + per-prediction cost).
        rate: for a model whose amounts are in another currency, the rate of each day of
            [first, last] (reporting currency per 1 unit of the model's; valuetrack.value.fx): every
            amount of a day is converted at that day's rate, a one-off cost (and its amortisation) at
            the rate of the day it was incurred. None: the amounts are in the reporting currency.
    """
    from valuetrack.registry.spec import AMORTISATION_MONTHS, one_off_events, steps

    n = max((last - first).days + 1, 0)
    days = [first + dt.timedelta(days=i) for i in range(n)]
    index = pd.Index(days, dtype="object")
    day_arr = day_ordinals(days)

    def per_day(value: Any) -> np.ndarray:
        out = np.full(n, steps(value)[0].amount, dtype=float)
        for step in steps(value):
            if step.start is not None:
                out[day_arr >= step.start.toordinal()] = step.amount
        return out

    lengths: dict[tuple[int, int], int] = {}  # the days of each calendar month, looked up once per month
    month_days = np.array([lengths.get((d.year, d.month)) or lengths.setdefault((d.year, d.month),
                                                                                 calendar.monthrange(d.year, d.month)[1])
                           for d in days], dtype=float)
    live = np.ones(n, dtype=bool)
    if live_from is not None:
        live &= day_arr >= live_from.toordinal()
    if live_to is not None:
        live &= day_arr <= live_to.toordinal()
    fx = np.ones(n) if rate is None else np.asarray(rate, dtype=float)
    fixed = np.where(live, per_day(monthly_cost) / month_days, 0.0) * fx if n else np.zeros(0)
    preds = (predictions.reindex(index).fillna(0.0).to_numpy(dtype=float)
             if predictions is not None and len(predictions) else np.zeros(n))
    variable = per_day(cost_per_1k_predictions) * preds / 1000.0 * fx if n else np.zeros(0)
    one_off, amortised = np.zeros(n), np.zeros(n)
    months = amortisation_months or AMORTISATION_MONTHS
    for event in one_off_events(one_off_costs, live_from or first):
        on = max(event.on, first)
        amount = event.amount * (float(fx[(min(on, last) - first).days]) if n else 1.0)  # at its own day's rate
        if n and on <= last:
            one_off[(on - first).days] += amount
        start = max(event.on, live_from) if live_from else event.on
        end = add_months(start, months) - dt.timedelta(days=1)
        per = amount / ((end - start).days + 1)
        amortised[(day_arr >= start.toordinal()) & (day_arr <= end.toordinal())] += per

    billed_arr = settled = None
    if billed is not None:
        billed_arr, settled = billed.on(index) * fx, billed.settled_mask(index) & live
    return DailyMoney(index, per_day(value_per_unit) * fx if n else np.zeros(0), fixed, variable, one_off, amortised,
                      billed_arr, settled, None if rate is None else fx)
