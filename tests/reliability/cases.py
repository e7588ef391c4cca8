"""Shared data of the reliability suite: valid inputs to mutate, a warehouse to break, helpers."""

from __future__ import annotations

import datetime as dt
import io
import re
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tests.manifests import CHURN_MANIFEST, VALID_MANIFEST

__all__ = ["VALID_MANIFEST", "Run", "run_cli", "ab_frame", "ts_frame", "did_frame", "build_warehouse",
           "WAREHOUSE_MANIFEST", "AS_OF"]

AS_OF = dt.date(2025, 6, 30)


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_cli(*argv: str) -> Run:
    """The real entry point in-process; any exception escaping main() fails the calling test."""
    from valuetrack.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in argv])
    return Run(code, out.getvalue(), err.getvalue())


def ab_frame(n: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = np.where(rng.random(n) < 0.5, "model", "holdout")
    x = rng.normal(10, 2, n)
    y = x + rng.normal(0, 1, n) + (arm == "model") * 0.3
    return pd.DataFrame({"unit": range(n), "arm": arm, "y": y.round(4), "x": x.round(4)})


def ts_frame(days: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    day = pd.date_range("2025-01-01", periods=days, freq="D")
    c = 100 + rng.normal(0, 3, days).cumsum() * 0.1
    y = 1.2 * c + rng.normal(0, 1, days) + (day >= "2025-03-15") * 5
    return pd.DataFrame({"day": day.strftime("%Y-%m-%d"), "orders": y.round(3), "ctrl": c.round(3)})


def did_frame() -> pd.DataFrame:
    rows = []
    for unit in ("a", "b", "c", "d"):
        for t in range(1, 11):
            rows.append({"unit": unit, "t": t, "y": 10 + t + (unit == "a") * (t >= 6) * 2.0 + hash(unit) % 3})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# a tiny warehouse for the churn-save-offers model of VALID_MANIFEST (DuckDB file)

WAREHOUSE_MANIFEST = CHURN_MANIFEST


def build_warehouse(path: Path, *, exposures: pd.DataFrame | None = None, outcomes: pd.DataFrame | None = None,
                    exposures_sql: str | None = None, outcomes_sql: str | None = None) -> None:
    """exposures(customer_id, scored_at, model_id, arm, score, country), outcomes(customer_id, event_at,
    value, event_type); by default 60 days of clean data before AS_OF."""
    import duckdb

    rng = np.random.default_rng(3)
    if exposures is None and exposures_sql is None:
        n = 600
        days = rng.integers(0, 60, n)
        exposures = pd.DataFrame({
            "customer_id": np.arange(n), "scored_at": [pd.Timestamp(AS_OF) - pd.Timedelta(days=int(d) + 1, hours=3) for d in days],
            "model_id": "churn-save-offers", "arm": np.where(rng.random(n) < 0.9, "model", "holdout"),
            "score": rng.random(n).round(3), "country": rng.choice(["fr", "de"], n)})
    if outcomes is None and outcomes_sql is None:
        base = exposures if exposures is not None else None
        ids = base["customer_id"].to_numpy() if base is not None else np.arange(600)
        ts = base["scored_at"] if base is not None else pd.Series([pd.Timestamp(AS_OF)] * len(ids))
        outcomes = pd.DataFrame({"customer_id": ids, "event_at": [t + pd.Timedelta(days=2) for t in ts],
                                 "value": rng.gamma(2, 10, len(ids)).round(2), "event_type": "purchase"})
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        if exposures_sql:
            con.execute(exposures_sql)
        else:
            con.register("e", exposures)
            con.execute("CREATE TABLE exposures AS SELECT * FROM e")
        if outcomes_sql:
            con.execute(outcomes_sql)
        else:
            con.register("o", outcomes)
            con.execute("CREATE TABLE outcomes AS SELECT * FROM o")
    finally:
        con.close()


TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s+File \".*\", line \d+", re.M)
