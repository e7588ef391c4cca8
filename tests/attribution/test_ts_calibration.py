"""Calibration of the structural counterfactual over seeded simulated series (run in CI).

**Drift suite** (docs/methods-timeseries.md, "Calibration under drift"): 400 daily series, 100 in
each of 4 bands of level drift (the level is a random walk whose daily sd is drawn from 0–5, 5–10,
10–15 or 15–20 % of the noise sd), 365 pre-period and 56 post-period days, weekly seasonality, 1 or
2 control series, half with no effect, a quarter with a step of one noise sd and a quarter with a
ramp from 0 to two noise sd (the truth is the post-period average). Asserted:

* the 95 % interval of the average effect covers the truth in 92–98 % of series and in ≥ 90 % of
  every band;
* a zero effect is called significant (p < 0.05) in at most 8 % of the zero-effect series;
* the median per-series interval width is at most 1.3 × the oracle's in every band; the oracle is
  the Kalman smoother with the true variances (computed here independently, as the exact Gaussian
  conditional with a flat prior on the level's start, the weekly pattern and the coefficients).

bsts-causalimpact, run as a user would (``nseasons=7``, since the series have weekly seasonality),
on the same series: ``python -m tests.attribution.test_ts_calibration`` prints the side-by-side
table quoted in the docs (its figures are not asserted).

**Misspecification suite**: 500 series of five kinds (clean; AR(1) errors; a break in a control;
Student-t noise; weekly + yearly seasonality on two years), and 100 series where the treatment
leaks into a control.

Fits run over 2 processes; each series has its own seed, so the figures do not depend on scheduling.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla
from scipy import stats

from valuetrack.attribution.timeseries import TSConfig, fit_structural

BANDS = ((0.0, 0.05), (0.05, 0.10), (0.10, 0.15), (0.15, 0.20))
N_PER_BAND = 100
DRIFT_PRE, DRIFT_POST = 365, 56
WEEK = np.array([0.0, 0.4, 0.8, 0.5, 0.1, -0.9, -0.9])


def simulate_drift(band: int, seed: int) -> dict:
    """One drift-suite series: its frame, intervention, controls, true average effect and level sd."""
    rng = np.random.default_rng(seed)
    n = DRIFT_PRE + DRIFT_POST
    t = np.arange(n)
    level_sd = rng.uniform(*BANDS[band])
    k = 1 + seed % 2
    factor = np.cumsum(rng.normal(0, 0.3, n)) + 1.5 * WEEK[t % 7]
    X = np.column_stack([20 + factor + rng.normal(0, 1, n), 10 + 0.8 * factor + rng.normal(0, 1, n)])[:, :k]
    y = 50 + np.cumsum(rng.normal(0, level_sd, n)) + X @ np.array([1.0, 0.5])[:k] + 2 * WEEK[t % 7]
    y += rng.normal(0, 1, n)
    kind = ("none", "step", "none", "ramp")[seed % 4]
    effect = {"none": np.zeros(DRIFT_POST), "step": np.ones(DRIFT_POST),
              "ramp": np.linspace(0.0, 2.0, DRIFT_POST)}[kind]
    y[DRIFT_PRE:] += effect
    idx = pd.date_range("2024-01-01", periods=n, freq="D")
    controls = ["x1", "x2"][:k]
    frame = pd.DataFrame({"y": y, **{c: X[:, j] for j, c in enumerate(controls)}}, index=idx)
    return {"frame": frame, "start": idx[DRIFT_PRE], "controls": controls, "truth": float(effect.mean()),
            "level_sd": level_sd}


def oracle(frame: pd.DataFrame, controls: list[str], level_sd: float, alpha: float = 0.05) -> tuple[float, float]:
    """(estimate, 95 % width) of the average effect by the exact Gaussian conditional with the true
    variances: y = μ + weekday + Xβ + random-walk level + noise, flat prior on (μ, weekday, β)."""
    n = len(frame)
    i = np.arange(n)
    D = np.column_stack([np.ones(n), np.eye(7)[i % 7][:, 1:], frame[controls].to_numpy()])
    S = level_sd**2 * (np.minimum.outer(i, i) + 1.0) + np.eye(n)
    n0, y = DRIFT_PRE, frame["y"].to_numpy()
    a = np.ones(n - n0)
    b = S[:n0, n0:] @ a
    C = sla.cho_factor(S[:n0, :n0])
    Sb, SD = sla.cho_solve(C, b), sla.cho_solve(C, D[:n0])
    M = D[:n0].T @ SD
    u = a @ D[n0:] - Sb @ D[:n0]
    var = a @ S[n0:, n0:] @ a - b @ Sb + u @ np.linalg.solve(M, u)
    beta = np.linalg.solve(M, SD.T @ y[:n0])
    forecast = a @ D[n0:] @ beta + Sb @ (y[:n0] - D[:n0] @ beta)
    return (y[n0:].sum() - forecast) / (n - n0), 2 * stats.norm.ppf(1 - alpha / 2) * np.sqrt(var) / (n - n0)


def drift_jobs() -> list[tuple[int, int]]:
    return [(b, 1_000 * (b + 1) + i) for b in range(len(BANDS)) for i in range(N_PER_BAND)]


def _drift_one(job: tuple[int, int]) -> dict:
    band, seed = job
    s = simulate_drift(band, seed)
    r = fit_structural(s["frame"], intervention=s["start"], controls=s["controls"],
                       config=TSConfig(seed=seed, n_paths=500, diagnostics=False))
    o_est, o_width = oracle(s["frame"], s["controls"], s["level_sd"])
    return {"band": band, "seed": seed, "truth": s["truth"], "lo": r.ci_avg[0], "hi": r.ci_avg[1], "p": r.p_value,
            "oracle_est": o_est, "oracle_width": o_width, "level_sd": s["level_sd"],
            "level_sd_hat": r.model["level_to_noise_sd"], "placebo": r.diagnostics["placebo"]["status"],
            "factor": r.diagnostics["placebo"]["factor"]}


def _bsts_one(job: tuple[int, int]) -> dict:
    from causal_impact import CausalImpact  # bsts-causalimpact, a test dependency

    band, seed = job
    s = simulate_drift(band, seed)
    f, start = s["frame"], s["start"]
    ci = CausalImpact(f, [f.index[0], start - pd.Timedelta(days=1)], [start, f.index[-1]],
                      model_args={"seed": seed, "nseasons": 7})
    st = ci.summary_stats
    return {"band": band, "seed": seed, "lo": st["ci_lower"], "hi": st["ci_upper"], "p": st["p_value"]}


def _pool_map(fn, jobs: list, chunksize: int = 10) -> pd.DataFrame:
    with mp.get_context("fork").Pool(min(2, os.cpu_count() or 1)) as pool:
        return pd.DataFrame(pool.map(fn, jobs, chunksize=chunksize))


def summarise(df: pd.DataFrame, truth: pd.Series, oracle_width: pd.Series | None = None) -> pd.DataFrame:
    """Per band and overall: coverage, zero effect significant, median width (÷ oracle's)."""
    out = df.assign(cover=(df.lo <= truth) & (truth <= df.hi), width=df.hi - df.lo,
                    null_sig=np.where(truth == 0, df.p < 0.05, np.nan))
    if oracle_width is not None:
        out["ratio"] = out.width / oracle_width
    cols = ["cover", "null_sig", "width"] + (["ratio"] if oracle_width is not None else [])
    agg = {"cover": "mean", "null_sig": "mean", "width": "median", "ratio": "median"}
    by = out.groupby("band")[cols].agg({c: agg[c] for c in cols})
    by.loc["all"] = out[cols].agg({c: agg[c] for c in cols})
    return by


@pytest.fixture(scope="module")
def drift() -> pd.DataFrame:
    return _pool_map(_drift_one, drift_jobs())


def test_drift_coverage_92_to_98_percent_and_at_least_90_in_every_band(drift):
    assert len(drift) == 400
    s = summarise(drift, drift.truth, drift.oracle_width)
    assert 0.92 <= s.loc["all", "cover"] <= 0.98, s
    assert (s.loc[[0, 1, 2, 3], "cover"] >= 0.90).all(), s


def test_drift_zero_effect_called_significant_at_most_8_percent(drift):
    null = drift[drift.truth == 0]
    assert len(null) == 200
    assert (null.p < 0.05).mean() <= 0.08


def test_drift_median_width_at_most_1_3_times_the_oracle_in_every_band(drift):
    ratio = ((drift.hi - drift.lo) / drift.oracle_width).groupby(drift.band).median()
    assert (ratio <= 1.3).all(), ratio.to_dict()
    # and the oracle is a real yardstick: its own intervals cover about 95 %
    half = drift.oracle_width / 2
    oracle_cover = ((drift.oracle_est - half <= drift.truth) & (drift.truth <= drift.oracle_est + half)).mean()
    assert 0.92 <= oracle_cover <= 0.98


def test_drift_level_sd_follows_the_data(drift):
    # the audit found the estimate at 0.35 × the truth under CausalImpact's prior
    top = drift[drift.band >= 2]
    assert 0.8 <= np.median(top.level_sd_hat / top.level_sd) <= 1.25
    assert (drift.placebo != "unchecked").all()


KINDS = ("clean", "ar1", "control_break", "heavy", "seasonal")
N_PER_KIND = 100
N_POST = 56
TAU = 1.0  # effect, in units of the noise sd
LEAK = 2.0  # leak into the first control, in its noise sd: biases the effect by 2 × TAU


def simulate(kind: str, seed: int, effect: float, leak: float = 0.0) -> tuple[pd.DataFrame, pd.Timestamp]:
    """One daily series with two controls; ``effect`` is added to the series after the intervention;
    ``leak`` (in the control's noise sd) is added to the first control after it."""
    rng = np.random.default_rng(seed)
    n_pre = 730 if kind == "seasonal" else 365
    n = n_pre + N_POST
    t = np.arange(n)
    week = np.array([0.0, 0.4, 0.8, 0.5, 0.1, -0.9, -0.9])
    # the controls share a factor (regional demand): a random walk with a weekly pattern
    factor = np.cumsum(rng.normal(0, 0.3, n)) + 1.5 * week[t % 7]
    x1 = 20 + factor + rng.normal(0, 1.0, n)
    x2 = 10 + 0.8 * factor + 3 * np.sin(2 * np.pi * t / 365.25) * (kind == "seasonal") + rng.normal(0, 1.0, n)
    if kind == "ar1":
        e = np.empty(n)
        e[0] = rng.normal()
        for i in range(1, n):
            e[i] = 0.6 * e[i - 1] + rng.normal(0, np.sqrt(1 - 0.36))
    elif kind == "heavy":
        e = rng.standard_t(3, n) / np.sqrt(3.0)
    else:
        e = rng.normal(0, 1.0, n)
    level = np.cumsum(rng.normal(0, rng.uniform(0.0, 0.05), n))
    y = 50 + level + 1.0 * x1 + 0.5 * x2 + week[t % 7] + e
    if kind == "seasonal":
        y += 4 * np.sin(2 * np.pi * t / 365.25) + 2 * np.cos(2 * np.pi * t / 365.25)
    if kind == "control_break":
        b = int(rng.integers(60, n_pre - 120))
        x1[b:] += 4.0  # a break in the control that the series does not follow
    y[n_pre:] += effect
    x1[n_pre:] += leak
    idx = pd.date_range("2023-01-02", periods=n, freq="D")
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2}, index=idx), idx[n_pre]


