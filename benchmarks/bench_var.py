"""The portfolio's value at risk at 200 models: the month-segment simulation against the day-by-day
one it replaced (D47), in the same run.

Two measurements, each the median of 3 runs (wall and CPU seconds; the CPU time is fairer on a
shared machine):

* **simulation**: ``var.simulate_horizons`` (each model's volume drawn per month segment) against
  ``var.simulate_daily`` (every model's daily AR(1) paths, the method before D47) on a seeded
  one-factor world of 200 models (weekday pattern, drifting money per unit, KPIs shared in groups
  of ten), 4,000 paths, both horizons; the 5 % VaR of both is reported beside the times.
* **portfolio_var**: the whole value at risk a valuation runs (inputs from the valuations, the fit,
  the simulation) on ``benchmarks/bench_app.py``'s 200-model portfolio (the demo's models cloned,
  aggregates copied), and the same with the daily simulation swapped in (one run).

    python -m benchmarks var [--quick] [--models N]     # --quick: 40 models
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.timing import timed, valuetrack_env

START = dt.date(2026, 6, 15)
HISTORY = [START - dt.timedelta(days=365 - t) for t in range(365)]


def synthetic(n: int, seed: int = 4) -> tuple[list, Any]:
    """``n`` models on one demand factor (loadings 0.05–0.2, persistence 0.98; own parts 0.5–0.9),
    money per unit drifting monthly, KPIs shared in groups of ten with overlap 0.3; fitted."""
    from valuetrack.value.var import VarModelInput, fit

    rng = np.random.default_rng(seed)
    f, e = np.zeros(365), np.zeros((365, n))
    phi, sd = rng.uniform(0.5, 0.9, n), rng.uniform(0.05, 0.2, n)
    for t in range(1, 365):
        f[t] = 0.98 * f[t - 1] + np.sqrt(1 - 0.98 ** 2) * rng.standard_normal()
        e[t] = phi * e[t - 1] + sd * np.sqrt(1 - phi ** 2) * rng.standard_normal(n)
    weekday = np.array([0.0, 0.05, 0.05, 0.02, 0.1, -0.2, -0.25])[[d.weekday() for d in HISTORY]]
    volume = np.exp(rng.uniform(5, 9, n)[None, :] + weekday[:, None] + rng.uniform(0.05, 0.2, n) * f[:, None] + e)
    per_unit = rng.uniform(0.1, 3.0, n)
    monthly = per_unit + np.cumsum(rng.standard_normal((12, n)) * 0.03 * per_unit, axis=0)
    ses = np.tile(0.01 * per_unit, (12, 1))
    models = [VarModelInput(f"m{i}", volume[:, i], float(monthly[-1, i]), monthly[:, i], ses[:, i],
                            float(rng.uniform(1e3, 3e4)), kpi=f"kpi-{i // 10}") for i in range(n)]
    group = np.arange(n) // 10
    overlap = np.where((group[:, None] == group[None, :]) & ~np.eye(n, dtype=bool), 0.3, 0.0)
    return models, fit(models, HISTORY, overlap)


def _simulation(n: int) -> dict[str, Any]:
    from valuetrack.value.var import simulate_daily, simulate_horizons, tail

    models, fm = synthetic(n)
    out: dict[str, Any] = {"models": n, "paths": 4000, "horizons_days": [365, 30]}
    for name, fn in (("segments", simulate_horizons), ("daily", simulate_daily)):
        for clock, key in ((time.perf_counter, "wall"), (time.process_time, "cpu")):
            t = timed(lambda: fn(models, fm, START, [365, 30], paths=4000, seed=20), clock=clock)  # noqa: B023
            out[f"{name}_{key}_median_s"] = round(t["median_s"], 3)
        sims = fn(models, fm, START, [365, 30], paths=4000, seed=20)
        out[f"{name}_var_12m"], out[f"{name}_var_1m"] = (round(tail(sims[h][0], 0.05)[0]) for h in (365, 30))
    out["speedup_wall"] = round(out["daily_wall_median_s"] / out["segments_wall_median_s"], 1)
    out["speedup_cpu"] = round(out["daily_cpu_median_s"] / out["segments_cpu_median_s"], 1)
    return out


def _portfolio(n: int) -> dict[str, Any]:
    from benchmarks.bench_app import build
    from valuetrack.context import open_context
    from valuetrack.value import portfolio_var as pvar
    from valuetrack.value import var
    from valuetrack.value.portfolio import value_portfolio

    out: dict[str, Any] = {"models": n}
    with valuetrack_env(START.isoformat()):
        with tempfile.TemporaryDirectory() as tmp:
            build(Path(tmp), n)
            pv = value_portfolio(open_context(), as_of=START)
            for v in pv.valuations.values():  # the valuation has computed every month before the VaR runs
                v.months()
            for clock, key in ((time.perf_counter, "wall"), (time.process_time, "cpu")):
                out[f"{key}_median_s"] = round(timed(lambda: pvar.portfolio_var(pv), clock=clock)["median_s"], 3)
            segments = var.simulate_horizons
            try:
                var.simulate_horizons = var.simulate_daily  # the method before D47, in the same conditions
                t0, c0 = time.perf_counter(), time.process_time()
                pvar.portfolio_var(pv)
                out["daily_simulation_wall_s"] = round(time.perf_counter() - t0, 3)
                out["daily_simulation_cpu_s"] = round(time.process_time() - c0, 3)
            finally:
                var.simulate_horizons = segments
            out["speedup_wall"] = round(out["daily_simulation_wall_s"] / out["wall_median_s"], 1)
    return out


def run(quick: bool = False, models: int | None = None) -> dict:
    n = models or (40 if quick else 200)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"load_average_1m": load, "simulation": _simulation(n), "portfolio_var": _portfolio(n)}
