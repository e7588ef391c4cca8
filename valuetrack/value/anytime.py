"""Flag decisions that stay valid when the portfolio is valued every day.

A daily refresh looks at every model every day. A fixed-horizon test repeated at each look raises
false flags far more often than its level says (docs/methods-value.md, "Flags under daily looks").
The rules here keep their stated bound however often they are looked at:

- **A/B money flags** use one-sided mixture e-values built on the same Gaussian-mixture
  martingale as the confidence sequence (attribution/sequential.py), with the mixture tuned at the
  model's planned horizon (``planned_units``). Both money flags are tested *per treated unit*: the
  per-unit value (money) against 0 for ``destroying_value`` and against the per-unit break-even for
  ``not_covering_cost``. A null stated in to-date money (``net >= 0``) moves with traffic and does not
  give a martingale; a per-unit null does.
- **Across the portfolio** both money flags of every model form one e-BH family at ``q`` (Wang &
  Ramdas 2022): the false discovery rate of the money flags stays at or below ``q`` at every look,
  under any dependence between models. With every hypothesis null, the mean of the e-values is a
  non-negative supermartingale, so by Ville's inequality the chance that a company *ever* sees a
  false money flag, over any number of looks, is at most ``q``.
- **Sample-ratio mismatch** uses a beta-binomial mixture e-value (an exact test martingale for the
  planned split), Bonferroni over the portfolio's A/B models at ``SRM_LEVEL``: the chance that any
  correctly split model of a company is ever marked untrustworthy stays at or below ``SRM_LEVEL``.
- **Guardrails** (``guardrail_flags``): per guardrail a one-sided mixture e-value of H0: harm per
  treated unit ≤ tolerance, on the same martingale; a model's guardrails form one family whose
  e-value is their mean (an e-value under "every guardrail within tolerance", the e-value form of
  Bonferroni); e-BH over the portfolio's models at ``q``. With every guardrail at its tolerance, the
  chance that a company is ever flagged is at most ``q`` (Ville's inequality on the mean e-value).
- **Time-series models** have no martingale to build on. They form a separate family decided at
  scheduled looks only (``TS_LOOKS`` days after launch, inside the 180-day attributable horizon):
  between looks a daily refresh re-uses the decision of the last scheduled look, and each look's
  BH runs at ``q / (2 * len(TS_LOOKS))`` per flag type, a Bonferroni spend over the looks.

Everything is vectorised: the axis ``axis`` runs over the models of one portfolio, any other axes
(companies, looks) are batch axes. Production (value/flags.py) and the calibration suite
(tests/value/test_flags_anytime.py) call these same functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from valuetrack.attribution.portfolio import benjamini_hochberg
from valuetrack.attribution.sequential import (  # noqa: F401 (re-exported: the flags' statistics in one place)
    MAX_LOG_E_VALUE,
    SRM_PRIOR_SD,
    TS_LOOKS,
    mixture_rho2,
    srm_log_e,
    ts_look,
)

#: Chance that a correctly split model of a company is ever marked untrustworthy (Bonferroni).
SRM_LEVEL = 0.05


def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


def planned_units(daily_units: ArrayLike, horizon_days: ArrayLike) -> np.ndarray:
    """Units (both arms) a model is planned to see by its decision horizon: the mixture's tuning.

    The e-values are tightest near this size. It is set from the traffic rate and the horizon
    (``unproven_after_days``), not from the outcomes, so tuning does not peek at the effect.
    """
    return np.maximum(_arr(daily_units) * _arr(horizon_days), 1.0)


def log_e_below(estimate: ArrayLike, se: ArrayLike, null: ArrayLike, n_total: ArrayLike,
                tuning: ArrayLike, alpha: ArrayLike = 0.05) -> np.ndarray:
    """Log of the one-sided mixture e-value for H1: true value < ``null`` (H0: true value >= null).

    The Gaussian mixture of the confidence sequence restricted to alternatives below the null
    (a half-normal mixing density): with ``a = n_total * rho²`` and ``z = (estimate - null) / se``,

        E = 2 / sqrt(1 + a) * exp(a z² / (2 (1 + a))) * Phi(-z sqrt(a / (1 + a)))

    Under any true value >= null it is (asymptotically) a non-negative supermartingale, so its value
    at any look is an e-value. NaN inputs give log E = 0 (no evidence). Capped at 700.
    """
    a = _arr(n_total) * mixture_rho2(alpha, tuning)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (_arr(estimate) - _arr(null)) / _arr(se)
        out = (np.log(2.0) - 0.5 * np.log1p(a) + a * z**2 / (2.0 * (1.0 + a))
               + special.log_ndtr(-z * np.sqrt(a / (1.0 + a))))
    out = np.where(np.isfinite(out), out, np.where(z < 0, MAX_LOG_E_VALUE, 0.0))
    out = np.where(np.isnan(z) | ~(a > 0), 0.0, out)
    return np.minimum(out, MAX_LOG_E_VALUE)


def e_bh(log_e: ArrayLike, level: float, eligible: ArrayLike | None = None, *, axis: int = 0) -> np.ndarray:
    """e-BH: reject the k largest e-values where the k-th largest is >= m / (level k).

    It equals BH on the p-values 1/e (Wang & Ramdas 2022) and controls the false discovery rate at
    ``level`` under any dependence. Models not ``eligible`` are not part of the family.
    """
    log_e = _arr(log_e)
    p = np.minimum(1.0, np.exp(-log_e))
    if eligible is not None:
        p = np.where(np.asarray(eligible, dtype=bool), p, np.nan)
    return benjamini_hochberg(p, level, axis=axis)


def ab_money_flags(value_per_unit: ArrayLike, value_se: ArrayLike, breakeven_per_unit: ArrayLike,
                   n_total: ArrayLike, tuning: ArrayLike, eligible: ArrayLike, has_cost: ArrayLike,
                   q: float = 0.05, *, axis: int = 0) -> dict[str, np.ndarray]:
    """Both money flags for A/B models from their per-unit value and its standard error.

    Args:
        value_per_unit: money per treated unit (the KPI effect × value per unit, sign-adjusted so
            that positive is good).
        value_se: its standard error.
        breakeven_per_unit: money per treated unit the model needs to cover its cost and the
            required ROI: (1 + min_roi) × cost / treated units.
        n_total: units seen so far, both arms (mature cohorts).
        tuning: the mixture's tuning (``planned_units``).
        eligible: models with a trusted estimate.
        has_cost: models with a cost (the only ones tested for ``not_covering_cost``).
        q: the false discovery rate of both money flags together (one e-BH family of 2m hypotheses).
        axis: the axis that runs over the portfolio's models.

    Returns:
        ``destroying_value`` and ``not_covering_cost`` (bool; a model flagged destroying is not
        flagged not-covering too) with their log e-values ``log_e_destroying`` and ``log_e_cost``.
    """
    eligible = np.asarray(eligible, dtype=bool) & np.isfinite(_arr(value_per_unit)) & (_arr(value_se) > 0)
    costed = eligible & np.asarray(has_cost, dtype=bool)
    log_e_d = log_e_below(value_per_unit, value_se, 0.0, n_total, tuning)
    log_e_c = log_e_below(value_per_unit, value_se, breakeven_per_unit, n_total, tuning)
    log_e_d, log_e_c = np.broadcast_arrays(log_e_d, log_e_c)
    eligible, costed = np.broadcast_to(eligible, log_e_d.shape), np.broadcast_to(costed, log_e_d.shape)
    both = e_bh(np.concatenate([log_e_d, log_e_c], axis=axis), q,
                np.concatenate([eligible, costed], axis=axis), axis=axis)
    destroy, cost = np.split(both, 2, axis=axis)
    return {"destroying_value": destroy, "not_covering_cost": cost & ~destroy,
            "log_e_destroying": np.where(eligible, log_e_d, np.nan),
            "log_e_cost": np.where(costed, log_e_c, np.nan)}


def guardrail_flags(harm: ArrayLike, harm_se: ArrayLike, tolerance: ArrayLike, n_total: ArrayLike,
                    tuning: ArrayLike, eligible: ArrayLike, q: float = 0.05, *, axis: int = 0) -> dict[str, np.ndarray]:
    """``guardrail_breach`` for a portfolio's models from their guardrails' harm per treated unit.

    Arrays have the guardrails on the last axis and the portfolio's models on ``axis`` (any other
    axes are batch axes); absent guardrails are not ``eligible``.

    Args:
        harm: harm per treated unit (positive = harm) in the guardrail's units.
        harm_se: its standard error.
        tolerance: harm tolerated per treated unit (H0: harm ≤ tolerance).
        n_total: units behind the guardrail's estimate, both arms.
        tuning: the mixture's tuning (the model's ``planned_units``).
        eligible: guardrails with an estimate, on models whose measurement is trusted.
        q: the false discovery rate of ``guardrail_breach`` across the portfolio.
        axis: the models' axis.

    Returns:
        ``breach`` (per model), ``log_e_model`` (the family's log e-value: the log of the mean of its
        guardrails' e-values), ``log_e`` (per guardrail) and ``named`` (per guardrail: its own
        e-value, divided by the family's size, clears the bar the model cleared: breached on its own).
    """
    harm, se = _arr(harm), _arr(harm_se)
    eligible = np.asarray(eligible, dtype=bool) & np.isfinite(harm) & (se > 0)
    log_e = log_e_below(-harm, se, -_arr(tolerance), n_total, tuning)  # H1: harm > tolerance
    log_e, eligible = np.broadcast_arrays(log_e, eligible)
    axis = axis % log_e.ndim
    if axis == log_e.ndim - 1:
        raise ValueError("the models' axis cannot be the guardrails' (last) axis")
    size = eligible.sum(axis=-1)
    has = size > 0
    with np.errstate(divide="ignore"):
        family = special.logsumexp(np.where(eligible, log_e, -np.inf), axis=-1) - np.log(np.maximum(size, 1))
    family = np.where(has, family, 0.0)
    breach = e_bh(family, q, has, axis=axis)
    m = np.maximum(has.sum(axis=axis, keepdims=True), 1)
    k = np.maximum(breach.sum(axis=axis, keepdims=True), 1)
    bar = np.log(m / (q * k))  # the e-BH bar the rejected models cleared
    named = (breach[..., None] & eligible
             & (log_e - np.log(np.maximum(size, 1))[..., None] >= bar[..., None]))
    return {"breach": breach, "log_e_model": np.where(has, family, np.nan),
            "log_e": np.where(eligible, log_e, np.nan), "named": named}


def srm_flags(log_e: ArrayLike, eligible: ArrayLike, level: float = SRM_LEVEL, *, axis: int = 0) -> np.ndarray:
    """Untrustworthy on SRM: e-value >= m / level, m the A/B models of the portfolio (Bonferroni)."""
    eligible = np.asarray(eligible, dtype=bool)
    m = np.maximum(eligible.sum(axis=axis, keepdims=True), 1)
    return eligible & (_arr(log_e) >= np.log(m / level))


def ts_money_flags(p_destroying: ArrayLike, p_cost: ArrayLike, eligible: ArrayLike, has_cost: ArrayLike,
                   q: float = 0.05, *, axis: int = 0) -> dict[str, np.ndarray]:
    """Money flags of time-series models from one-sided p-values computed at their last scheduled look.

    BH across the models at ``q / (2 len(TS_LOOKS))`` per flag type: over the looks a model passes
    through and the two types, the false discovery rate adds up to at most ``q``.
    """
    eligible = np.asarray(eligible, dtype=bool)
    level = q / (2 * len(TS_LOOKS))
    pd_, pc = _arr(p_destroying), _arr(p_cost)
    destroy = benjamini_hochberg(np.where(eligible & np.isfinite(pd_), pd_, np.nan), level, axis=axis)
    cost_family = eligible & np.asarray(has_cost, dtype=bool) & np.isfinite(pc)
    cost = benjamini_hochberg(np.where(cost_family, pc, np.nan), level, axis=axis) & ~destroy
    return {"destroying_value": destroy, "not_covering_cost": cost}


def describe() -> dict[str, Any]:
    """The decision rules' settings, for diagnostics and docs."""
    return {"srm_level": SRM_LEVEL, "srm_prior_sd": SRM_PRIOR_SD,
            "ts_looks": list(TS_LOOKS)}
