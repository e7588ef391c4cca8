"""``ab``: a randomized holdout, compared on the mature cohorts' sufficient statistics
(valuetrack.attribution.ab: Welch t, CUPED, SRM; docs/methods-ab.md)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np
import pandas as pd

from valuetrack.attribution.methods.base import Effect, Method, register

if TYPE_CHECKING:  # pragma: no cover
    from valuetrack.registry.spec import ModelSpec

SUMS = ("n", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")
"""The per-arm sufficient statistics stored per cohort day."""


def ab_inputs(spec: ModelSpec, control: Any, treatment: Any, alpha: float, has_covariate: bool) -> tuple:
    """(control ArmStats, treatment ArmStats, ABConfig) for the model, from its arms' sums: scalars
    (a Series per arm, the effect to date) or arrays (a frame, or a dict of arrays, per arm: one row
    per day)."""
    from valuetrack.attribution.ab import ABConfig, ArmStats

    cuped = spec.attribution.covariate_days > 0 and has_covariate

    def get(value: Any) -> Any:
        if hasattr(value, "to_numpy"):
            return value.to_numpy(dtype=float)
        return value.astype(float, copy=False) if isinstance(value, np.ndarray) else float(value)

    def stats(arm: Any) -> ArmStats:
        return ArmStats(*(get(arm[k]) for k in (SUMS if cuped else SUMS[:3])))

    share = two_arm_share(spec)
    config = ABConfig(metric="proportion" if spec.kpi.aggregation == "conversion" else "mean", alpha=alpha,
                      cuped=cuped, planned_treatment_share=share,
                      higher_is_better=spec.kpi.higher_is_better)
    return stats(control), stats(treatment), config


def two_arm_share(spec: ModelSpec) -> float:
    """The planned share of the model's arm among the model's and the holdout's units (with a
    challenger, the champion's share of champion + holdout)."""
    share = spec.attribution.treatment_share
    if spec.attribution.challenger is not None:
        share = share / (1.0 - spec.attribution.challenger.treatment_share)
    return share


def mature_through(spec: ModelSpec, as_of: dt.date) -> dt.date:
    a = spec.attribution
    return as_of - dt.timedelta(days=a.window_days + a.outcome_lag_days)


def _mature_sums(ab: pd.DataFrame, labels: tuple[str, str], mt: dt.date) -> dict[str, pd.Series | None] | None:
    """Per arm, the sums of its rows of cohort days up to ``mt`` (None for an arm without such rows),
    from the frame's arrays: the sums pandas gives for those rows (NaN skipped, NaN when none has a
    value), added in the same order, without a frame per selection. None when the frame is not the
    store's kind (dates and numeric sums): the caller then selects with pandas."""
    if not len(ab) or any(ab[c].dtype.kind not in "iuf" for c in SUMS):
        return None
    day = ab["day"].tolist()
    if set(map(type, day)) != {dt.date}:
        return None
    from valuetrack.days import day_ordinals

    mature = day_ordinals(day) <= mt.toordinal()
    arm = ab["arm"].to_numpy(dtype=object)
    values = np.column_stack([ab[k].to_numpy(dtype=float) for k in SUMS])  # a frame of the columns cost 3× more
    out: dict[str, pd.Series | None] = {}
    for label in labels:
        rows = values[mature & (arm == label)]
        if not len(rows):
            out[label] = None
            continue
        sums = []
        for column in rows.T:
            missing = np.isnan(column)
            sums.append(float(np.where(missing, 0.0, column).sum()) if not missing.all() else np.nan)
        out[label] = pd.Series(sums, index=list(SUMS), dtype=float)
    return out


