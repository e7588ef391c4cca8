"""``structural`` and ``its``: a daily KPI series without a holdout
(valuetrack.attribution.timeseries and .its; docs/methods-timeseries.md)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pandas as pd

from valuetrack.attribution.methods.base import Effect, Method, NotEstimable, register

if TYPE_CHECKING:  # pragma: no cover
    from valuetrack.registry.spec import ModelSpec


def series_frame(spec: ModelSpec, series: pd.DataFrame) -> pd.DataFrame | None:
    """The stored series as a date-indexed float frame (value + controls), or None when empty."""
    src = spec.attribution.series
    if series is None or not len(series) or "value" not in series.columns:
        return None
    missing = [c for c in src.controls if c not in series.columns]
    if missing:
        raise NotEstimable(f"control series {missing[0]!r} is not in the stored series; refresh the model "
                           "(`valuetrack refresh --model NAME --full`)")
    return series.set_index(pd.to_datetime(series["day"]))[["value", *src.controls]].astype(float)


def effect_of(method: str, result: Any) -> Effect:
    """The Effect of a TSResult-like result (a daily gap with to_dict); degenerate → NotEstimable."""
    d = result.to_dict()
    if d.get("effect_avg") is None:
        raise NotEstimable(f"the {method} fit gave no estimate: {d.get('reason') or 'no reason given'}")
    return Effect(method, d.get("effect_avg"), None, d.get("effect_rel"), d.get("p_value"), None,
                  bool(d.get("trusted")), d.get("reason"), None, result, d)


class StructuralMethod(Method):
    name = "structural"
    order = 20
    label = "Time series (structural)"
    sections = ("series",)
    needs_interventions = True
    description = ("a structural counterfactual (local level, seasonality, regression on control series) "
                   "fitted before the launch; gap per day, intervals from joint simulated paths")

    def check(self, spec: ModelSpec, where: str, problems: list[str]) -> None:
        s = spec.attribution.series
        if s is not None and not s.controls:
            problems.append(f"{where}.attribution.series.controls: method 'structural' needs at least one control "
                            "series (or use method 'its')")

    def estimate(self, spec: ModelSpec, data: Any, as_of: dt.date, *, alpha: float = 0.05) -> Effect:
        from valuetrack.attribution.timeseries import TSConfig, fit_structural

        frame = series_frame(spec, data.series)
        if frame is None or frame.index[-1].date() < spec.interventions[0].start:
            return Effect.none(self.name, "no series data after the launch yet")
        windows = [(pd.Timestamp(iv.start), pd.Timestamp(iv.end) if iv.end else None) for iv in spec.interventions
                   if pd.Timestamp(iv.start) <= frame.index[-1]]
        result = fit_structural(frame, interventions=windows, controls=list(spec.attribution.series.controls),
                                config=TSConfig(alpha=alpha, seed=0), metric="value", cache=getattr(data, "fits", None))
        return effect_of(self.name, result)


class ITSMethod(Method):
    name = "its"
    order = 30
    label = "Interrupted time series"
    sections = ("series",)
    needs_interventions = True
    single_intervention = True
    description = ("a segmented trend (level and slope change) with weekday effects and Newey-West errors; "
                   "no control series, so anything else that changed at the launch is attributed to the model")

    def estimate(self, spec: ModelSpec, data: Any, as_of: dt.date, *, alpha: float = 0.05) -> Effect:
        from valuetrack.attribution.its import fit_its

        frame = series_frame(spec, data.series)
        start, end = spec.interventions[0].start, spec.interventions[0].end
        if frame is None or frame.index[-1].date() < start:
            return Effect.none(self.name, "no series data after the launch yet")
        if end is not None:  # the intervention window closed: the days after it are not the model's
            frame = frame.loc[:pd.Timestamp(end)]
        return effect_of(self.name, fit_its(frame[["value"]], intervention=pd.Timestamp(start), metric="value",
                                             alpha=alpha))


register(StructuralMethod())
register(ITSMethod())
