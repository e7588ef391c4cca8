"""Structural counterfactual speed, side by side with bsts-causalimpact on the same series.

One series of 365 pre + 90 post days with 2 controls and weekly seasonality: valuetrack's fit with
1,000 joint paths (its placebo check always; with and without the other diagnostics) vs
bsts-causalimpact as a user would run it (Rust Gibbs sampler, 1,000 draws, ``nseasons=7``), in CPU
seconds; a 730-day pre-period fit (yearly seasonality on) against the 0.5 s CPU budget; then a
portfolio of 100 models with diagnostics over 2 processes. Also the median 95 % interval width of
the average effect of both tools on the same seeded series. The drift comparison (coverage under a
moving level, against the true-variance oracle) is in tests/attribution/test_ts_calibration.py.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.timing import peak_python_memory, timed

ROOT = Path(__file__).resolve().parents[1]


def _series(seed: int, n_pre: int = 365, n_post: int = 90) -> tuple[pd.DataFrame, pd.Timestamp]:
    rng = np.random.default_rng(seed)
    n = n_pre + n_post
    t = np.arange(n)
    week = np.array([0.0, 0.4, 0.8, 0.5, 0.1, -0.9, -0.9])
    f = np.cumsum(rng.normal(0, 0.3, n)) + 1.5 * week[t % 7]
    x1 = 20 + f + rng.normal(0, 1, n)
    x2 = 10 + 0.8 * f + rng.normal(0, 1, n)
    y = 50 + x1 + 0.5 * x2 + week[t % 7] + rng.normal(0, 1, n)
    y[n_pre:] += 1.0
    idx = pd.date_range("2023-01-02", periods=n, freq="D")
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2}, index=idx), idx[n_pre]


def _ours(seed: int, diagnostics: bool, n_pre: int = 365):
    from valuetrack.attribution.timeseries import TSConfig, fit_structural

    df, start = _series(seed, n_pre=n_pre)
    return fit_structural(df, intervention=start, controls=["x1", "x2"],
                          config=TSConfig(seed=seed, n_paths=1000, diagnostics=diagnostics))


def _bsts(seed: int):
    from causal_impact import CausalImpact

    df, start = _series(seed)
    pre = [df.index[0], start - pd.Timedelta(days=1)]
    post = [start, df.index[-1]]
    # weekly seasonality, as valuetrack fits it: a user would pass nseasons=7
    return CausalImpact(df, pre, post, model_args={"seed": seed, "nseasons": 7})


def _portfolio_one(seed: int) -> float:
    t0 = time.perf_counter()
    _ours(seed, True)
    return time.perf_counter() - t0


def run(quick: bool = False) -> dict:
    n_width = 20 if quick else 100
    n_models = 20 if quick else 100
    cpu = time.process_time
    out: dict = {"series": "365 pre + 90 post days, 2 controls, weekly seasonality, 1000 paths",
                 "clock": "CPU seconds of this process (all threads)"}
    out["valuetrack_fit_placebo_only"] = timed(lambda: _ours(1, False), repeat=5, warmup=1, clock=cpu)
    out["valuetrack_fit_with_diagnostics"] = timed(lambda: _ours(1, True), repeat=5, warmup=1, clock=cpu)
    out["valuetrack_730_pre_placebo_only"] = timed(lambda: _ours(1, False, 730), repeat=5, warmup=1, clock=cpu)
    out["valuetrack_730_pre_with_diagnostics"] = timed(lambda: _ours(1, True, 730), repeat=5, warmup=1, clock=cpu)
    out["valuetrack_peak_python_mib"] = round(peak_python_memory(lambda: _ours(1, True)), 1)
    try:
        import causal_impact  # noqa: F401

        out["bsts_causalimpact_fit_nseasons_7"] = timed(lambda: _bsts(1), repeat=5, warmup=1, clock=cpu)
        out["ratio_vs_bsts_placebo_only"] = (out["valuetrack_fit_placebo_only"]["median_s"]
                                             / out["bsts_causalimpact_fit_nseasons_7"]["median_s"])
        ours_w, bsts_w, cover_ours, cover_bsts = [], [], 0, 0
        for s in range(n_width):
            r = _ours(100 + s, False)
            b = _bsts(100 + s).summary_stats
            ours_w.append(r.ci_avg[1] - r.ci_avg[0])
            bsts_w.append(b["ci_upper"] - b["ci_lower"])
            cover_ours += r.ci_avg[0] <= 1.0 <= r.ci_avg[1]
            cover_bsts += b["ci_lower"] <= 1.0 <= b["ci_upper"]
        out["width"] = {"n_series": n_width, "median_valuetrack": float(np.median(ours_w)),
                        "median_bsts": float(np.median(bsts_w)),
                        "ratio": float(np.median(ours_w) / np.median(bsts_w)),
                        "coverage_valuetrack": cover_ours / n_width, "coverage_bsts": cover_bsts / n_width}
    except ImportError:
        out["bsts_causalimpact_fit_nseasons_7"] = "not installed (pip install bsts-causalimpact)"
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(2) as pool:
        per = pool.map(_portfolio_one, range(n_models))
    out["portfolio"] = {"models": n_models, "processes": 2, "wall_s": time.perf_counter() - t0,
                        "median_per_model_s": float(np.median(per))}
    return out


if __name__ == "__main__":  # pragma: no cover
    import json

    json.dump(run("--quick" in sys.argv), sys.stdout, indent=2)
