"""Money arithmetic: identities the definitions promise, checked on random inputs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from valuetrack.errors import ParameterError
from valuetrack.value.roi import daily_money, money_value, one_sided_p_below, payback_date


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


def _cost(monthly, per_1k, predictions, start, end, live_from, live_to=None, first=None):
    """Running cost of [start, end] from the daily money series (predictions all on ``start``)."""
    preds = pd.Series([float(predictions)], index=pd.Index([start], dtype="object"))
    m = daily_money(first=first or start, last=end, monthly_cost=monthly, cost_per_1k_predictions=per_1k,
                    value_per_unit=1.0, one_off_costs=0.0, amortisation_months=None, live_from=live_from,
                    live_to=live_to, predictions=preds)
    return m.total("cost", start, end)


def test_running_cost_pro_rates_by_live_days_of_each_month() -> None:
    # February 2025 has 28 days; live from the 15th → 14/28 of the month; plus 2,000 predictions at 0.5 per 1k
    assert _cost(2800.0, 0.5, 2000, dt.date(2025, 2, 1), dt.date(2025, 2, 28), dt.date(2025, 2, 15)) == pytest.approx(1401.0)
    # Jan 16 .. Feb 14: 16/31 of January + 14/28 of February
    assert _cost(3100.0, 0, 0, dt.date(2025, 1, 16), dt.date(2025, 2, 14), None) == pytest.approx(1600 + 1550)
    # retired before the period: no fixed cost
    assert _cost(1000.0, 0, 0, dt.date(2025, 3, 1), dt.date(2025, 3, 31), None, dt.date(2025, 2, 1)) == 0.0


def test_a_monthly_cost_that_changes_mid_month_to_the_cent() -> None:
    """4,000.00 a month until 14 June 2025, 6,200.00 from 15 June (June has 30 days), launch 1 March.
    June = 14/30 × 4,000 + 16/30 × 6,200 = 1,866.67 + 3,306.67 = 5,173.33; May = 4,000.00; July = 6,200.00;
    per-prediction cost 0.50 per 1k until 20 June, 0.80 after: 10,000 predictions on 10 June and
    on 25 June → 5.00 + 8.00."""
    from valuetrack.registry.spec import DatedAmount

    monthly = (DatedAmount(dt.date(2025, 3, 1), 4000.0), DatedAmount(dt.date(2025, 6, 15), 6200.0))
    per_1k = (DatedAmount(dt.date(2025, 3, 1), 0.5), DatedAmount(dt.date(2025, 6, 21), 0.8))
    preds = pd.Series([10_000.0, 10_000.0], index=pd.Index([dt.date(2025, 6, 10), dt.date(2025, 6, 25)], dtype="object"))
    m = daily_money(first=dt.date(2025, 3, 1), last=dt.date(2025, 7, 31), monthly_cost=monthly,
                    cost_per_1k_predictions=per_1k, value_per_unit=1.0, one_off_costs=0.0, amortisation_months=None,
                    live_from=dt.date(2025, 3, 1), predictions=preds)
    assert round(m.total("fixed_cost", dt.date(2025, 6, 1), dt.date(2025, 6, 30)), 2) == 5173.33
    assert round(m.total("fixed_cost", dt.date(2025, 5, 1), dt.date(2025, 5, 31)), 2) == 4000.00
    assert round(m.total("fixed_cost", dt.date(2025, 7, 1), dt.date(2025, 7, 31)), 2) == 6200.00
    assert round(m.total("variable_cost", dt.date(2025, 6, 1), dt.date(2025, 6, 30)), 2) == 13.00
    assert round(m.total("cost", dt.date(2025, 6, 1), dt.date(2025, 6, 30)), 2) == 5186.33
    # 1 to 14 June at the old amount only, 15 to 30 June at the new one
    assert round(m.total("fixed_cost", dt.date(2025, 6, 1), dt.date(2025, 6, 14)), 2) == 1866.67
    assert round(m.total("fixed_cost", dt.date(2025, 6, 15), dt.date(2025, 6, 30)), 2) == 3306.67


def test_a_value_per_unit_that_changes_on_a_date_to_the_cent() -> None:
    """0.30 per unit until 9 April 2025, 0.45 from 10 April: 1,000 treated units on 9 April and 2,000
    on 10 April at an effect of 2.0 per unit → 2 × (1,000 × 0.30 + 2,000 × 0.45) = 2,400.00 gross."""
    from valuetrack.registry.spec import DatedAmount

    vpu = (DatedAmount(dt.date(2025, 4, 1), 0.30), DatedAmount(dt.date(2025, 4, 10), 0.45))
    m = daily_money(first=dt.date(2025, 4, 1), last=dt.date(2025, 4, 30), monthly_cost=0.0,
                    cost_per_1k_predictions=0.0, value_per_unit=vpu, one_off_costs=0.0, amortisation_months=None,
                    live_from=dt.date(2025, 4, 1))
    treated = pd.Series([1000.0, 2000.0], index=pd.Index([dt.date(2025, 4, 9), dt.date(2025, 4, 10)], dtype="object"))
    weighted = m.weighted(treated, dt.date(2025, 4, 1), dt.date(2025, 4, 30))
    assert weighted == pytest.approx(1000 * 0.30 + 2000 * 0.45)
    v = money_value(2.0, 0.5, weighted, 1.0, True, 0.0)
    assert round(float(v.gross), 2) == 2400.00
    assert round(float(v.gross_se), 2) == 600.00


def test_an_amortised_one_off_cost_to_the_cent() -> None:
    """90,000.00 incurred on 15 January 2025, before the launch on 1 March 2025, amortised over 12
    months from the launch: 1 March 2025 .. 28 February 2026 = 365 days → 246.575342… a day.
    March = 31 days → 7,643.84; to 31 May (92 days) → 22,684.93; the whole year → 90,000.00.
    Incurred counts at the start of the series (the launch), once."""
    from valuetrack.registry.spec import OneOffCost

    events = (OneOffCost(dt.date(2025, 1, 15), 90_000.0, "build"),)
    m = daily_money(first=dt.date(2025, 3, 1), last=dt.date(2026, 6, 30), monthly_cost=0.0,
                    cost_per_1k_predictions=0.0, value_per_unit=1.0, one_off_costs=events, amortisation_months=12,
                    live_from=dt.date(2025, 3, 1))
    assert round(m.total("amortised", dt.date(2025, 3, 1), dt.date(2025, 3, 31)), 2) == 7643.84
    assert round(m.total("amortised", dt.date(2025, 3, 1), dt.date(2025, 5, 31)), 2) == 22684.93
    assert round(m.total("amortised", dt.date(2025, 3, 1), dt.date(2026, 6, 30)), 2) == 90000.00
    assert m.total("amortised", dt.date(2026, 3, 1), dt.date(2026, 6, 30)) == 0.0
    assert m.total("one_off", dt.date(2025, 3, 1), dt.date(2026, 6, 30)) == 90000.0
    assert m.total("one_off", dt.date(2025, 3, 1), dt.date(2025, 3, 1)) == 90000.0
    # a number means "incurred on the launch date"; the default period is 36 months
    m = daily_money(first=dt.date(2025, 3, 1), last=dt.date(2025, 3, 31), monthly_cost=0.0,
                    cost_per_1k_predictions=0.0, value_per_unit=1.0, one_off_costs=36_525.0, amortisation_months=None,
                    live_from=dt.date(2025, 3, 1))
    # 1 March 2025 .. 29 February 2028 (a leap year) = 1,096 days; March → 36,525 × 31 / 1,096 = 1,033.10
    assert round(m.total("amortised", dt.date(2025, 3, 1), dt.date(2025, 3, 31)), 2) == 1033.10
    net = money_value(1.0, 0.0, 5000.0, 1.0, True, 1000.0 + 1033.10)
    assert round(float(net.net), 2) == 2966.90


def test_payback_counts_one_off_costs_as_incurred() -> None:
    months = [dt.date(2025, m, 1) for m in (1, 2, 3, 4)]
    # 100 at launch (covered in January), another 500 incurred in March: payback starts again and is
    # reached at the end of April (cumulative 900 ≥ 600; March's 500 is not)
    assert payback_date(months, [100, 200, 200, 400], [100, 100, 600, 600]) == dt.date(2025, 4, 30)
    assert payback_date(months, [100, 200, 200, 50], [100, 100, 600, 600]) is None


def test_payback_date() -> None:
    months = [dt.date(2025, m, 1) for m in (1, 2, 3, 4)]
    assert payback_date(months, [100, 200, 300, 400], 550) == dt.date(2025, 3, 31)
    assert payback_date(months, [100, 200, 300, 400], 5000) is None


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ParameterError, match="alpha"):
        money_value(1, 1, 1, 1, True, 1, alpha=1.5)
    with pytest.raises(ParameterError, match="value_per_unit"):
        money_value(1, 1, 1, -1, True, 1)


def test_a_negative_cost_is_a_credit_and_leaves_roi_undefined() -> None:
    """A billed period whose credits exceed its charges (D40): net = gross + the credit, no ROI."""
    v = money_value(2.0, 1.0, 10, 3.0, True, -5.0)
    assert float(v.net) == 65.0 and np.isnan(v.roi) and np.isnan(v.roi_lo)


def test_a_time_series_gap_at_a_value_per_unit_that_changed() -> None:
    """A daily gap of 10 KPI units (se 2 per day, independent) over 1..30 April 2025; value per unit
    3.00 until 19 April and 4.00 from the 20th: 19 × 10 × 3 + 11 × 10 × 4 = 1,010.00. The standard
    error adds the stretches' errors: 3 × 2√19 + 4 × 2√11 (an upper bound for correlated stretches)."""
    from valuetrack.attribution.methods import Effect
    from valuetrack.registry.spec import DatedAmount
    from valuetrack.value.portfolio import _ts_money

    class Gap:
        def gap_between(self, start, end):  # noqa: ANN001, ANN202
            days = (end - start).days + 1
            return 10.0 * days, 2.0 * np.sqrt(days), (0.0, 0.0)

    effect = Effect(method="its", per_unit=None, per_unit_se=None, effect_rel=None, p_value=None, srm_p_value=None,
                    trusted=True, reason=None, mature_through=None, ts=Gap())
    vpu = (DatedAmount(dt.date(2025, 4, 1), 3.0), DatedAmount(dt.date(2025, 4, 20), 4.0))
    m = daily_money(first=dt.date(2025, 4, 1), last=dt.date(2025, 4, 30), monthly_cost=0.0, cost_per_1k_predictions=0.0,
                    value_per_unit=vpu, one_off_costs=0.0, amortisation_months=None, live_from=dt.date(2025, 4, 1))
    gross, se = _ts_money(effect, m, dt.date(2025, 4, 1), dt.date(2025, 4, 30))
    assert round(gross, 2) == 1010.00
    assert se == pytest.approx(3 * 2 * np.sqrt(19) + 4 * 2 * np.sqrt(11))
    # one stretch only: exactly the gap at that amount
    gross, se = _ts_money(effect, m, dt.date(2025, 4, 20), dt.date(2025, 4, 30))
    assert round(gross, 2) == 440.00 and se == pytest.approx(4 * 2 * np.sqrt(11))
