"""The cost of the holdout and how small it could be.

A holdout is value forgone: the units kept away from the model would have produced the model's
effect too. Users size holdouts by trading that cost against the power to tell whether the model
pays for itself. With σ² the per-unit outcome variance (recovered from the effect's standard
error and the arm sizes), N units in total and a control share c:

    se(δ)² = σ² / N × (1/(1 − c) + 1/c)

The effect a two-sided test at α detects with power π is (z₁₋α/₂ + z_π) × se(δ). Break-even is the
per-unit effect whose value equals the cost: δ_be = cost / (treated units × value per unit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scipy import stats

from valuetrack.errors import ParameterError


@dataclass(frozen=True)
class HoldoutSizing:
    """The holdout's cost and sizing, to date.

    Attributes:
        control_share: observed share of units in the holdout.
        forgone_value: value the holdout units would have produced had they been served
            (effect × holdout units × value per unit, positive = value lost); None without an effect.
        forgone_value_se: its standard error.
        mde_abs: smallest per-unit effect detectable now (two-sided alpha, power).
        breakeven_abs: per-unit effect at which the model exactly covers its cost.
        detectable_now: mde_abs ≤ |breakeven_abs|: the current design can tell a model that pays
            for itself from one that does nothing.
        min_control_share: smallest holdout share that would still detect break-even with the
            units seen so far (None when even a 50/50 split could not).
        days_to_decision: at the current daily traffic and split, days until break-even becomes
            detectable (0 when it already is; None when traffic is zero or break-even is 0).
        power: the power used.
    """

    control_share: float
    forgone_value: float | None
    forgone_value_se: float | None
    mde_abs: float | None
    breakeven_abs: float | None
    detectable_now: bool | None
    min_control_share: float | None
    days_to_decision: float | None
    power: float

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def size_holdout(
    *,
    effect: float | None,
    effect_se: float | None,
    n_treatment: float,
    n_control: float,
    value_per_unit: float,
    higher_is_better: bool,
    cost: float,
    daily_units: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> HoldoutSizing:
    """Holdout cost and sizing for one A/B model (see the module docstring)."""
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ParameterError(f"alpha and power must be in (0, 1), got {alpha}, {power}")
    if min(n_treatment, n_control, value_per_unit, cost, daily_units) < 0:
        raise ParameterError("unit counts, value per unit, cost and daily units must be >= 0")
    total = n_treatment + n_control
    share = n_control / total if total else 0.0
    sign = 1.0 if higher_is_better else -1.0
    none = HoldoutSizing(share, None, None, None, None, None, None, None, power)
    if effect is None or effect_se is None or not n_treatment or not n_control or not value_per_unit:
        return none
    forgone = sign * effect * n_control * value_per_unit
    forgone_se = effect_se * n_control * value_per_unit
    k = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    mde = k * effect_se
    breakeven = cost / (n_treatment * value_per_unit)
    if breakeven == 0 or effect_se == 0:
        return HoldoutSizing(share, forgone, forgone_se, mde, breakeven, bool(effect_se == 0), None, None, power)
    sigma2 = effect_se**2 / (1 / n_treatment + 1 / n_control)
    se_needed2 = (breakeven / k) ** 2
    # 1/((1−c)N) + 1/(cN) = se²/σ²  ⇔  c(1−c) = σ²/(N·se²)
    q = sigma2 / (total * se_needed2)
    min_share = (1 - math.sqrt(1 - 4 * q)) / 2 if q <= 0.25 else None
    n_needed = sigma2 * (1 / (1 - share) + 1 / share) / se_needed2
    days = max(0.0, n_needed - total) / daily_units if daily_units > 0 else None
    return HoldoutSizing(share, forgone, forgone_se, mde, breakeven, bool(mde <= breakeven), min_share, days, power)
