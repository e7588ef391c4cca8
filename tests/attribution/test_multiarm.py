"""Champion vs challenger (issue 19): seeded experiments looked at every day.

Each experiment has a holdout (10 %), a champion (45 %) and a challenger (45 %), 300–3,000 units a
day with a weekly cycle, a revenue-like KPI whose baseline drifts, and costs per unit that differ
between versions. Cumulative per-arm sums go through ``compare_versions`` at each daily look.

- With every arm equal in net value (true nulls everywhere) the chance that any comparison is ever
  called significant within 270 daily looks is at most 5 % (family-wise, over looks).
- In designs sized for 80 % power at 90 days (fixed-horizon two-sided test of the duel), the first
  recommendation taken (promote or keep), looked at daily until day 270, is right in ≥ 90 %.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from valuetrack.attribution.ab import ArmStats
from valuetrack.attribution.multiarm import Design, compare_versions, dirichlet_srm_log_e
from valuetrack.errors import ParameterError

pytestmark = pytest.mark.slow

EXPERIMENTS, DAYS, HORIZON = 2000, 270, 90
SHARES = {"holdout": 0.1, "v1": 0.45, "v2": 0.45}
COSTS = {"holdout": 0.0, "v1": 0.02, "v2": 0.05}


def experiments(seed: int, lift_v1: np.ndarray, lift_v2: np.ndarray) -> tuple[dict[str, ArmStats], np.ndarray]:
    """Cumulative sums per arm, shape (EXPERIMENTS, DAYS), and units per day."""
    rng = np.random.default_rng(seed)
    daily = rng.uniform(300, 3000, (EXPERIMENTS, 1))
    t = np.arange(DAYS)[None, :]
    units = daily * (1 + 0.2 * np.sin(2 * np.pi * t / 7))
    base = 5 + rng.normal(0, 0.02, (EXPERIMENTS, DAYS)).cumsum(axis=1)
    sigma = 8.0
    arms = {}
    for name, lift in (("holdout", 0.0), ("v1", lift_v1), ("v2", lift_v2)):
        n = rng.poisson(units * SHARES[name]).astype(float)
        s1 = rng.normal(n * (base + lift), np.sqrt(np.maximum(n, 1)) * sigma)
        s2 = sigma**2 * rng.chisquare(np.maximum(n - 1, 1)) + np.where(n > 0, s1**2 / np.maximum(n, 1), 0.0)
        arms[name] = ArmStats(n.cumsum(1), s1.cumsum(1), s2.cumsum(1))
    return arms, daily


def design() -> Design:
    return Design("holdout", "v1", "v2", SHARES, COSTS)


def test_family_wise_error_over_daily_looks() -> None:
    # every version's lift equals its extra cost per unit: net value per unit is the same in all arms
    arms, daily = experiments(1, np.full((EXPERIMENTS, 1), COSTS["v1"]), np.full((EXPERIMENTS, 1), COSTS["v2"]))
    r = compare_versions(arms, design(), tuning=daily * HORIZON)
    any_sig = np.zeros(EXPERIMENTS, dtype=bool)
    for c in r["comparisons"].values():
        any_sig |= c["significant"].any(axis=1)
    decided = (r["recommendation"] != "not enough evidence yet").any(axis=1)
    assert any_sig.mean() <= 0.05
    assert decided.mean() <= 0.05
    # the same looks with fixed-horizon two-sided tests at 5 % per comparison, no correction
    fixed = np.zeros(EXPERIMENTS, dtype=bool)
    for c in r["comparisons"].values():
        fixed |= (np.abs(c["net_per_unit"] / c["se"]) > stats.norm.ppf(0.975)).any(axis=1)
    assert fixed.mean() > 0.3


def test_recommendation_is_right_in_designs_sized_for_80_percent_power() -> None:
    rng = np.random.default_rng(2)
    daily = None
    # the duel's standard error at the 90-day horizon for each experiment, from its own traffic
    arms0, daily = experiments(3, np.zeros((EXPERIMENTS, 1)), np.zeros((EXPERIMENTS, 1)))
    n_each = daily[:, 0] * HORIZON * SHARES["v1"]
    se90 = 8.0 * np.sqrt(2 / n_each)
    delta = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * se90
    better = rng.random(EXPERIMENTS) < 0.5
    net_gap = np.where(better, delta, -delta)[:, None]  # challenger minus champion, net per unit
    lift_v1 = np.full((EXPERIMENTS, 1), 0.3)
    lift_v2 = lift_v1 + net_gap + (COSTS["v2"] - COSTS["v1"])
    arms, daily = experiments(3, lift_v1, lift_v2)
    r = compare_versions(arms, design(), tuning=daily * HORIZON, daily_units=daily)
    rec = r["recommendation"]
    decided = rec != "not enough evidence yet"
    first = np.where(decided.any(axis=1), decided.argmax(axis=1), -1)
    final = np.where(first >= 0, rec[np.arange(EXPERIMENTS), np.maximum(first, 0)], "not enough evidence yet")
    right = np.where(better, final == "promote", final == "keep")
    wrong = np.where(better, final == "keep", final == "promote")
    assert right.mean() >= 0.90, (right.mean(), np.median(first[first >= 0]))
    assert wrong.mean() <= 0.025
    # days to a decision, projected at day 30 for the experiments still open then, is finite and
    # of the right order (the decision came within 3x the projection for most)
    at30 = r["days_to_decision"][:, 29]
    open30 = ~decided[:, 29] & (first > 29)
    proj = at30[open30]
    assert np.isfinite(proj).mean() > 0.5


def test_srm_against_the_planned_split_of_all_arms() -> None:
    shares = np.array([0.1, 0.45, 0.45])
    rng = np.random.default_rng(4)
    ok = rng.multinomial(50_000, shares, size=4000).astype(float)
    assert (dirichlet_srm_log_e(ok, shares) >= np.log(20)).mean() <= 0.05
    bad = rng.multinomial(50_000, [0.09, 0.455, 0.455], size=400).astype(float)
    assert (dirichlet_srm_log_e(bad, shares) >= np.log(20)).mean() >= 0.9
    # with two arms it is the beta-binomial mixture of the portfolio's SRM check
    from valuetrack.value.anytime import srm_log_e

    k = np.array([[5100.0, 4900.0], [300.0, 700.0]])
    two = dirichlet_srm_log_e(k, np.array([0.5, 0.5]))
    assert two == pytest.approx(srm_log_e(k[:, 0], k[:, 1], 0.5), rel=1e-9)


def test_design_is_checked() -> None:
    with pytest.raises(ParameterError, match="add up to 1"):
        Design("h", "a", "b", {"h": 0.1, "a": 0.5, "b": 0.5}, {})
    with pytest.raises(ParameterError, match="three different"):
        Design("h", "a", "a", {"h": 0.5, "a": 0.5}, {})
