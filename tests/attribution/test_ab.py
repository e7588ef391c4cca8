"""The A/B engine against independent calculations: formulas, degenerate inputs, API contracts."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from valuetrack.attribution import portfolio, sequential
from valuetrack.attribution.ab import (
    REASON_EMPTY_CONTROL,
    REASON_N_LT_2,
    REASON_RATIO_DEN_ZERO,
    REASON_ZERO_VARIANCE,
    REASON_ZERO_VARIANCE_COMPAT,
    ABConfig,
    ABResult,
    ArmStats,
    RatioArmStats,
    analyze_ab,
    analyze_ab_batch,
    attribute_frame,
    benjamini_hochberg,
    check_covariate_window,
    srm_test,
)
from valuetrack.errors import ParameterError, ValidationError


def revenue(rng, n, buy=0.2, lift=1.0):
    return rng.lognormal(2.0, 1.0, n) * (rng.random(n) < buy) * lift


@pytest.fixture()
def rng():
    return np.random.default_rng(2024)


# ---- fixed-horizon formulas --------------------------------------------------------------------


def test_welch_matches_scipy_on_unit_rows(rng):
    y0, y1 = revenue(rng, 700), revenue(rng, 640, lift=1.3)
    r = analyze_ab(ArmStats.from_values(y0), ArmStats.from_values(y1), ABConfig(alpha=0.1))
    ref = stats.ttest_ind(y1, y0, equal_var=False)
    ci = ref.confidence_interval(0.9)
    assert r.effect_abs == pytest.approx(y1.mean() - y0.mean(), rel=1e-12)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert r.dof == pytest.approx(ref.df, rel=1e-9)
    assert r.ci_abs == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert r.se_abs == pytest.approx(math.sqrt(y0.var(ddof=1) / 700 + y1.var(ddof=1) / 640), rel=1e-12)
    # relative: the delta method for the ratio of two independent means
    m0, m1 = y0.mean(), y1.mean()
    var_rel = y1.var(ddof=1) / 640 / m0**2 + m1**2 * y0.var(ddof=1) / 700 / m0**4
    assert r.effect_rel == pytest.approx(m1 / m0 - 1, rel=1e-12)
    assert r.se_rel == pytest.approx(math.sqrt(var_rel), rel=1e-12)
    assert r.p_value_rel == pytest.approx(2 * stats.t.sf(abs(r.effect_rel) / r.se_rel, ref.df), rel=1e-9)


def test_sums_add_across_days(rng):
    days = [(revenue(rng, 100 + d), revenue(rng, 90 + d)) for d in range(5)]
    total_c = sum((ArmStats.from_values(a) for a, _ in days[1:]), ArmStats.from_values(days[0][0]))
    total_t = sum((ArmStats.from_values(b) for _, b in days[1:]), ArmStats.from_values(days[0][1]))
    whole = analyze_ab(ArmStats.from_values(np.concatenate([a for a, _ in days])),
                       ArmStats.from_values(np.concatenate([b for _, b in days])))
    summed = analyze_ab(ArmStats(*(float(v) for v in (total_c.n, total_c.sum_y, total_c.sum_y2))),
                        ArmStats(*(float(v) for v in (total_t.n, total_t.sum_y, total_t.sum_y2))))
    assert summed.ci_abs == pytest.approx(whole.ci_abs, rel=1e-10)


def test_proportion_uses_p_one_minus_p():
    r = analyze_ab(ArmStats(4000, 80, 80), ArmStats(4100, 110, 110), ABConfig(metric="proportion"))
    pa, pb = 80 / 4000, 110 / 4100
    assert r.se_abs == pytest.approx(math.sqrt(pa * (1 - pa) / 4000 + pb * (1 - pb) / 4100), rel=1e-12)
    assert r.effect_rel == pytest.approx(pb / pa - 1, rel=1e-12)
    with pytest.raises(ParameterError, match=r"sum_y must be in \[0, n\]"):
        analyze_ab(ArmStats(10, 11, 11), ArmStats(10, 1, 1), ABConfig(metric="proportion"))


def test_ratio_delta_method_equals_linearisation(rng):
    def arm(n, lift):
        sessions = 1.0 + rng.poisson(2.0, n)
        return revenue(rng, n, lift=lift) * sessions, sessions
    (na_, da), (nb_, db) = arm(900, 1.0), arm(950, 1.1)
    r = analyze_ab(RatioArmStats.from_values(na_, da), RatioArmStats.from_values(nb_, db), ABConfig(metric="ratio"))
    ra, rb = na_.sum() / da.sum(), nb_.sum() / db.sum()
    # influence function of a ratio of means: (num - R den) / mean(den)
    za, zb = (na_ - ra * da) / da.mean(), (nb_ - rb * db) / db.mean()
    assert r.effect_abs == pytest.approx(rb - ra, rel=1e-12)
    assert r.se_abs == pytest.approx(math.sqrt(za.var(ddof=1) / 900 + zb.var(ddof=1) / 950), rel=1e-9)
    with pytest.raises(ParameterError, match="RatioArmStats"):
        analyze_ab(ArmStats(3, 1, 1), ArmStats(3, 1, 1), ABConfig(metric="ratio"))


# ---- CUPED --------------------------------------------------------------------------------------


def cuped_data(rng, n0=3000, n1=3100, lift=1.1):
    def arm(n, lift):
        level = rng.lognormal(2, 0.8, n) * (rng.random(n) < 0.3)
        return level * rng.lognormal(0, 0.4, n) * lift, level * rng.lognormal(0, 0.4, n)
    return arm(n0, 1.0), arm(n1, lift)


def test_cuped_theta_is_pooled_ols_slope_and_unadjusted_is_beside_it(rng):
    (y0, x0), (y1, x1) = cuped_data(rng)
    r = analyze_ab(ArmStats.from_values(y0, x0), ArmStats.from_values(y1, x1), ABConfig(cuped=True))
    x, y = np.concatenate([x0, x1]), np.concatenate([y0, y1])
    theta = np.cov(y, x)[0, 1] / x.var(ddof=1)
    assert r.theta == pytest.approx(theta, rel=1e-10)
    adj = (y1.mean() - theta * x1.mean()) - (y0.mean() - theta * x0.mean())
    assert r.effect_abs == pytest.approx(adj, rel=1e-10)
    assert r.effect_rel == pytest.approx(adj / y0.mean(), rel=1e-10)  # divided by the unadjusted mean
    se = math.sqrt((y0 - theta * x0).var(ddof=1) / x0.size + (y1 - theta * x1).var(ddof=1) / x1.size)
    assert r.se_abs == pytest.approx(se, rel=1e-9)
    plain = analyze_ab(ArmStats.from_values(y0), ArmStats.from_values(y1))
    assert r.unadjusted is not None and not r.unadjusted.cuped
    assert r.unadjusted.ci_abs == pytest.approx(plain.ci_abs, rel=1e-12)
    assert r.variance_reduction == pytest.approx(1 - r.se_abs**2 / plain.se_abs**2, rel=1e-9)
    assert 0.2 < r.variance_reduction < 1


def test_relative_cuped_variance_is_the_full_delta_method(rng):
    """Default: gradient of (ybar_b - θ xbar_b - ybar_a + θ xbar_a) / ybar_a against the arms'
    covariance of means (θ held fixed); gbstats_compat drops the control-side cross terms."""
    (y0, x0), (y1, x1) = cuped_data(rng, lift=1.3)
    c, t = ArmStats.from_values(y0, x0), ArmStats.from_values(y1, x1)
    r = analyze_ab(c, t, ABConfig(cuped=True))
    th = r.theta
    g = lambda m: (m[0] - th * m[1] - m[2] + th * m[3]) / m[2]  # noqa: E731  (yb, xb, ya, xa)
    m = np.array([y1.mean(), x1.mean(), y0.mean(), x0.mean()])
    grad = np.array([(g(m + h) - g(m - h)) / (2 * 1e-6) for h in np.eye(4) * 1e-6])
    cov = np.zeros((4, 4))
    cov[:2, :2] = np.cov(np.vstack([y1, x1])) / y1.size
    cov[2:, 2:] = np.cov(np.vstack([y0, x0])) / y0.size
    assert r.se_rel == pytest.approx(math.sqrt(grad @ cov @ grad), rel=1e-6)
    compat = analyze_ab(c, t, ABConfig(cuped=True, gbstats_compat=True))
    va, vb = (y0 - th * x0).var(ddof=1), (y1 - th * x1).var(ddof=1)
    gb = vb / (m[2] ** 2 * y1.size) + va * m[0] ** 2 / (m[2] ** 4 * y0.size)
    assert compat.se_rel == pytest.approx(math.sqrt(gb), rel=1e-9)
    assert compat.effect_rel == r.effect_rel and compat.ci_abs == r.ci_abs
    assert abs(compat.se_rel / r.se_rel - 1) > 1e-4


def test_cuped_without_covariate_sums_or_with_ratio_is_refused():
    with pytest.raises(ParameterError, match="cuped=True needs sum_x"):
        analyze_ab(ArmStats(10, 5, 9), ArmStats(10, 6, 9), ABConfig(cuped=True))
    with pytest.raises(ParameterError, match="cuped: not available for metric='ratio'"):
        ABConfig(metric="ratio", cuped=True)


def test_cuped_constant_covariate_falls_back_with_a_note():
    c = ArmStats(100, 50.0, 80.0, 100.0, 100.0, 50.0)  # x == 1 for every unit
    t = ArmStats(100, 60.0, 90.0, 100.0, 100.0, 60.0)
    r = analyze_ab(c, t, ABConfig(cuped=True))
    assert r.trusted and r.theta == 0.0 and "no adjustment" in r.note
    assert r.ci_abs == r.unadjusted.ci_abs


def test_covariate_window_overlapping_exposure_is_refused():
    start = dt.date(2025, 3, 1)
    check_covariate_window(dt.date(2025, 1, 30), start, start)  # ends exactly at exposure: fine
    with pytest.raises(ParameterError, match="covariate_window: ends 2025-03-02, after exposure starts 2025-03-01"):
        ABConfig(cuped=True, covariate_window=(dt.date(2025, 2, 1), dt.date(2025, 3, 2)), exposure_start=start)
    with pytest.raises(ParameterError, match="exposure_start: required"):
        ABConfig(cuped=True, covariate_window=(dt.date(2025, 2, 1), dt.date(2025, 3, 1)))


# ---- sequential, Bayesian, SRM ------------------------------------------------------------------


def test_sequence_is_wider_and_its_p_value_is_the_same_test(rng):
    nc = rng.integers(50, 20000, 300)
    nt = rng.integers(50, 20000, 300)
    sc, st = rng.binomial(nc, 0.05).astype(float), rng.binomial(nt, 0.055).astype(float)
    b = analyze_ab_batch(ArmStats(nc, sc, sc), ArmStats(nt, st, st), ABConfig(metric="proportion"))
    assert np.all(b["cs_abs"][:, 0] < b["ci_abs"][:, 0]) and np.all(b["cs_abs"][:, 1] > b["ci_abs"][:, 1])
    outside = (b["cs_abs"][:, 0] > 0) | (b["cs_abs"][:, 1] < 0)
    assert np.array_equal(outside, b["p_value_seq"] < 0.05)
    assert outside.any() and not outside.all()
    # the multiplier is ~3 fixed-horizon standard errors near the tuning size
    assert float(sequential.cs_multiplier(5000, 0.05, 5000)) == pytest.approx(3.04, abs=0.01)


def test_bayesian_view_states_its_prior_and_integrates_correctly():
    c, t = ArmStats(2000, 1000.0, 3000.0), ArmStats(2000, 1060.0, 3100.0)
    flat = analyze_ab(c, t)
    assert flat.prior == {"type": "flat"}
    assert flat.prob_positive == pytest.approx(stats.norm.cdf(flat.effect_abs / flat.se_abs), rel=1e-12)
    pdf = lambda d: stats.norm.pdf(d, flat.effect_abs, flat.se_abs)  # noqa: E731
    loss, _ = integrate.quad(lambda d: -d * pdf(d), -np.inf, 0)
    assert flat.expected_loss == pytest.approx(loss, rel=1e-7)
    lower = analyze_ab(c, t, ABConfig(higher_is_better=False))
    gain, _ = integrate.quad(lambda d: d * pdf(d), 0, np.inf)
    assert lower.expected_loss == pytest.approx(gain, rel=1e-7)
    tight = analyze_ab(c, t, ABConfig(prior_sd=0.01, prior_scale="relative"))
    assert tight.prior == {"type": "normal", "mean": 0.0, "sd": 0.01, "scale": "relative"}
    assert 0.5 < tight.prob_positive < flat.prob_positive  # shrunk towards 0
    assert json.loads(json.dumps(tight.to_dict()))["prior"]["sd"] == 0.01


def test_srm_marks_the_result_untrusted_with_the_numbers():
    assert float(srm_test(5000, 5000, 0.5)) == 1.0
    p = srm_test(np.array([5000, 1000]), np.array([5400, 9000]), np.array([0.5, 0.9]))
    assert p[0] < 0.001 < p[1]
    assert float(srm_test(4800, 5200)) == pytest.approx(stats.chisquare([4800, 5200]).pvalue, rel=1e-12)
    r = analyze_ab(ArmStats(5000, 2500.0, 9000.0), ArmStats(5400, 2800.0, 9800.0))
    assert not r.trusted and r.srm_alarm and r.effect_abs is not None
    assert "5400 of 10400" in r.reason and "0.001" in r.reason
    fine = analyze_ab(ArmStats(1000, 500.0, 900.0), ArmStats(9000, 4600.0, 8500.0), ABConfig(planned_treatment_share=0.9))
    assert fine.trusted and fine.reason is None
    with pytest.raises(ParameterError, match=r"planned_treatment_share must be in \(0, 1\)"):
        srm_test(10, 10, 1.0)


# ---- degenerate inputs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "control, treatment, config, reason",
    [
        (ArmStats(0, 0.0, 0.0), ArmStats(50, 10.0, 30.0), ABConfig(), REASON_EMPTY_CONTROL),
        (ArmStats(1, 3.0, 9.0), ArmStats(50, 10.0, 30.0), ABConfig(), REASON_N_LT_2),
        (ArmStats(40, 40.0, 40.0), ArmStats(50, 50.0, 50.0), ABConfig(), REASON_ZERO_VARIANCE),
        (ArmStats(40, 0.0, 0.0), ArmStats(50, 5.0, 5.0), ABConfig(metric="proportion", gbstats_compat=True), REASON_ZERO_VARIANCE_COMPAT),
        (RatioArmStats(30, 0.0, 0.0, 0.0, 0.0, 0.0), RatioArmStats(30, 5.0, 9.0, 20.0, 30.0, 9.0), ABConfig(metric="ratio"), REASON_RATIO_DEN_ZERO),
    ],
)
def test_degenerate_inputs_say_why_and_give_no_numbers(control, treatment, config, reason):
    r = analyze_ab(control, treatment, config)
    assert not r.trusted and r.reason == reason
    assert all(getattr(r, k) is None for k in ("effect_abs", "se_abs", "ci_abs", "cs_abs", "p_value", "effect_rel", "prob_positive"))
    text = json.dumps(r.to_dict(), allow_nan=False)  # never NaN in JSON
    assert '"effect_abs": null' in text


def test_zero_control_mean_keeps_the_absolute_effect():
    r = analyze_ab(ArmStats(500, 0.0, 0.0), ArmStats(500, 12.0, 12.0), ABConfig(metric="proportion"))
    assert r.trusted and r.effect_abs == pytest.approx(0.024)
    assert r.effect_rel is None and r.ci_rel is None
    assert "control mean is 0" in r.note and "zero variance" in r.note
    json.dumps(r.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alpha": 0.0}, r"alpha must be in \(0, 1\); got 0.0"),
        ({"alpha": 1.5}, r"alpha must be in \(0, 1\)"),
        ({"metric": "median"}, "metric must be one of mean, proportion, ratio"),
        ({"sequential_tuning": 0}, "sequential_tuning must be > 0"),
        ({"planned_treatment_share": 1.0}, r"planned_treatment_share must be in \(0, 1\)"),
        ({"srm_alpha": -0.1}, r"srm_alpha must be in \(0, 1\)"),
        ({"prior_sd": 0.0}, "prior_sd must be > 0"),
        ({"prior_scale": "log"}, "prior_scale must be 'relative' or 'absolute'"),
    ],
)
def test_config_misuse_names_the_parameter_and_bound(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        ABConfig(**kwargs)


def test_bad_statistics_are_refused():
    with pytest.raises(ParameterError, match="control.n must be a whole number"):
        analyze_ab(ArmStats(-1, 0.0, 0.0), ArmStats(3, 1.0, 1.0))
    with pytest.raises(ParameterError, match="finite"):
        analyze_ab(ArmStats(3, float("nan"), 1.0), ArmStats(3, 1.0, 1.0))
    with pytest.raises(ParameterError, match="use analyze_ab_batch"):
        analyze_ab(ArmStats(np.array([3, 4]), np.array([1.0, 2.0]), np.array([1.0, 2.0])), ArmStats(3, 1.0, 1.0))


# ---- batch API ----------------------------------------------------------------------------------


def test_batch_over_models_and_days_equals_single_results(rng):
    k, days = 4, 6
    n = rng.integers(0, 60, (2, k, days)).cumsum(axis=2)
    n[0, 0, :] = 0  # an empty control for model 0 on every day
    sy = rng.gamma(2.0, 1.0, (2, k, days)).cumsum(axis=2) * (n > 0)
    sy2 = sy**2 / np.maximum(n, 1) * 1.7
    c, t = ArmStats(n[0], sy[0], sy2[0]), ArmStats(n[1], sy[1], sy2[1])
    b = analyze_ab_batch(c, t, ABConfig(sequential_tuning=1000))
    assert b["ci_abs"].shape == (k, days, 2) and b["p_value"].shape == (k, days)
    assert list(b["reason"][0]) == [REASON_EMPTY_CONTROL] * days
    for i in range(k):
        for d in range(days):
            one = analyze_ab(ArmStats(int(n[0, i, d]), float(sy[0, i, d]), float(sy2[0, i, d])),
                             ArmStats(int(n[1, i, d]), float(sy[1, i, d]), float(sy2[1, i, d])), ABConfig(sequential_tuning=1000))
            assert one.trusted == b["trusted"][i, d]
            if one.effect_abs is None:
                assert np.isnan(b["effect_abs"][i, d])
            else:
                assert one.cs_abs == pytest.approx(tuple(b["cs_abs"][i, d]), rel=1e-12)
    frame = analyze_ab_batch(c, t, ABConfig(), as_frame=True)
    assert frame.shape[0] == k * days and frame.index.names == ["model", "day"]
    assert {"ci_abs_lo", "ci_abs_hi", "cs_rel_hi", "reason", "prior"} <= set(frame.columns)


def test_batch_takes_a_planned_share_per_model():
    c = ArmStats(np.array([1000, 1000]), np.array([500.0, 500.0]), np.array([900.0, 900.0]))
    t = ArmStats(np.array([9000, 1000]), np.array([4500.0, 500.0]), np.array([8100.0, 900.0]))
    b = analyze_ab_batch(c, t, planned_treatment_share=np.array([0.9, 0.5]))
    assert b["trusted"].all()


def test_result_exports(rng):
    (y0, x0), (y1, x1) = cuped_data(rng, 300, 320)
    r = analyze_ab(ArmStats.from_values(y0, x0), ArmStats.from_values(y1, x1), ABConfig(cuped=True))
    d = r.to_dict()
    for key in ("method", "alpha", "trusted", "reason", "effect_abs", "ci_abs", "effect_rel", "ci_rel", "cs_abs",
                "cs_rel", "p_value", "n_control", "n_treatment", "srm_p_value", "unadjusted", "se_abs",
                "prob_positive", "expected_loss", "prior"):
        assert key in d
    assert isinstance(d["ci_abs"], list) and d["unadjusted"]["unadjusted"] is None
    f = r.to_frame()
    assert f.shape[0] == 1 and f["ci_abs_lo"].iloc[0] == r.ci_abs[0]
    assert f["unadjusted_effect_abs"].iloc[0] == r.unadjusted.effect_abs
    with pytest.raises(Exception):
        r.effect_abs = 1.0  # frozen
    assert isinstance(r, ABResult)


# ---- portfolio ----------------------------------------------------------------------------------


def test_benjamini_hochberg_matches_statsmodels(rng):
    from statsmodels.stats.multitest import multipletests

    p = np.concatenate([rng.uniform(0, 1, 80), rng.uniform(0, 0.002, 20)])
    ours = benjamini_hochberg(p, 0.1)
    ref = multipletests(p, alpha=0.1, method="fdr_bh")
    assert np.array_equal(ours, ref[0]) and 10 < ours.sum() < 100
    assert np.allclose(portfolio.bh_adjusted(p), ref[1])
    # NaN (no test) is never a discovery and does not count towards m
    p_nan = np.append(p, [np.nan] * 50)
    assert np.array_equal(benjamini_hochberg(p_nan, 0.1)[:100], ours) and not benjamini_hochberg(p_nan, 0.1)[100:].any()
    # columns of a (models, days) array are separate families
    grid = np.stack([p, rng.permutation(p)], axis=1)
    both = benjamini_hochberg(grid, 0.1)
    assert np.array_equal(both[:, 0], ours) and both[:, 1].sum() == ours.sum()
    with pytest.raises(ParameterError, match=r"q must be in \(0, 1\)"):
        benjamini_hochberg(p, 0.0)


def test_e_bh_rejects_by_its_definition():
    e = np.array([500.0, 80.0, 30.0, 12.0, 1.0, 0.5, 0.1, 2.0, 1.5, 0.9])
    m, q = e.size, 0.1
    # k* = max{k : e_(k) >= m / (q k)}: thresholds 100, 50, 33.3, 25 ... -> k* = 2 (500 >= 100, 80 >= 50, 30 < 33.3)
    assert portfolio.e_benjamini_hochberg(e, q).tolist() == [True, True] + [False] * (m - 2)
    with pytest.raises(ParameterError, match="non-negative"):
        portfolio.e_benjamini_hochberg(-e, q)


# ---- unit-level rows ----------------------------------------------------------------------------


def test_attribute_frame_rows_and_errors(rng):
    frame = pd.DataFrame({"arm": ["holdout"] * 400 + ["model"] * 420,
                          "y": np.concatenate([revenue(rng, 400), revenue(rng, 420)]),
                          "conv": rng.integers(0, 2, 820), "pre": rng.normal(size=820), "sessions": 1 + rng.poisson(2, 820)})
    r = attribute_frame(frame, metric="y", arm_col="arm", control="holdout", treatment="model")
    assert r.metric == "mean" and r.n_control == 400
    assert attribute_frame(frame, metric="conv", arm_col="arm", control="holdout", treatment="model").metric == "proportion"
    rc = attribute_frame(frame, metric="y", arm_col="arm", control="holdout", treatment="model", covariate="pre")
    assert rc.cuped and rc.unadjusted.effect_abs == pytest.approx(r.effect_abs)
    rr = attribute_frame(frame, metric="y", arm_col="arm", control="holdout", treatment="model", denominator="sessions")
    assert rr.metric == "ratio"
    with pytest.raises(ValidationError) as err:
        attribute_frame(frame, metric="y", arm_col="arm", control="ctl", treatment="trt")
    assert err.value.problems[0].startswith("--control: no rows have arm = 'ctl'; labels found: holdout, model")
    assert err.value.problems[1].startswith("--treatment:")
    with pytest.raises(ValidationError, match="--covariate: no column 'nope'"):
        attribute_frame(frame, metric="y", arm_col="arm", control="holdout", treatment="model", covariate="nope")
    bad = frame.assign(y=frame["y"].astype(object))
    bad.loc[5, "y"] = "n/a"
    with pytest.raises(ValidationError, match="--metric: column 'y' must be numeric; row 6"):
        attribute_frame(bad, metric="y", arm_col="arm", control="holdout", treatment="model")
    gap = frame.copy()
    gap.loc[3, "y"] = np.nan
    with pytest.raises(ValidationError, match="1 missing value"):
        attribute_frame(gap, metric="y", arm_col="arm", control="holdout", treatment="model")
    numeric_arms = frame.assign(arm=(frame["arm"] == "model").astype(int))
    assert attribute_frame(numeric_arms, metric="y", arm_col="arm", control="0", treatment="1").n_treatment == 420
    with pytest.raises(ParameterError, match="alpha"):
        attribute_frame(frame, metric="y", arm_col="arm", control="holdout", treatment="model", alpha=2.0)


def test_cli_output_validates_against_schema(tmp_path, rng, capsys):
    from valuetrack.cli import main
    from valuetrack.schemas import validate

    frame = pd.DataFrame({"arm": ["a"] * 300 + ["b"] * 290, "y": revenue(rng, 590), "x": rng.normal(size=590)})
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    for extra in ([], ["--covariate", "x"]):
        rc = main(["attribute", "ab", "--data", str(path), "--metric", "y", "--arm-col", "arm",
                   "--control", "a", "--treatment", "b", "--json", *extra])
        doc = json.loads(capsys.readouterr().out)
        assert rc == 0
        validate("attribute_ab", doc)
        assert doc["cuped"] == bool(extra) and (doc["unadjusted"] is not None) == bool(extra)
    # a degenerate result (constant metric) validates too, with nulls
    pd.DataFrame({"arm": ["a"] * 5 + ["b"] * 5, "y": [1.0] * 10}).to_csv(path, index=False)
    main(["attribute", "ab", "--data", str(path), "--metric", "y", "--arm-col", "arm", "--control", "a", "--treatment", "b", "--json"])
    doc = json.loads(capsys.readouterr().out)
    validate("attribute_ab", doc)
    assert doc["trusted"] is False and doc["effect_abs"] is None and doc["reason"]


def test_fast_t_tails_and_quantiles_agree_with_scipy(rng):
    from scipy import special

    from valuetrack.attribution.ab import _t_quantile, _t_two_sided

    dof = np.exp(rng.uniform(np.log(1.5), np.log(1e8), 200_000))
    t = rng.uniform(0, 30, dof.size)
    ref = 2 * special.stdtr(dof, -t)
    ok = ref > 1e-250
    assert np.max(np.abs(_t_two_sided(t, dof)[ok] / ref[ok] - 1)) < 1e-8
    for q in (0.6, 0.95, 0.975, 0.9995):
        assert np.max(np.abs(_t_quantile(dof, q) / special.stdtrit(dof, q) - 1)) < 1e-11
