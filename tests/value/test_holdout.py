"""Holdout sizing: the formulas agree with a direct simulation of the design they describe."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from valuetrack.errors import ParameterError
from valuetrack.value.holdout import size_holdout

BASE = dict(value_per_unit=2.0, higher_is_better=True, alpha=0.05, power=0.8)


def _se(sigma: float, n_t: float, n_c: float) -> float:
    return sigma * np.sqrt(1 / n_t + 1 / n_c)


def test_min_control_share_gives_the_requested_power_by_simulation() -> None:
    sigma, n_t, n_c, cost = 10.0, 90_000, 10_000, 90_000 * 2.0 * 0.25  # break-even δ = 0.25
    h = size_holdout(effect=0.3, effect_se=_se(sigma, n_t, n_c), n_treatment=n_t, n_control=n_c, cost=cost,
                     daily_units=1000, **BASE)
    assert h.breakeven_abs == pytest.approx(0.25)
    c = h.min_control_share
    assert c is not None and 0 < c < 0.5
    # at that share, a true effect of exactly break-even is detected with 80 % power
    total = n_t + n_c
    se = _se(sigma, total * (1 - c), total * c)
    rng = np.random.default_rng(1)
    est = rng.normal(0.25, se, 400_000)
    power = (np.abs(est / se) > stats.norm.ppf(0.975)).mean()
    assert power == pytest.approx(0.8, abs=0.005)


def test_days_to_decision_and_forgone_value() -> None:
    sigma, n_t, n_c = 10.0, 9_000, 1_000
    se = _se(sigma, n_t, n_c)
    h = size_holdout(effect=0.5, effect_se=se, n_treatment=n_t, n_control=n_c, cost=n_t * 2.0 * 0.25,
                     daily_units=500, **BASE)
    assert h.forgone_value == pytest.approx(0.5 * n_c * 2.0) and h.forgone_value_se == pytest.approx(se * n_c * 2.0)
    assert h.detectable_now is False and h.days_to_decision > 0
    # after that many more days at the same split, the MDE equals break-even
    n_more = h.days_to_decision * 500
    se_then = _se(sigma, n_t + 0.9 * n_more, n_c + 0.1 * n_more)
    assert (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * se_then == pytest.approx(0.25, rel=1e-9)


def test_lower_is_better_and_undetectable_design() -> None:
    h = size_holdout(effect=-1.0, effect_se=5.0, n_treatment=50, n_control=50, cost=1.0, daily_units=0,
                     value_per_unit=1.0, higher_is_better=False)
    assert h.forgone_value == pytest.approx(50.0)  # a loss reduction forgone on the holdout
    assert h.min_control_share is None and h.days_to_decision is None


def test_no_effect_yet_and_bad_parameters() -> None:
    h = size_holdout(effect=None, effect_se=None, n_treatment=0, n_control=0, cost=10, daily_units=1, **BASE)
    assert h.forgone_value is None and h.mde_abs is None
    with pytest.raises(ParameterError):
        size_holdout(effect=1, effect_se=1, n_treatment=-1, n_control=1, cost=1, daily_units=1, **BASE)
