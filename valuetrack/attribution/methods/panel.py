"""``did`` and ``synthetic_control``: a panel of units (regions, stores) in which some units got the
model and the others did not (valuetrack.attribution.panel; docs/methods-panel.md).

The panel is stored with the model's series as one column per unit, ``unit:<unit>``. Both methods
give a daily gap for the treated units' total, which value/ sums per period:

* ``did``: the two-way fixed effects δ is the effect per treated unit and day, so a period's gap is
  δ × treated units × days, with the standard error scaled the same way (as A/B's per-unit effect).
* ``synthetic_control``: the gap is actual − synthetic control, day by day. Its interval comes from
  the placebo (in-space) units: each control unit's own gap to its synthetic control, summed over
  the same period, is a draw of what the gap looks like with no effect; the standard error is their
  root mean square, and the interval uses the t quantile with (controls − 1) degrees of freedom
  (docs/decisions.md D12).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from valuetrack.attribution.methods.base import Effect, Method, NotEstimable, register

if TYPE_CHECKING:  # pragma: no cover
    from valuetrack.registry.spec import ModelSpec

UNIT_PREFIX = "unit:"
"""Stored series name of a panel unit's column: ``unit:<unit>``."""
MIN_CONTROL_UNITS = 3


@dataclass(frozen=True)
class PanelGap:
    """The treated units' total gap per post-period day, and how uncertain a sum of it is.

    Attributes:
        alpha: 1 − confidence level.
        dates: post-period days.
        actual: treated units' total per day.
        counterfactual: their counterfactual total per day.
        per_day / per_day_se: did: the constant effect per day (δ × treated units) and its se; a
            period's gap is per_day × days. None for synthetic control.
        placebo: synthetic control: placebo units' gaps per day, scaled to the treated total, shape
            (controls, days).
        q: the interval's quantile (t with the method's degrees of freedom).
    """

    alpha: float
    dates: pd.DatetimeIndex
    actual: np.ndarray
    counterfactual: np.ndarray
    per_day: float | None
    per_day_se: float | None
    placebo: np.ndarray | None
    q: float

    def _sums(self, sel: np.ndarray) -> tuple[float, float]:
        if self.per_day is not None:
            k = float(sel.sum())
            return self.per_day * k, (self.per_day_se or 0.0) * k
        est = float(np.sum((self.actual - self.counterfactual)[sel]))
        return est, float(np.sqrt(np.mean(self.placebo[:, sel].sum(axis=1) ** 2)))

    def gap_between(self, start: Any, end: Any) -> tuple[float, float, tuple[float, float]]:
        """(estimate, standard error, interval) of the treated total's gap over [start, end].

        The standard error is scaled by q / z so that a normal interval built from it (as value/
        does for money) is the method's own interval.
        """
        start, end = pd.Timestamp(start), pd.Timestamp(end)
        sel = np.asarray((self.dates >= start) & (self.dates <= end))
        if not sel.any():
            return 0.0, 0.0, (0.0, 0.0)
        est, se = self._sums(sel)
        from scipy import stats  # imported on use: the CLI's parser loads every method module

        se *= self.q / stats.norm.ppf(1 - self.alpha / 2)
        z = stats.norm.ppf(1 - self.alpha / 2)
        return est, se, (est - z * se, est + z * se)

    def to_frame(self) -> pd.DataFrame:
        """Daily: date, actual, counterfactual, lower, upper, effect, effect_lower, effect_upper,
        cum_effect, cum_lower, cum_upper (the bands from the same standard errors as gap_between)."""
        effect = self.actual - self.counterfactual
        n = len(self.dates)
        if self.per_day is not None:
            sd = np.full(n, self.per_day_se or 0.0)
            effect = np.full(n, self.per_day)
            cum_sd = sd * np.arange(1, n + 1)
        else:
            sd = np.sqrt(np.mean(self.placebo ** 2, axis=0))
            cum_sd = np.sqrt(np.mean(np.cumsum(self.placebo, axis=1) ** 2, axis=0))
        cum = np.cumsum(effect)
        q = self.q
        cf = self.actual - effect
        return pd.DataFrame({"date": self.dates, "actual": self.actual, "counterfactual": cf,
                             "lower": cf - q * sd, "upper": cf + q * sd, "effect": effect,
                             "effect_lower": effect - q * sd, "effect_upper": effect + q * sd,
                             "cum_effect": cum, "cum_lower": cum - q * cum_sd, "cum_upper": cum + q * cum_sd})


