"""A/B aggregation of a generated DuckDB warehouse: valuetrack vs hand-written SQL vs pandas.

N exposures and N outcomes over 20 models (units drawn per model; outcomes over all units).
Measured, over all 20 models (one query each):
  * valuetrack: ``ab_aggregate`` compiled by duckdb-engine and run through ``DuckDBConnector.run``
  * handwritten: ``benchmarks/handwritten_aggregate.sql`` (the same numbers), raw duckdb
  * pandas: load the model's exposures and the outcomes of its units into pandas, aggregate there
Plus scaling (1M, 10M, 50M rows; --quick: 100k, 300k) and a run with memory_limit = 1GB.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from valuetrack.config import ConnectionSettings
from valuetrack.connectors import get_connector
from valuetrack.queries import ab_aggregate, ab_window
from valuetrack.registry.spec import ModelSpec

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
MODELS = 20
AS_OF = dt.date(2025, 6, 30)
START = dt.date(2025, 1, 1)


def spec(i: int) -> ModelSpec:
    return ModelSpec.from_dict({
        "name": f"model-{i:02d}", "display_name": "m", "owner": "o", "team": "t", "timezone": "UTC",
        "kpi": {"name": "rev", "unit": "USD", "value_per_unit": 1.0, "aggregation": "sum"},
        "attribution": {"method": "ab", "window_days": 30, "outcome_lag_days": 3, "covariate_days": 30,
                        "exposures": {"table": "exposures", "unit": "customer_id", "timestamp": "scored_at",
                                      "arm": "arm", "model": "model_id", "treatment": "model", "control": "holdout"},
                        "outcomes": {"table": "outcomes", "unit": "customer_id", "timestamp": "event_at",
                                     "value": "value"}}})


def generate(path: Path, n: int) -> None:
    if path.exists():
        return
    units = max(1000, n // 5)
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone='UTC'")
    con.execute(f"""
        CREATE TABLE exposures AS
        SELECT (hash(i) % {units})::BIGINT AS customer_id,
               TIMESTAMP '2025-01-01' + to_seconds((hash(i * 7) % (180 * 86400))::BIGINT) AS scored_at,
               'model-' || lpad(((hash(i) % {units}) % {MODELS})::VARCHAR, 2, '0') AS model_id,
               CASE WHEN hash(hash(i) % {units}) % 10 < 9 THEN 'model' ELSE 'holdout' END AS arm,
               (hash(i * 3) % 1000) / 1000.0 AS score
        FROM range({n}) t(i)""")
    con.execute(f"""
        CREATE TABLE outcomes AS
        SELECT (hash(i * 11) % {units})::BIGINT AS customer_id,
               TIMESTAMP '2024-12-01' + to_seconds((hash(i * 13) % (220 * 86400))::BIGINT) AS event_at,
               (hash(i * 17) % 100)::INTEGER AS value
        FROM range({n}) t(i)""")
    con.close()


def _params(s: ModelSpec) -> dict:
    w = ab_window(s, START, AS_OF, AS_OF)
    a = s.attribution
    return {"model": s.name, "treatment": "model", "control": "holdout", "tz": s.timezone, "cutoff": w.cutoff,
            "cohort_from": w.cohort_from, "cohort_to": w.cohort_to, "outcomes_from": w.outcomes_from,
            "outcomes_to": w.outcomes_to, "window_days": a.window_days, "covariate_days": a.covariate_days}


def run_valuetrack(path: Path, memory_limit: str | None = None) -> list[pd.DataFrame]:
    opts = {"read_only": True, **({"memory_limit": memory_limit} if memory_limit else {})}
    c = get_connector(ConnectionSettings("bench", f"duckdb:///{path}", opts))
    try:
        return [c.run(ab_aggregate(spec(i), cohort_start=START, cohort_end=AS_OF, as_of=AS_OF, dialect_ops=c.ops),
                      model=spec(i).name, purpose="ab", timeout_s=3600).frame for i in range(MODELS)]
    finally:
        c.dispose()


def run_handwritten(path: Path) -> list[pd.DataFrame]:
    sql = (HERE / "handwritten_aggregate.sql").read_text()
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone='UTC'")
    try:
        return [con.execute(sql, _params(spec(i))).df() for i in range(MODELS)]
    finally:
        con.close()


def run_pandas(path: Path) -> list[pd.DataFrame]:
    """What a user without valuetrack does: pull the rows, aggregate in pandas."""
    con = duckdb.connect(str(path), read_only=True)
    out = []
    try:
        outcomes = con.execute("SELECT customer_id, event_at, value FROM outcomes").df()
        for i in range(MODELS):
            s = spec(i)
            p = _params(s)
            ex = con.execute("SELECT customer_id, scored_at, arm FROM exposures WHERE model_id = ? AND scored_at < ?",
                             [s.name, p["cutoff"]]).df()
            first = ex.groupby("customer_id").agg(first_ts=("scored_at", "min"), arms=("arm", "nunique"),
                                                  arm=("arm", "first")).reset_index()
            first = first[(first.first_ts >= p["cohort_from"]) & (first.first_ts < p["cohort_to"])]
            j = first.merge(outcomes, on="customer_id", how="left")
            d = j.event_at - j.first_ts
            y = j.value.where((d >= pd.Timedelta(0)) & (d < pd.Timedelta(days=30)), 0)
            x = j.value.where((d < pd.Timedelta(0)) & (d >= -pd.Timedelta(days=30)), 0)
            j = j.assign(y=y.fillna(0).astype(float), x=x.fillna(0).astype(float))
            per = j.groupby(["customer_id", "first_ts", "arm", "arms"]).agg(y=("y", "sum"), x=("x", "sum")).reset_index()
            per = per[per.arms == 1]
            per["day"] = per.first_ts.dt.date
            per = per.assign(y2=per.y ** 2, x2=per.x ** 2, xy=per.x * per.y)
            out.append(per.groupby(["day", "arm"]).agg(n=("y", "size"), sum_y=("y", "sum"), sum_y2=("y2", "sum"),
                                                       sum_x=("x", "sum"), sum_x2=("x2", "sum"),
                                                       sum_xy=("xy", "sum")).reset_index())
    finally:
        con.close()
    return out


def _totals(frames: list[pd.DataFrame]) -> list[float]:
    tot = np.zeros(3)
    for f in frames:
        f = f[f["arm"].notna()]
        tot += [f["n"].astype(float).sum(), f["sum_y"].astype(float).sum(), f["sum_xy"].astype(float).sum()]
    return [round(v, 3) for v in tot]


def _time(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run(quick: bool) -> dict:
    DATA.mkdir(exist_ok=True)
    sizes = [100_000, 300_000] if quick else [1_000_000, 10_000_000, 50_000_000]
    main_n = sizes[-1] if quick else 10_000_000
    files = {n: DATA / f"bench_{n}.duckdb" for n in sizes}
    for n, p in files.items():
        generate(p, n)
    main = files[main_n]
    run_valuetrack(main)  # warm the OS cache
    t_vt, vt = _time(lambda: run_valuetrack(main))
    t_hw, hw = _time(lambda: run_handwritten(main))
    t_vt2, _ = _time(lambda: run_valuetrack(main))
    t_vt = min(t_vt, t_vt2)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t_pd, pdf = _time(lambda: run_pandas(main))
    rss_pandas = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    same = _totals(vt) == _totals(hw)
    t_lim, lim = _time(lambda: run_valuetrack(main, memory_limit="1GB"))
    scaling = {}
    for n, p in files.items():
        t, _ = _time(lambda p=p: run_valuetrack(p))
        scaling[str(n)] = round(t, 3)
    return {
        "rows_exposures": main_n, "rows_outcomes": main_n, "models": MODELS,
        "valuetrack_s": round(t_vt, 3), "handwritten_s": round(t_hw, 3), "pandas_s": round(t_pd, 3),
        "overhead_vs_handwritten": round(t_vt / t_hw, 3),
        "speedup_vs_pandas": round(t_pd / t_vt, 2),
        "pandas_peak_rss_mb": round(rss_pandas / 1024, 1), "rss_before_pandas_mb": round(rss_before / 1024, 1),
        "same_numbers_as_handwritten": same, "totals": _totals(vt), "pandas_totals": _totals(pdf),
        "memory_limit_1gb_s": round(t_lim, 3), "memory_limit_1gb_same": _totals(lim) == _totals(vt),
        "scaling_s": scaling,
    }
