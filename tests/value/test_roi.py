"""Money arithmetic: identities the definitions promise, checked on random inputs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy import stats

from valuetrack.errors import ParameterError
from valuetrack.value.roi import money_value, one_sided_p_below, payback_date, period_cost


def _random(k: int = 500, seed: int = 3):
    rng = np.random.default_rng(seed)
    return dict(effect=rng.normal(0.5, 1, k), effect_se=rng.gamma(2, 0.2, k), units=rng.integers(0, 50_000, k),
                value_per_unit=rng.gamma(2, 5, k), higher_is_better=rng.random(k) < 0.7, cost=rng.gamma(2, 2000, k))


def test_roi_interval_is_gross_interval_over_cost_minus_one() -> None:
    args = _random()
    v = money_value(**args)
    z = stats.norm.ppf(0.975)
    gross_lo, gross_hi = v.gross - z * v.gross_se, v.gross + z * v.gross_se
    np.testing.assert_allclose(v.roi_lo, gross_lo / v.cost - 1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v.roi_hi, gross_hi / v.cost - 1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v.net_hi - v.net_lo, gross_hi - gross_lo, rtol=1e-12)  # fixed cost shifts only


def test_lower_is_better_flips_the_sign() -> None:
    up = money_value(effect=-2.0, effect_se=0.5, units=100, value_per_unit=3.0, higher_is_better=True, cost=0)
    down = money_value(effect=-2.0, effect_se=0.5, units=100, value_per_unit=3.0, higher_is_better=False, cost=0)
    assert float(up.gross) == -600.0 and float(down.gross) == 600.0
    assert float(down.prob_positive) == pytest.approx(1 - float(up.prob_positive))


def test_zero_cost_has_no_roi_and_zero_se_is_certain() -> None:
    v = money_value(effect=[1.0, -1.0], effect_se=[0.0, 0.0], units=[10, 10], value_per_unit=[1, 1],
                    higher_is_better=[True, True], cost=[0.0, 5.0])
    assert np.isnan(v.roi[0]) and v.roi[1] == pytest.approx(-15 / 5)
    assert list(v.prob_positive) == [1.0, 0.0] and list(v.expected_loss) == [0.0, 15.0]


def test_expected_loss_and_probability_match_monte_carlo() -> None:
    rng = np.random.default_rng(11)
    v = money_value(effect=0.2, effect_se=0.3, units=1000, value_per_unit=2.0, higher_is_better=True, cost=300.0)
    draws = rng.normal(float(v.net), float(v.gross_se), 2_000_000)
    assert float(v.prob_positive) == pytest.approx((draws > 0).mean(), abs=2e-3)
    assert float(v.expected_loss) == pytest.approx(np.maximum(0, -draws).mean(), rel=5e-3)


def test_one_sided_p_value_is_calibrated() -> None:
    rng = np.random.default_rng(5)
    se = rng.gamma(2, 1, 200_000)
    truth = 10.0
    estimate = truth + rng.normal(0, se)
    p = one_sided_p_below(estimate, se, truth)  # H0 true at the boundary → uniform p
    assert abs((p < 0.05).mean() - 0.05) < 0.002


def test_period_cost_pro_rates_by_live_days_of_each_month() -> None:
    # February 2025 has 28 days; live from the 15th → 14/28 of the month; plus 2,000 predictions at 0.5 per 1k
    assert period_cost(2800.0, 0.5, 2000, dt.date(2025, 2, 1), dt.date(2025, 2, 28), dt.date(2025, 2, 15)) == pytest.approx(1401.0)
    # Jan 16 .. Feb 14: 16/31 of January + 14/28 of February
    assert period_cost(3100.0, 0, 0, dt.date(2025, 1, 16), dt.date(2025, 2, 14), None) == pytest.approx(1600 + 1550)
    # retired before the period: no fixed cost
    assert period_cost(1000.0, 0, 0, dt.date(2025, 3, 1), dt.date(2025, 3, 31), None, dt.date(2025, 2, 1)) == 0.0
    with pytest.raises(ParameterError):
        period_cost(1.0, 0, 0, dt.date(2025, 3, 2), dt.date(2025, 3, 1), None)


def test_payback_date() -> None:
    months = [dt.date(2025, m, 1) for m in (1, 2, 3, 4)]
    assert payback_date(months, [100, 200, 300, 400], 550) == dt.date(2025, 3, 31)
    assert payback_date(months, [100, 200, 300, 400], 5000) is None


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ParameterError, match="alpha"):
        money_value(1, 1, 1, 1, True, 1, alpha=1.5)
    with pytest.raises(ParameterError, match="cost"):
        money_value(1, 1, 1, 1, True, -1)