def panel_long(spec: ModelSpec, series: pd.DataFrame) -> pd.DataFrame | None:
    """The stored ``unit:<unit>`` columns as a long frame (unit, day as ISO text, value), or None."""
    cols = [c for c in series.columns if str(c).startswith(UNIT_PREFIX)] if series is not None else []
    if not cols:
        return None
    wide = series[["day", *cols]].copy()
    wide["day"] = [d.isoformat() for d in wide["day"]]
    long = wide.melt(id_vars="day", var_name="unit", value_name="value")
    long["unit"] = long["unit"].str.slice(len(UNIT_PREFIX))
    return long.dropna(subset=["value"])


class _PanelMethod(Method):
    sections = ("panel",)
    needs_interventions = True
    single_intervention = True
    kind = "did"

    def _fit(self, spec: ModelSpec, data: Any, alpha: float) -> tuple[Any, pd.DataFrame] | None:
        from valuetrack.attribution.panel import attribute_did_frame
        from valuetrack.errors import ValidationError

        p = spec.attribution.panel
        long = panel_long(spec, data.series)
        start = spec.interventions[0].start
        if long is None or not len(long) or max(long["day"]) < start.isoformat():
            return None
        end = spec.interventions[0].end
        if end is not None:  # the intervention window closed: the days after it are not the model's
            long = long[long["day"] <= end.isoformat()]
        treated = [str(t) for t in p.treated]
        units = set(long["unit"])
        missing = [t for t in treated if t not in units]
        if missing:
            raise NotEstimable(f"treated unit {missing[0]!r} is not in column {p.unit!r} of {p.table}; "
                               f"check attribution.panel.treated (units include {', '.join(sorted(units)[:6])})")
        if len(units - set(treated)) < MIN_CONTROL_UNITS:
            raise NotEstimable(f"the panel has {len(units - set(treated))} untreated unit(s); {self.name} needs at "
                               f"least {MIN_CONTROL_UNITS}")
        try:
            result = attribute_did_frame(long, time_col="day", metric="value", intervention=start.isoformat(),
                                         unit_col="unit", treated=treated, method=self.kind, alpha=alpha)
        except ValidationError as exc:  # the messages name command-line options: say it for the panel
            raise NotEstimable("the panel data cannot be used: " + exc.problems[0].replace("--method synth", self.name)
                               .replace("--", "")) from None
        return result, long

    def estimate(self, spec: ModelSpec, data: Any, as_of: dt.date, *, alpha: float = 0.05) -> Effect:
        fitted = self._fit(spec, data, alpha)
        if fitted is None:
            return Effect.none(self.name, "no panel data after the launch yet")
        r, long = fitted
        n_tr = int(r.n_treated)
        t = r.table
        days = pd.to_datetime(t["time"])
        post = np.asarray(days >= pd.Timestamp(spec.interventions[0].start))
        actual = t["treated"].to_numpy(float)[post] * n_tr
        cf = t["counterfactual"].to_numpy(float)[post] * n_tr
        from scipy import stats

        if self.kind == "did":
            if r.se is None:
                raise NotEstimable(f"the DiD fit has no standard error ({r.reason}); it needs more days or units")
            q = (r.ci_avg[1] - r.effect_avg) / r.se if r.se > 0 else stats.norm.ppf(1 - alpha / 2)  # its own t
            gap = PanelGap(alpha, pd.DatetimeIndex(days[post]), actual, cf, r.effect_avg * n_tr, r.se * n_tr, None,
                           float(q))
        else:
            placebo = np.asarray(r.placebo_gaps)[:, post] * n_tr
            gap = PanelGap(alpha, pd.DatetimeIndex(days[post]), actual, cf, None, None, placebo,
                           float(stats.t.ppf(1 - alpha / 2, max(len(placebo) - 1, 1))))
        d = r.to_dict()
        d["method"] = self.name
        return Effect(self.name, d.get("effect_avg"), None, d.get("effect_rel"), d.get("p_value"), None,
                      bool(r.trusted), r.reason, None, gap, d)


class DiDMethod(_PanelMethod):
    name = "did"
    order = 40
    label = "Difference-in-differences"
    kind = "did"
    description = ("two-way fixed effects on a panel of units: treated units' change against untreated "
                   "units' change; effect per treated unit and day")


class SyntheticControlMethod(_PanelMethod):
    name = "synthetic_control"
    order = 50
    label = "Synthetic control"
    kind = "synth"
    description = ("a convex combination of untreated units reproduces the treated units before the launch; "
                   "interval from placebo (in-space) units")


register(DiDMethod())
register(SyntheticControlMethod())

__all__ = ["PanelGap", "UNIT_PREFIX", "panel_long"]