def _one(job: tuple) -> dict:
    kind, seed, effect, leak, diagnostics = job
    frame, start = simulate(kind, seed, effect, leak)
    cfg = TSConfig(seed=seed, n_paths=500, diagnostics=diagnostics)
    r = fit_structural(frame, intervention=start, controls=["x1", "x2"], config=cfg)
    return {"kind": kind, "effect": effect, "leak": leak, "lo": r.ci_avg[0], "hi": r.ci_avg[1],
            "est": r.effect_avg, "p": r.p_value, "trusted": r.trusted, "reason": r.reason}


def run_jobs(jobs: list[tuple]) -> pd.DataFrame:
    return _pool_map(_one, jobs)


def calibration_jobs() -> list[tuple]:
    jobs = []
    for k, kind in enumerate(KINDS):
        for i in range(N_PER_KIND):
            seed = 10_000 * (k + 1) + i
            jobs.append((kind, seed, 0.0 if i % 2 == 0 else TAU, 0.0, False))
    return jobs


@pytest.fixture(scope="module")
def calibration() -> pd.DataFrame:
    return run_jobs(calibration_jobs())


def test_average_effect_interval_covers_truth_92_to_98_percent(calibration):
    cover = ((calibration.lo <= calibration.effect) & (calibration.effect <= calibration.hi))
    by_kind = cover.groupby(calibration.kind).mean()
    assert len(calibration) == 500
    assert 0.92 <= cover.mean() <= 0.98, (cover.mean(), by_kind.to_dict())
    # no kind of misspecification may be badly miscalibrated on its own
    assert by_kind.min() >= 0.85, by_kind.to_dict()


