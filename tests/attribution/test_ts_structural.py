"""Structural counterfactual and ITS: contracts, intervals, relaunches, degenerate data, the CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from valuetrack import schemas
from valuetrack.attribution.choose import choose_method
from valuetrack.attribution.its import fit_its
from valuetrack.attribution.timeseries import TSConfig, check_leak, fit_structural
from valuetrack.attribution.ts_frame import attribute_ts_frame
from valuetrack.cli import main
from valuetrack.errors import ParameterError, ValidationError


def series(n_pre=200, n_post=60, effect=3.0, seed=0, leak=0.0) -> tuple[pd.DataFrame, pd.Timestamp]:
    rng = np.random.default_rng(seed)
    n = n_pre + n_post
    t = np.arange(n)
    f = np.cumsum(rng.normal(0, 0.3, n))
    x1 = 50 + f + rng.normal(0, 1, n)
    x2 = 20 + 0.7 * f + rng.normal(0, 1, n)
    y = 100 + x1 + 0.5 * x2 + np.array([0, 1, 2, 1, 0, -2, -2])[t % 7] + rng.normal(0, 1, n)
    y[n_pre:] += effect
    x1[n_pre:] += leak
    idx = pd.date_range("2024-01-01", periods=n, freq="D")
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2}, index=idx), idx[n_pre]


FAST = TSConfig(n_paths=400)


def test_effect_recovered_with_consistent_intervals():
    df, start = series()
    r = fit_structural(df, intervention=start, controls=["x1", "x2"], config=FAST)
    assert r.ci_avg[0] < 3.0 < r.ci_avg[1]
    assert r.p_value < 0.01 and r.trusted, r.reason
    # the cumulative interval is the average interval × days (both from the same paths), and it is
    # narrower than the sum of pointwise bounds
    assert r.ci_cum[0] == pytest.approx(r.ci_avg[0] * r.n_post)
    f = r.to_frame()
    assert len(f) == 60 and not f[["counterfactual", "lower", "upper", "cum_lower", "cum_upper"]].isna().any().any()
    width_sum_pointwise = (f.effect_upper - f.effect_lower).sum()
    assert r.ci_cum[1] - r.ci_cum[0] < 0.5 * width_sum_pointwise
    assert f.cum_lower.iloc[-1] == pytest.approx(r.ci_cum[0])
    assert r.seed == 0 and r.model["parameter_uncertainty"]


def test_seed_makes_it_reproducible_and_is_reported():
    df, start = series()
    a = fit_structural(df, intervention=start, controls=["x1"], config=TSConfig(n_paths=300, seed=7))
    b = fit_structural(df, intervention=start, controls=["x1"], config=TSConfig(n_paths=300, seed=7))
    assert a.ci_cum == b.ci_cum and a.to_dict()["seed"] == 7


def test_gap_between_matches_cumulative_and_adds_over_months():
    df, start = series()
    r = fit_structural(df, intervention=start, controls=["x1", "x2"], config=FAST)
    est, se, (lo, hi) = r.gap_between(r.post_start, r.post_end)
    assert est == pytest.approx(r.effect_cum)
    assert (lo, hi) == pytest.approx(r.ci_cum)
    assert r.post_start == pd.Timestamp("2024-07-19") and r.post_end == pd.Timestamp("2024-09-16")
    e0, _, _ = r.gap_between("2024-07-01", "2024-07-31")
    e1, se1, _ = r.gap_between("2024-08-01", "2024-08-31")
    e2, se2, _ = r.gap_between("2024-09-01", "2024-09-30")
    assert e0 + e1 + e2 == pytest.approx(est)
    # joint paths: the variance of a sum is not the sum of the variances (positive correlation)
    assert se**2 > 0 and se1 > 0 and se2 > 0
    assert r.gap_between("2020-01-01", "2020-02-01") == (0.0, 0.0, (0.0, 0.0))


def test_gap_between_and_frame_bands_are_the_paths_own_sums_and_quantiles():
    df, start = series()
    df.iloc[215, 0] = np.nan  # a post-period day without an actual value
    r = fit_structural(df, intervention=start, controls=["x1"], config=FAST)
    obs = np.isfinite(r.actual)

    def direct(lo: str, hi: str):  # the same sums taken straight from the paths
        sel = (r.dates >= pd.Timestamp(lo)) & (r.dates <= pd.Timestamp(hi)) & obs
        g = r.actual[sel].sum() - r.paths[:, sel].sum(axis=1)
        return (float(np.sum(r.actual[sel] - r.counterfactual[sel])), float(np.std(g, ddof=1)),
                tuple(float(v) for v in np.quantile(g, [r.alpha / 2, 1 - r.alpha / 2])))

    # periods selecting the same days (past the post-period's end, or starting on the unobserved day)
    # share one answer, and every answer is exactly the direct one, whatever was asked before
    ranges = [("2024-07-01", "2024-09-16"), ("2024-07-19", "2024-12-31"), ("2024-08-01", "2024-08-31"),
              ("2024-08-03", "2024-08-31"), ("2024-08-04", "2024-08-31"), ("2024-08-01", "2024-08-15"),
              ("2024-07-01", "2024-09-16")]
    for lo, hi in ranges:
        assert r.gap_between(lo, hi) == direct(lo, hi)
    assert r.gap_between("2024-08-03", "2024-08-31") == r.gap_between("2024-08-04", "2024-08-31")
    assert r.gap_between("2024-08-03", "2024-08-31") != r.gap_between("2024-08-02", "2024-08-31")
    # the daily bands are np.quantile of the paths and of their running gaps, bit for bit
    f = r.to_frame()
    a = r.alpha
    lo, hi = np.quantile(r.paths, [a / 2, 1 - a / 2], axis=0)
    cum = np.cumsum(np.where(obs, r.actual, 0.0)[None, :] - np.where(obs[None, :], r.paths, 0.0), axis=1)
    cum_hi, cum_lo = np.quantile(cum, [1 - a / 2, a / 2], axis=0)
    for col, want in [("lower", lo), ("upper", hi), ("cum_lower", cum_lo), ("cum_upper", cum_hi)]:
        assert np.array_equal(f[col].to_numpy(), want), col


def test_level_variance_follows_the_data_and_the_prior_is_reported():
    df, start = series()
    r = fit_structural(df, intervention=start, controls=["x1"], config=FAST)
    prior = r.model["level_prior"]
    assert prior["distribution"] == "half-Cauchy" and prior["scale"] == 0.1
    assert r.model["components"]["weekly"] and not r.model["components"]["yearly"]
    # a series whose level wanders (daily sd 20 % of the noise sd) against one whose level is flat:
    # the estimated level sd follows the data rather than the prior
    rng = np.random.default_rng(11)
    n = 420
    noise = rng.normal(0, 1, n)
    idx = pd.date_range("2024-01-01", periods=n)
    cfg = TSConfig(n_paths=200, diagnostics=False)
    drift = fit_structural(pd.Series(100 + np.cumsum(rng.normal(0, 0.2, n)) + noise, index=idx, name="y"),
                           intervention=idx[365], config=cfg)
    flat = fit_structural(pd.Series(100 + noise, index=idx, name="y"), intervention=idx[365], config=cfg)
    assert 0.12 <= drift.model["level_to_noise_sd"] <= 0.3
    assert flat.model["level_to_noise_sd"] < 0.05
    w = lambda r: r.ci_avg[1] - r.ci_avg[0]  # noqa: E731
    assert w(drift) > 2 * w(flat)


def test_every_fit_is_checked_against_placebo_windows():
    df, start = series(n_pre=200, n_post=30)
    r = fit_structural(df, intervention=start, controls=["x1", "x2"], config=TSConfig(n_paths=200, diagnostics=False))
    pl = r.diagnostics["placebo"]  # on every fit, not only with diagnostics
    assert pl["window_days"] == 30 and pl["windows"] == len(pl["z"]) >= 3
    assert pl["status"] in ("ok", "widened") and pl["factor"] == pytest.approx(np.sqrt(np.mean(np.square(pl["z"]))),
                                                                                abs=1e-3)
    assert pl["widened_by"] == max(1.0, pl["factor"])
    # a post-period longer than the pre-period cannot be checked: said, not hidden
    df, start = series(n_pre=60, n_post=90)
    r = fit_structural(df, intervention=start, controls=["x1"], config=TSConfig(n_paths=200, diagnostics=False))
    pl = r.diagnostics["placebo"]
    assert pl["status"] == "unchecked" and pl["factor"] is None and "longer than the pre-period" in pl["note"]
    assert any("placebo" in w for w in r.warnings)


def test_placebo_factor_widens_the_interval_and_marks_a_misfit_untrusted():
    # a level that jumps by 6 noise sd every 30 days: a random walk with one variance fits it badly,
    # and the placebo windows miss by more than their intervals say
    rng = np.random.default_rng(0)
    n, n_pre = 420, 360
    jumps = np.zeros(n)
    jumps[::30] = rng.choice([-6.0, 6.0], len(jumps[::30]))
    idx = pd.date_range("2024-01-01", periods=n)
    s = pd.Series(50 + np.cumsum(jumps) + rng.normal(0, 1, n), index=idx, name="y")
    cfg = TSConfig(n_paths=400, diagnostics=False)
    r = fit_structural(s, intervention=idx[n_pre], config=cfg)
    pl = r.diagnostics["placebo"]
    assert pl["status"] == "widened" and 1.2 < pl["factor"] <= 2 and r.trusted
    # the same paths unchecked (too few windows asked for): the checked interval is wider by the factor
    unchecked = fit_structural(s, intervention=idx[n_pre], config=replace(cfg, placebo_min_windows=50))
    assert unchecked.diagnostics["placebo"]["status"] == "unchecked"
    width = lambda r: r.ci_avg[1] - r.ci_avg[0]  # noqa: E731
    assert width(r) == pytest.approx(pl["factor"] * width(unchecked), rel=1e-9)
    strict = fit_structural(s, intervention=idx[n_pre], config=replace(cfg, placebo_max_factor=1.2))
    assert not strict.trusted and "placebo interventions" in strict.reason
    assert strict.diagnostics["placebo"]["status"] == "untrusted"


def test_yearly_seasonality_only_with_two_years():
    df, start = series(n_pre=740, n_post=30)
    r = fit_structural(df, intervention=start, controls=["x1"], config=TSConfig(n_paths=200, diagnostics=False))
    assert r.model["components"]["yearly"]
    df, start = series(n_pre=400, n_post=30)
    r = fit_structural(df, intervention=start, controls=["x1"], config=TSConfig(n_paths=200, diagnostics=False))
    assert not r.model["components"]["yearly"]


def test_horizon_cap_cuts_and_says_so():
    df, start = series(n_pre=150, n_post=60)
    r = fit_structural(df, intervention=start, controls=["x1"], config=TSConfig(n_paths=200, horizon_cap_days=30))
    assert r.horizon_capped and r.n_post == 30
    assert r.post_end == start + pd.Timedelta(days=29)
    assert any("re-validate" in w for w in r.warnings)


def test_leak_into_a_control_is_untrusted():
    df, start = series(leak=3.0)
    r = fit_structural(df, intervention=start, controls=["x1", "x2"], config=FAST)
    assert not r.trusted and "control series moved" in r.reason
    assert not r.diagnostics["leak"]["controls"]["x1"]["passed"]
    clean = fit_structural(series(leak=0.0)[0], intervention=start, controls=["x1", "x2"], config=FAST)
    assert clean.diagnostics["leak"]["passed"]


def test_check_leak_ignores_a_random_walk_control():
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.normal(0, 1, 400))
    assert abs(check_leak(x, 300, 28)["z"]) < 4


def test_placebo_and_holdout_flag_a_break_the_model_cannot_explain():
    df, start = series(effect=0.0)
    df.loc[start - pd.Timedelta(days=40):, "y"] += 6.0  # a shift in the pre-period the controls do not show
    r = fit_structural(df, intervention=start, controls=["x1", "x2"], config=FAST)
    assert not r.trusted
    assert not r.diagnostics["holdout"]["passed"] or not r.diagnostics["placebo"]["passed"]


def test_degenerate_data_gives_a_reason_not_a_crash():
    df, start = series(n_pre=10, n_post=10)
    r = fit_structural(df, intervention=start, controls=["x1"], config=FAST)
    assert not r.trusted and "too short" in r.reason and r.effect_avg is None
    d = r.to_dict()
    assert d["ci_avg"] is None and d["effect_avg"] is None
    flat, start = series()
    flat["y"] = 5.0
    r = fit_structural(flat, intervention=start, config=FAST)
    assert not r.trusted and "constant" in r.reason
    json.dumps(r.to_dict(), allow_nan=False)


def test_relaunch_windows_each_against_no_model():
    df, start = series(n_pre=200, n_post=120, effect=0.0)
    s1, e1, s2 = start, start + pd.Timedelta(days=29), start + pd.Timedelta(days=60)
    df.loc[s1:e1, "y"] += 2.0
    df.loc[s2:, "y"] += 5.0
    r = fit_structural(df, interventions=[(s1, e1), (s2, None)], controls=["x1", "x2"], config=FAST)
    assert len(r.windows) == 2
    w1, w2 = r.windows
    assert w1.ci_avg[0] < 2.0 < w1.ci_avg[1] and w1.n_post == 30
    assert w2.ci_avg[0] < 5.0 < w2.ci_avg[1]
    assert r.effect_avg == w2.effect_avg  # top level = latest window
    # window 2 is fitted with window 1's days masked: the off-period between them is used
    assert w2.n_pre == 200 + 30
    est, _, _ = r.gap_between(s1, df.index[-1])
    assert est == pytest.approx(w1.effect_cum + w2.effect_cum)
    assert len(r.to_frame()) == 30 + 60
    assert len(r.to_dict()["windows"]) == 2
    with pytest.raises(ValidationError, match="overlap"):
        fit_structural(df, interventions=[(s1, s2), (s2, None)], controls=["x1"], config=FAST)


def test_relaunch_two_months_before_as_of_holds_out_observed_days():
    # regression: the demo's dynamic-pricing model relaunched on 2026-04-10 and valued on 2026-06-15
    # raised TypeError: the held-out stretch lay inside the first window (masked), so it had no days
    df, start = series(n_pre=400, n_post=150, effect=2.0)
    relaunch = df.index[-66]
    r = fit_structural(df, interventions=[(start, None), (relaunch, None)], controls=["x1", "x2"], config=FAST)
    hold = r.diagnostics["holdout"]
    assert r.n_post == 66 and hold["holdout_days"] == 66
    # the held-out days are the last observed "no model" days, before the first launch
    assert isinstance(hold["passed"], bool) and hold["p_value"] is not None and 0 <= hold["coverage"] <= 1
    assert r.windows[1].ci_avg[0] < 2.0 < r.windows[1].ci_avg[1]


def test_its_level_and_slope_change():
    rng = np.random.default_rng(5)
    n, t0 = 300, 200
    t = np.arange(n)
    e = np.zeros(n)
    for i in range(1, n):
        e[i] = 0.5 * e[i - 1] + rng.normal()
    y = 10 + 0.02 * t + e + np.where(t >= t0, 3.0 + 0.01 * (t - t0), 0)
    s = pd.Series(y, index=pd.date_range("2024-01-01", periods=n), name="y")
    r = fit_its(s, intervention=s.index[t0])
    truth = 3.0 + 0.01 * np.arange(100).mean()
    assert r.ci_avg[0] < truth < r.ci_avg[1]
    assert r.inference == "newey-west" and r.seed is None and r.p_value < 0.01
    assert r.model["newey_west_lags"] >= 1
    est, se, (lo, hi) = r.gap_between(r.post_start, r.post_end)
    assert est == pytest.approx(r.effect_cum) and lo == pytest.approx(r.ci_cum[0])
    assert len(r.to_frame()) == 100


def test_choose_method_says_why():
    assert choose_method(True, 2)[0] == "ab"
    m, why = choose_method(False, 2)
    assert m == "structural" and "control" in why
    m, why = choose_method(False, 0, n_pre_days=20)
    assert m == "its" and "20 days" in why
    assert choose_method(False, 0, panel=True)[0] == "did"
    with pytest.raises(ParameterError):
        choose_method(False, -1)


def test_frame_entry_point_validates_columns():
    df, start = series()
    frame = df.reset_index(names="day")
    with pytest.raises(ValidationError, match="--controls"):
        attribute_ts_frame(frame, date_col="day", metric="y", intervention=start, controls=["nope"])
    with pytest.raises(ValidationError, match="--date-col"):
        attribute_ts_frame(frame, date_col="nope", metric="y", intervention=start)
    with pytest.raises(ParameterError, match="--method"):
        attribute_ts_frame(frame, date_col="day", metric="y", intervention=start, method="bsts")
    with pytest.raises(ValidationError, match="--intervention"):
        attribute_ts_frame(frame, date_col="day", metric="y", intervention="2030-01-01")


@pytest.mark.parametrize("method", ["structural", "its"])
def test_cli_attribute_ts_json_matches_schema(tmp_path, capsys, method):
    df, start = series()
    path = tmp_path / "s.csv"
    df.reset_index(names="day").to_csv(path, index=False)
    argv = ["attribute", "ts", "--data", str(path), "--date-col", "day", "--metric", "y",
            "--intervention", str(start.date()), "--method", method, "--seed", "3", "--json"]
    if method == "structural":
        argv += ["--controls", "x1,x2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    doc = json.loads(out)
    schemas.validate("attribute_ts", doc)
    assert doc["method"] == method and isinstance(doc["as_of"], str) and isinstance(doc["version"], str)
    if method == "structural":
        assert doc["ci_avg"][0] < 3.0 < doc["ci_avg"][1]
    assert doc["seed"] == (3 if method == "structural" else None)
    assert "NaN" not in out


def test_cli_attribute_ts_error_names_the_column(tmp_path, capsys):
    df, start = series()
    path = tmp_path / "s.csv"
    df.reset_index(names="day").to_csv(path, index=False)
    code = main(["attribute", "ts", "--data", str(path), "--date-col", "day", "--metric", "revenue",
                 "--intervention", str(start.date())])
    assert code == 1 and "--metric" in capsys.readouterr().err
