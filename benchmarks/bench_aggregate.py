"""A/B aggregation of a generated DuckDB warehouse: valuetrack vs hand-written SQL vs a plain
join-and-group query vs pandas.

N exposures and N outcomes over 20 models (units drawn per model; outcomes over all units).
Four approaches compute the same numbers (per cohort day × arm: n, n_units, Σy, Σy², Σx, Σx², Σxy
for all 20 models, "sum" KPI, 30-day window, 30-day CUPED covariate, as-of 2025-06-30):

  * ``valuetrack``: ``ab_aggregate`` compiled by duckdb-engine, run through ``DuckDBConnector.run``
  * ``handwritten``: ``benchmarks/handwritten_aggregate.sql``, the best DuckDB SQL we know, raw duckdb
  * ``plain``: ``benchmarks/plain_aggregate.sql``, the straightforward join-and-group query
  * ``pandas``: load the outcomes and each model's exposures into pandas and aggregate there

Method. Every run of every approach is a fresh Python subprocess (``--worker``) that opens the
warehouse read-only, runs the 20 models and writes its result frame. The parent checks that
every run of every approach returns exactly the same frame as valuetrack's, and records:

  * wall seconds of the measured section (connect + 20 queries + fetching the results; not
    interpreter start-up or imports), and CPU seconds of the same section (``time.process_time``,
    all threads): on a shared machine CPU time is much less disturbed by other load than wall time;
  * peak memory: ``ru_maxrss`` of the subprocess (``os.wait4``), i.e. the peak resident set of
    the whole process — DuckDB's native buffers and hash tables, pandas' arrays and the
    interpreter; ``idle_rss_mb`` is the same for a worker that imports everything and runs nothing.

Runs are interleaved (round r runs every approach once, in a rotated order) so that a burst of
load from elsewhere falls on all approaches alike; min / median / max are reported over rounds.
Ratios are taken between the medians (and the mins) of the same run of the benchmark.
Then: valuetrack with DuckDB ``memory_limit = 1GB``, and valuetrack's scaling over 1M, 10M, 50M
rows (--quick: 100k, 300k).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

from valuetrack.queries import ab_window
from valuetrack.registry.spec import ModelSpec

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
MODELS = 20
AS_OF = dt.date(2025, 6, 30)
START = dt.date(2025, 1, 1)
APPROACHES = ("valuetrack", "handwritten", "plain", "pandas")
SUMS = ["sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy"]


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
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
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
    tmp.rename(path)


def _params(s: ModelSpec) -> dict:
    w = ab_window(s, START, AS_OF, AS_OF)
    a = s.attribution
    return {"model": s.name, "treatment": "model", "control": "holdout", "tz": s.timezone, "cutoff": w.cutoff,
            "cohort_from": w.cohort_from, "cohort_to": w.cohort_to, "outcomes_from": w.outcomes_from,
            "outcomes_to": w.outcomes_to, "window_days": a.window_days, "covariate_days": a.covariate_days}


# -- the four approaches (each returns one frame per model) ---------------------------------------


def run_valuetrack(path: Path, memory_limit: str | None = None) -> list[pd.DataFrame]:
    from valuetrack.config import ConnectionSettings
    from valuetrack.connectors import get_connector
    from valuetrack.queries import ab_aggregate

    opts = {"read_only": True, **({"memory_limit": memory_limit} if memory_limit else {})}
    c = get_connector(ConnectionSettings("bench", f"duckdb:///{path}", opts))
    try:
        return [c.run(ab_aggregate(spec(i), cohort_start=START, cohort_end=AS_OF, as_of=AS_OF, dialect_ops=c.ops),
                      model=spec(i).name, purpose="ab", timeout_s=3600).frame for i in range(MODELS)]
    finally:
        c.dispose()


def _run_sql_file(path: Path, sql_file: str) -> list[pd.DataFrame]:
    sql = (HERE / sql_file).read_text()
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone='UTC'")
    try:
        out = []
        for i in range(MODELS):
            params = {k: v for k, v in _params(spec(i)).items() if f"${k}" in sql}
            out.append(con.execute(sql, params).df())
        return out
    finally:
        con.close()


def run_handwritten(path: Path) -> list[pd.DataFrame]:
    return _run_sql_file(path, "handwritten_aggregate.sql")


def run_plain(path: Path) -> list[pd.DataFrame]:
    return _run_sql_file(path, "plain_aggregate.sql")


def run_pandas(path: Path) -> list[pd.DataFrame]:
    """What a user without valuetrack does: pull the rows, aggregate in pandas (same definitions:
    first exposure per unit, crossovers apart, y over [first, first + 30 d) and x over
    [first − 30 d, first), nothing at or after the as-of cutoff)."""
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone='UTC'")
    out = []
    try:
        outcomes = con.execute("SELECT customer_id, event_at, value FROM outcomes").df()
        for i in range(MODELS):
            s = spec(i)
            p = _params(s)
            window = pd.Timedelta(days=s.attribution.window_days)
            cov = pd.Timedelta(days=s.attribution.covariate_days)
            ex = con.execute("SELECT customer_id, scored_at, arm FROM exposures WHERE model_id = ?", [s.name]).df()
            ex = ex[ex.arm.isin([p["treatment"], p["control"]]) & (ex.scored_at < p["cutoff"])]
            first = ex.groupby("customer_id").agg(first_ts=("scored_at", "min"), arm_lo=("arm", "min"),
                                                  arm_hi=("arm", "max"))
            first = first[(first.first_ts >= p["cohort_from"]) & (first.first_ts < p["cohort_to"])]
            first["arm"] = first.arm_lo.where(first.arm_lo == first.arm_hi)
            o = outcomes[outcomes.customer_id.isin(first.index) & (outcomes.event_at < p["cutoff"])]
            j = o.merge(first[["first_ts"]], left_on="customer_id", right_index=True)
            d = j.event_at - j.first_ts
            j = j.assign(y=j.value.where((d >= pd.Timedelta(0)) & (d < window), 0).astype(float),
                         x=j.value.where((d < pd.Timedelta(0)) & (d >= -cov), 0).astype(float))
            per = j.groupby("customer_id")[["y", "x"]].sum()
            per = first.join(per, how="left").fillna({"y": 0.0, "x": 0.0})
            per["day"] = per.first_ts.dt.date
            xo = per.arm.isna()
            per.loc[xo, ["y", "x"]] = float("nan")
            per = per.assign(y2=per.y ** 2, x2=per.x ** 2, xy=per.x * per.y)
            out.append(per.groupby(["day", "arm"], dropna=False).agg(
                n=("y", "count"), n_units=("y", "size"), sum_y=("y", "sum"), sum_y2=("y2", "sum"),
                sum_x=("x", "sum"), sum_x2=("x2", "sum"), sum_xy=("xy", "sum")).reset_index())
    finally:
        con.close()
    return out


RUNNERS = {"valuetrack": run_valuetrack, "handwritten": run_handwritten, "plain": run_plain, "pandas": run_pandas}


def canonical(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame over all models, comparable across approaches: crossover rows (arm NULL) carry
    only n_units (their sums 0), days as dates, counts as ints, sums as floats."""
    parts = []
    for i, f in enumerate(frames):
        f = f[["day", "arm", "n", "n_units", *SUMS]].copy()
        f.insert(0, "model", i)
        parts.append(f)
    f = pd.concat(parts, ignore_index=True)
    f["day"] = pd.to_datetime(f["day"]).dt.date
    f["arm"] = f["arm"].astype(object).where(f["arm"].notna(), None)
    for c in ("n", "n_units"):
        f[c] = f[c].astype("int64")
    for c in SUMS:
        f[c] = f[c].astype(float).where(f["arm"].notna(), 0.0).fillna(0.0)
    f["_xo"] = f["arm"].isna()
    f = f.sort_values(["model", "day", "_xo", "arm"]).drop(columns="_xo").reset_index(drop=True)
    return f