def test_zero_effect_called_significant_at_most_7_percent(calibration):
    null = calibration[calibration.effect == 0]
    assert len(null) == 250
    assert (null.p < 0.05).mean() <= 0.07


def test_true_effect_is_detected_most_of_the_time_when_the_model_is_right(calibration):
    # guards against "calibrated" by being uselessly wide. Not asserted for AR(1) errors and control
    # breaks: the random-walk level absorbs them, and the intervals are honest but wide (docs/)
    alt = calibration[(calibration.effect != 0) & calibration.kind.isin(["clean", "heavy", "seasonal"])]
    assert (alt.p < 0.05).mean() >= 0.8


def test_leak_into_a_control_marks_at_least_80_percent_untrusted():
    jobs = [(KINDS[i % 4], 90_000 + i, TAU, LEAK, True) for i in range(100)]
    leak = run_jobs(jobs)
    clean = run_jobs([(KINDS[i % 4], 90_000 + i, TAU, 0.0, True) for i in range(40)])
    assert (~leak.trusted).mean() >= 0.8, leak.reason.value_counts().head()
    assert leak.reason.str.contains("control series moved").mean() >= 0.75
    # and the leak check itself does not fire on the same series without a leak
    assert clean.reason.fillna("").str.contains("control series moved").mean() <= 0.1


def main() -> None:  # pragma: no cover - the side-by-side table quoted in docs/
    jobs = drift_jobs()
    ours = _pool_map(_drift_one, jobs)
    bsts = _pool_map(_bsts_one, jobs)
    pd.set_option("display.width", 160)
    print("valuetrack\n", summarise(ours, ours.truth, ours.oracle_width).round(3))
    print("oracle\n", summarise(ours.assign(lo=ours.oracle_est - ours.oracle_width / 2,
                                              hi=ours.oracle_est + ours.oracle_width / 2,
                                              p=np.nan), ours.truth).round(3))
    print("bsts-causalimpact (nseasons=7)\n", summarise(bsts, ours.truth, ours.oracle_width).round(3))
    print("placebo status", ours.placebo.value_counts().to_dict(), "median factor", ours.factor.median())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
