"""Ramped rollouts: an A/B estimate stratified by allocation period.

When the planned treatment share changes over time (10 % in week one, 50 % in week three, 90 %
after), pooling all units compares a treatment arm drawn mostly from late periods with a control arm
drawn mostly from early ones. If the KPI's baseline moves between periods, the pooled difference
mixes that move into the effect and can even have the wrong sign (Simpson's paradox).

Each unit belongs to the allocation period of its first exposure (units keep their first arm). The
effect is estimated within each period and the periods are combined with weights equal to their
share of all units:

    effect = Σ_s w_s · effect_s,   se² = Σ_s w_s² · se_s²,   w_s = N_s / N

which estimates the average effect per unit over every unit exposed (the estimand of the unramped
design), free of the mix. A period with an empty arm carries no estimate and is dropped, with the
weights renormalised over the rest (the estimand then covers those periods' units only, and
``note`` says so).

The SRM check runs against the schedule: the χ² statistic sums over periods (one degree of freedom
each), and the sequential e-value is the product of the periods' beta-binomial e-values.

Everything is vectorised: the last axis of every array runs over the allocation periods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

from valuetrack.attribution.ab import ABConfig, ArmStats, analyze_ab_batch
from valuetrack.errors import ParameterError


@dataclass(frozen=True)
class Allocation:
    """One step of a ramp: from ``start`` (a date) the planned ``treatment_share`` holds."""

    start: Any
    treatment_share: float


def period_index(days: ArrayLike, schedule: list[Allocation]) -> np.ndarray:
    """The allocation period (0-based) each first-exposure day falls in; -1 before the first step."""
    starts = np.asarray([a.start for a in schedule], dtype="datetime64[D]")
    if len(starts) > 1 and np.any(np.diff(starts) <= np.timedelta64(0, "D")):
        raise ParameterError("allocation steps must be in increasing order of their start dates")
    d = np.asarray(days, dtype="datetime64[D]")
    return np.searchsorted(starts, d, side="right") - 1


def stratified_effect(control: ArmStats, treatment: ArmStats, shares: ArrayLike,
                      config: ABConfig | None = None) -> dict[str, Any]:
    """The A/B effect stratified by allocation period.

    Args:
        control, treatment: each arm's sums with the periods on the last axis (shape ``(..., S)``).
        shares: the planned treatment share of each period, shape ``(S,)`` (or broadcastable).
        config: analysis settings (metric, alpha, CUPED); CUPED runs within each period.

    Returns:
        ``effect_abs``, ``se_abs``, ``ci_abs`` (last axis: low, high), ``p_value`` (normal),
        ``pooled_effect_abs`` (the naive estimate, for comparison), ``weights`` (per period),
        ``srm_p_value`` (χ² against the schedule, S degrees of freedom), ``srm_log_e_value`` (the
        product of the periods' sequential e-values), ``periods_used`` and ``note``.
    """
    from valuetrack.attribution.sequential import srm_log_e

    config = config or ABConfig()
    shares = np.asarray(shares, dtype=float)
    per = analyze_ab_batch(control, treatment, config, planned_treatment_share=np.broadcast_to(
        shares, np.shape(np.asarray(control.n, dtype=float))))
    n_c, n_t = np.asarray(control.n, dtype=float), np.asarray(treatment.n, dtype=float)
    usable = np.isfinite(per["effect_abs"]) & np.isfinite(per["se_abs"])
    size = np.where(usable, n_c + n_t, 0.0)
    total = size.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(total > 0, size / total, np.nan)
        effect = np.nansum(np.where(usable, w * per["effect_abs"], 0.0), axis=-1)
        se = np.sqrt(np.nansum(np.where(usable, (w * per["se_abs"]) ** 2, 0.0), axis=-1))
    none = total[..., 0] == 0
    effect, se = np.where(none, np.nan, effect), np.where(none, np.nan, se)
    z = stats.norm.ppf(1 - config.alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * stats.norm.sf(np.abs(effect / se))

    sum_arm = lambda a: ArmStats(*(None if v is None else np.asarray(v, dtype=float).sum(axis=-1)  # noqa: E731
                                   for v in (a.n, a.sum_y, a.sum_y2, a.sum_x, a.sum_x2, a.sum_xy)))
    pooled = analyze_ab_batch(sum_arm(control), sum_arm(treatment), config,
                              planned_treatment_share=np.clip(np.nansum(n_t, -1) / np.maximum(np.nansum(n_c + n_t, -1), 1), 1e-9, 1 - 1e-9))

    with np.errstate(divide="ignore", invalid="ignore"):
        n = n_c + n_t
        chi2 = np.where(n > 0, (n_t - n * shares) ** 2 / (n * shares * (1 - shares)), 0.0)
    dof = np.maximum((n > 0).sum(axis=-1), 1)
    srm_p = special.chdtrc(dof, chi2.sum(axis=-1))
    log_e = srm_log_e(n_t, n_c, np.broadcast_to(shares, n.shape)).sum(axis=-1)
    dropped = (~usable & (n > 0)).any(axis=-1)
    note = np.where(dropped, "a period with an empty arm was left out; the effect covers the other periods' units", None)
    return {"effect_abs": effect, "se_abs": se, "ci_abs": np.stack([effect - z * se, effect + z * se], axis=-1),
            "p_value": p, "pooled_effect_abs": pooled["effect_abs"], "weights": w, "srm_p_value": srm_p,
            "srm_log_e_value": log_e, "periods_used": usable.sum(axis=-1), "note": note}