# -- the subprocess worker ------------------------------------------------------------------------


def worker(approach: str, path: Path, out: Path, memory_limit: str | None) -> None:
    if approach == "idle":
        out.write_bytes(pickle.dumps({"wall_s": 0.0, "cpu_s": 0.0, "frame": None}))
        return
    fn = RUNNERS[approach]
    c0, t0 = time.process_time(), time.perf_counter()
    frames = fn(path, memory_limit) if memory_limit else fn(path)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out.write_bytes(pickle.dumps({"wall_s": wall, "cpu_s": cpu, "frame": canonical(frames)}))


def _spawn(approach: str, path: Path, memory_limit: str | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.pkl"
        cmd = [sys.executable, "-m", "benchmarks.bench_aggregate", "--worker", approach, str(path), str(out)]
        if memory_limit:
            cmd += ["--memory-limit", memory_limit]
        proc = subprocess.Popen(cmd, cwd=HERE.parent)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark worker {approach} on {path.name} failed (exit {proc.returncode})")
        res = pickle.loads(out.read_bytes())
    res["peak_rss_mb"] = usage.ru_maxrss / 1024
    return res


def _stats(values: list[float], nd: int = 3) -> dict:
    return {"min": round(min(values), nd), "median": round(statistics.median(values), nd),
            "max": round(max(values), nd), "runs": len(values)}


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=0.0)
        return True
    except AssertionError:
        return False


