"""Champion vs challenger: a holdout and several model versions in one experiment.

Three comparisons, each on **net value per unit** (the KPI effect in money, sign-adjusted, minus the
difference in cost per unit, because versions cost different amounts):

- the champion against the holdout, the challenger against the holdout, and
- the challenger against the champion directly (the decision that matters).

Each comparison has the Gaussian-mixture e-value and confidence sequence of the A/B engine
(attribution/sequential.py), so they stay valid when looked at every day. Multiplicity: Bonferroni
over the ``m`` comparisons, on e-values (a comparison is significant when its e-value reaches
m / alpha) and on the sequences (each at level alpha / m). By Ville's inequality and a union bound,
the chance that any true null is ever rejected, over any number of looks, is at most alpha.

The recommendation reads the challenger-vs-champion sequence of net value per unit:

- **promote** when its lower end is above 0: the challenger earns more per unit, net of cost;
- **keep** when its upper end is below 0: the champion earns more;
- otherwise **not enough evidence yet**, with the days until the sequence would exclude 0 if the
  current estimate held (from the units per day), or "no difference in sight" when that is more
  than ``MAX_DAYS`` away.

SRM is checked against the planned split of all arms: a χ² test (k − 1 degrees of freedom) and a
sequential Dirichlet-multinomial e-value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from valuetrack.attribution import sequential as seq
from valuetrack.attribution.ab import ABConfig, ArmStats, analyze_ab_batch
from valuetrack.errors import ParameterError

#: Days beyond which a decision is reported as not in sight.
MAX_DAYS = 365
#: Growth factors of the sample tried when projecting the days to a decision.
_GROWTH = np.geomspace(1.0, 200.0, 400)


@dataclass(frozen=True)
class Design:
    """Who is who in the experiment, and what each arm costs per unit."""

    holdout: str
    champion: str
    challenger: str
    shares: Mapping[str, float]
    cost_per_unit: Mapping[str, float]

    def __post_init__(self) -> None:
        arms = (self.holdout, self.champion, self.challenger)
        if len(set(arms)) != 3:
            raise ParameterError("holdout, champion and challenger must be three different arms")
        missing = [a for a in arms if a not in self.shares]
        if missing:
            raise ParameterError(f"planned shares missing for arm(s) {missing}")
        total = sum(self.shares[a] for a in arms)
        if abs(total - 1.0) > 1e-6 or any(self.shares[a] <= 0 for a in arms):
            raise ParameterError(f"planned shares must be > 0 and add up to 1; got {dict(self.shares)}")

    @property
    def comparisons(self) -> list[tuple[str, str]]:
        """(treatment, control) pairs: each version against the holdout, then challenger vs champion."""
        return [(self.champion, self.holdout), (self.challenger, self.holdout), (self.challenger, self.champion)]


def dirichlet_srm_log_e(counts: ArrayLike, shares: ArrayLike, prior_sd: float = 0.01) -> np.ndarray:
    """Log e-value of a Dirichlet-multinomial mixture against the planned split (last axis = arms).

    The concentration is set so that the smallest arm's share has prior sd ``prior_sd``; with two
    arms this is the beta-binomial of sequential.srm_log_e. An exact test martingale under the plan.
    """
    n = np.asarray(counts, dtype=float)
    p = np.asarray(shares, dtype=float)
    pmin = p.min()
    conc = max(pmin * (1 - pmin) / prior_sd**2 - 1.0, 1e-9)
    a = conc * p
    out = (special.gammaln(conc) - special.gammaln(conc + n.sum(axis=-1))
           + (special.gammaln(a + n) - special.gammaln(a) - special.xlogy(n, p)).sum(axis=-1))
    return np.minimum(out, seq.MAX_LOG_E_VALUE)


def compare_versions(arms: Mapping[str, ArmStats], design: Design, *, value_per_unit: float = 1.0,
                     higher_is_better: bool = True, config: ABConfig | None = None,
                     tuning: ArrayLike | None = None, daily_units: ArrayLike | None = None) -> dict[str, Any]:
    """Value each version against the holdout and the challenger against the champion.

    Args:
        arms: each arm's sufficient statistics (fields may be arrays: batch axes broadcast).
        design: the arms' roles, planned shares and costs per unit.
        value_per_unit: money per KPI unit.
        higher_is_better: False flips the sign (a reduction is a gain).
        config: A/B settings (metric, alpha, CUPED).
        tuning: units at which the sequences are tightest (default: the units seen so far).
        daily_units: units a day across all arms, for the days to a decision (None: not projected).

    Returns:
        ``comparisons``: per pair, ``net_per_unit``, ``se``, ``cs`` (at alpha / m), ``log_e_value``,
        ``significant``; ``recommendation`` (array of "promote" / "keep" / "not enough evidence yet"),
        ``days_to_decision`` (NaN when decided or not projected, inf when not in sight),
        ``srm_p_value`` and ``srm_log_e_value``.
    """
    config = config or ABConfig()
    missing = [a for a in (design.holdout, design.champion, design.challenger) if a not in arms]
    if missing:
        raise ParameterError(f"no data for arm(s) {missing}")
    m = len(design.comparisons)
    level = config.alpha / m
    sign = 1.0 if higher_is_better else -1.0
    out: dict[str, Any] = {"comparisons": {}}
    for treated, control in design.comparisons:
        r = analyze_ab_batch(arms[control], arms[treated], config,
                             planned_treatment_share=design.shares[treated] / (design.shares[treated] + design.shares[control]))
        n = np.asarray(arms[control].n, dtype=float) + np.asarray(arms[treated].n, dtype=float)
        tune = n if tuning is None else np.asarray(tuning, dtype=float) * (design.shares[treated] + design.shares[control])
        net = sign * r["effect_abs"] * value_per_unit - (design.cost_per_unit.get(treated, 0.0)
                                                          - design.cost_per_unit.get(control, 0.0))
        se = r["se_abs"] * value_per_unit
        half = se * seq.cs_multiplier(n, level, tune)
        log_e = seq.log_e_value(net, se, n, level, tune)
        out["comparisons"][f"{treated} vs {control}"] = {
            "net_per_unit": net, "se": se, "cs": np.stack([net - half, net + half], axis=-1),
            "log_e_value": log_e, "significant": log_e >= np.log(m / config.alpha), "n": n, "tuning": tune}
    duel = out["comparisons"][f"{design.challenger} vs {design.champion}"]
    lo, hi = duel["cs"][..., 0], duel["cs"][..., 1]
    out["recommendation"] = np.where(lo > 0, "promote", np.where(hi < 0, "keep", "not enough evidence yet"))
    out["days_to_decision"] = _days_to_decision(duel, level, daily_units, design, lo > 0, hi < 0)
    counts = np.stack([np.asarray(arms[a].n, dtype=float) for a in (design.holdout, design.champion, design.challenger)], axis=-1)
    shares = np.array([design.shares[a] for a in (design.holdout, design.champion, design.challenger)])
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = np.where(total > 0, (counts - total * shares) ** 2 / (total * shares), 0.0).sum(axis=-1)
    out["srm_p_value"] = special.chdtrc(len(shares) - 1, chi2)
    out["srm_log_e_value"] = dirichlet_srm_log_e(counts, shares)
    return out


def _days_to_decision(duel: dict[str, Any], level: float, daily_units: ArrayLike | None, design: Design,
                      promoted: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Days until the duel's sequence would exclude 0 if the estimate held and units kept coming."""
    if daily_units is None:
        return np.full(np.shape(duel["net_per_unit"]), np.nan)
    net, se, n, tune = (np.asarray(duel[k], dtype=float)[..., None] for k in ("net_per_unit", "se", "n", "tuning"))
    g = _GROWTH.reshape((1,) * (net.ndim - 1) + (-1,))
    half = se / np.sqrt(g) * seq.cs_multiplier(n * g, level, tune)
    reach = np.abs(net) > half
    first = np.where(reach.any(axis=-1), _GROWTH[np.argmax(reach, axis=-1)], np.inf)
    per_day = np.asarray(daily_units, dtype=float) * (design.shares[design.challenger] + design.shares[design.champion])
    days = np.ceil((first - 1.0) * n[..., 0] / per_day)
    days = np.where(days > MAX_DAYS, np.inf, days)
    return np.where(promoted | kept, np.nan, days)
