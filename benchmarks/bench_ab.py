"""A/B engine at portfolio scale: 1,000 models × 365 days of daily aggregates.

Each model has per-day, per-arm sufficient statistics (n, Σy, Σy², and Σx, Σx², Σxy for CUPED),
as the warehouse returns them. One call turns them into cumulative statistics and analyses every
model on every day: fixed-horizon interval and p-value, confidence sequence and e-value, SRM,
Bayesian view (and, for CUPED, the unadjusted result beside the adjusted one). The timed work is
the cumulative sum plus ``analyze_ab_batch``; generating the synthetic aggregates is not timed.
"""

from __future__ import annotations

import numpy as np

from benchmarks.timing import peak_python_memory, timed
from valuetrack.attribution.ab import ABConfig, ArmStats, analyze_ab_batch


def daily_aggregates(models: int, days: int, seed: int = 7) -> tuple[ArmStats, ArmStats]:
    rng = np.random.default_rng(seed)
    per_day = rng.integers(20, 2000, (models, 1))

    def arm(share: float, lift: float) -> ArmStats:
        n = rng.poisson(per_day * share, (models, days)).astype(float)
        buyers = rng.binomial(n.astype(np.int64), 0.15)
        spend = 25.0 * lift
        sum_y = buyers * spend * rng.lognormal(0.0, 0.1, (models, days))
        sum_y2 = buyers * spend**2 * np.e  # lognormal(σ=1) second moment, per buyer
        sum_x = buyers * spend * 0.9
        sum_x2 = buyers * (spend * 0.9) ** 2 * np.e
        sum_xy = 0.6 * np.sqrt(sum_y2 * sum_x2) + sum_y * sum_x / np.maximum(n, 1)
        return ArmStats(n, sum_y, sum_y2, sum_x, sum_x2, sum_xy)

    return arm(0.5, 1.0), arm(0.5, 1.02)


def cumulative(a: ArmStats) -> ArmStats:
    return ArmStats(*(np.cumsum(getattr(a, f), axis=1) for f in ("n", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")))


def run(quick: bool) -> dict:
    models, days = (100, 365) if quick else (1000, 365)
    control, treatment = daily_aggregates(models, days)
    out: dict = {"models": models, "days": days, "cells": models * days}
    for label, config in (("plain", ABConfig()), ("cuped", ABConfig(cuped=True))):
        def work(config: ABConfig = config) -> dict:
            return analyze_ab_batch(cumulative(control), cumulative(treatment), config)

        result = work()
        assert result["ci_abs"].shape == (models, days, 2) and result["cs_abs"].shape == (models, days, 2)
        out[label] = {
            "seconds": timed(work, repeat=3, warmup=1),
            "peak_python_mib": round(peak_python_memory(work), 1),
            "trusted_share_last_day": float(np.mean(result["trusted"][:, -1])),
        }
    out["target"] = "well under a second for 1,000 models x 365 days"
    return out