def _summary(runs: list[dict]) -> dict:
    return {"wall_s": _stats([r["wall_s"] for r in runs]), "cpu_s": _stats([r["cpu_s"] for r in runs]),
            "peak_rss_mb": _stats([r["peak_rss_mb"] for r in runs], 1)}


def run(quick: bool) -> dict:
    DATA.mkdir(exist_ok=True)
    sizes = [100_000, 300_000] if quick else [1_000_000, 10_000_000, 50_000_000]
    main_n = 300_000 if quick else 10_000_000
    rounds = 2 if quick else 3
    files = {n: DATA / f"bench_{n}.duckdb" for n in sizes}
    for n, p in files.items():
        generate(p, n)
    main = files[main_n]

    idle = _spawn("idle", main)["peak_rss_mb"]
    runs: dict[str, list[dict]] = {a: [] for a in APPROACHES}
    reference = None
    for r in range(rounds):
        order = APPROACHES[r % len(APPROACHES):] + APPROACHES[:r % len(APPROACHES)]
        for approach in order:
            res = _spawn(approach, main)
            if reference is None and approach == "valuetrack":
                reference = res["frame"]
            runs[approach].append(res)
    if reference is None:  # pragma: no cover - valuetrack always runs in round 0
        raise RuntimeError("no valuetrack run")
    for approach, rs in runs.items():
        for res in rs:
            assert _same(res["frame"], reference), f"{approach} does not return valuetrack's numbers"
    figures = {a: _summary(rs) for a, rs in runs.items()}

    def ratio(a: str, b: str, stat: str, what: str = "wall_s") -> float:
        return round(figures[a][what][stat] / figures[b][what][stat], 3)

    limited = [_spawn("valuetrack", main, memory_limit="1GB") for _ in range(1 if quick else rounds)]
    for res in limited:
        assert _same(res["frame"], reference), "valuetrack with memory_limit=1GB differs"

    scaling = {}
    for n, p in files.items():
        rs = runs["valuetrack"] if n == main_n else [_spawn("valuetrack", p) for _ in range(1 if quick else rounds)]
        scaling[str(n)] = _summary(rs)

    totals = reference[reference.arm.notna()][["n", *SUMS]].sum()
    return {
        "rows_exposures": main_n, "rows_outcomes": main_n, "models": MODELS, "rounds": rounds,
        "method": "one fresh subprocess per run; wall and CPU (process_time) of connect + 20 queries + fetch; "
                  "peak RSS = ru_maxrss of the subprocess (os.wait4); rounds interleaved",
        "idle_rss_mb": round(idle, 1),
        "approaches": figures,
        "ratios": {
            "valuetrack_over_handwritten": {"median_wall": ratio("valuetrack", "handwritten", "median"),
                                            "min_wall": ratio("valuetrack", "handwritten", "min"),
                                            "median_cpu": ratio("valuetrack", "handwritten", "median", "cpu_s")},
            "plain_over_valuetrack": {"median_wall": ratio("plain", "valuetrack", "median"),
                                      "min_wall": ratio("plain", "valuetrack", "min"),
                                      "median_cpu": ratio("plain", "valuetrack", "median", "cpu_s")},
            "pandas_over_valuetrack": {"median_wall": ratio("pandas", "valuetrack", "median"),
                                       "min_wall": ratio("pandas", "valuetrack", "min"),
                                       "median_cpu": ratio("pandas", "valuetrack", "median", "cpu_s")},
            "pandas_over_plain": {"median_wall": ratio("pandas", "plain", "median"),
                                  "min_wall": ratio("pandas", "plain", "min"),
                                  "median_cpu": ratio("pandas", "plain", "median", "cpu_s")},
        },
        "same_numbers": {a: True for a in APPROACHES},
        "totals": {k: float(v) for k, v in totals.items()},
        "crossover_units": int(reference.loc[reference.arm.isna(), "n_units"].sum()),
        "memory_limit_1gb": {**_summary(limited), "same_numbers": True},
        "scaling_valuetrack": scaling,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", nargs=3, metavar=("APPROACH", "DB", "OUT"), required=True)
    ap.add_argument("--memory-limit")
    args = ap.parse_args()
    approach, db, out = args.worker
    worker(approach, Path(db), Path(out), args.memory_limit)