def segment_breakdown(spec: ModelSpec, sums: Iterable[Mapping[str, Any]], *,
                      alpha: float = 0.05) -> list[dict[str, Any]]:
    """The uplift per segment (``attribution.exposures.segment``) from the sums of the mature
    cohorts per segment × arm (records with ``segment, arm`` and SUMS; None for no value, as SQL's
    SUM gives it): each segment's arms compared as
    the model's whole are (Welch t, CUPED when both arms have the covariate; one batch). A design's
    adjustments (ramp, challenger) are the model's whole, not per segment. A segment without two
    mature units in both arms is listed with no estimate."""
    from valuetrack.attribution.ab import analyze_ab_batch
    from valuetrack.jsonsafe import num

    ex = spec.attribution.exposures
    by = {(str(r["segment"]), r["arm"]): r for r in sums}
    out: list[dict[str, Any]] = []
    ready: list[tuple[int, Any, Any]] = []
    for segment in sorted({k[0] for k in by}):
        c, t = by.get((segment, ex.control)), by.get((segment, ex.treatment))
        out.append({"segment": segment, "n_control": int(c["n"] or 0) if c else 0,
                    "n_treatment": int(t["n"] or 0) if t else 0, "effect_abs": None, "ci_abs": None,
                    "effect_rel": None, "p_value": None})
        if out[-1]["n_control"] >= 2 and out[-1]["n_treatment"] >= 2:
            ready.append((len(out) - 1, c, t))
    if not ready:
        return out
    cuped = all(pd.notna(arm["sum_x"]) for _, c, t in ready for arm in (c, t))
    control = {k: np.array([c[k] for _, c, _ in ready], dtype=float) for k in SUMS}
    treatment = {k: np.array([t[k] for _, _, t in ready], dtype=float) for k in SUMS}
    r = analyze_ab_batch(*ab_inputs(spec, control, treatment, alpha, cuped))
    for j, (i, _, _) in enumerate(ready):
        ci = [num(r["ci_abs"][j][0]), num(r["ci_abs"][j][1])]
        out[i].update(effect_abs=num(r["effect_abs"][j]), ci_abs=ci if None not in ci else None,
                      effect_rel=num(r["effect_rel"][j]), p_value=num(r["p_value"][j]))
    return out


class ABMethod(Method):
    name = "ab"
    order = 10
    label = "A/B holdout"
    sections = ("exposures", "outcomes")
    description = "a randomized holdout: Welch t on mature cohorts, CUPED, SRM check; effect per treated unit"

    def estimate(self, spec: ModelSpec, data: Any, as_of: dt.date, *, alpha: float = 0.05) -> Effect:
        from valuetrack.attribution.ab import analyze_ab

        ex = spec.attribution.exposures
        mt = mature_through(spec, as_of)
        ab = data.ab
        designed = spec.attribution.allocation or spec.attribution.challenger is not None
        arms = None if designed else _mature_sums(ab, (ex.control, ex.treatment), mt)
        if arms is None:  # a design reads the mature rows themselves; other frames are summed by pandas
            mature = ab[ab["day"] <= mt] if len(ab) else ab
            arms = {}
            for arm in (ex.control, ex.treatment):
                rows = mature[mature["arm"] == arm] if len(mature) else mature
                arms[arm] = rows[list(SUMS)].astype(float).sum(min_count=1) if len(rows) else None
        if any(v is None or not v["n"] for v in arms.values()):
            return Effect.none("ab", "no mature cohorts in both arms yet", mt)
        cuped = all(pd.notna(v["sum_x"]) for v in arms.values())
        r = analyze_ab(*ab_inputs(spec, arms[ex.control], arms[ex.treatment], alpha, cuped))
        effect = Effect("ab", r.effect_abs, r.se_abs, r.effect_rel, r.p_value, r.srm_p_value, r.trusted, r.reason,
                        mt, None, r.to_dict())
        from valuetrack.attribution.methods import designs

        if spec.attribution.allocation:
            effect = designs.ramped(spec, mature, effect, alpha, cuped)
        if spec.attribution.challenger is not None:
            effect = designs.with_challenger(spec, mature, data, effect, alpha, cuped, as_of)
        if spec.attribution.series is not None and spec.interventions:
            effect = designs.triangulated(spec, data, effect, as_of, alpha)
        return effect


register(ABMethod())
