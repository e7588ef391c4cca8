"""Shared data of the reliability suite: valid inputs to mutate, a warehouse to break, helpers."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.manifests import CHURN_MANIFEST, VALID_MANIFEST
from tests.value.companies import model_name

__all__ = ["BREAKS", "EXTRA_BREAKS", "VALID_MANIFEST", "Run", "run_cli", "ab_frame", "ts_frame", "did_frame", "build_warehouse",
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


# ------------------------------------------------------------------------------------------------
# one model of a company broken, each way a model can fail to be valued (tests/reliability/test_isolation.py):
# the company of tests/value/companies.py with seed ISOLATION_SEED, valued as of ISOLATION_AS_OF

ISOLATION_AS_OF = dt.date(2026, 5, 1)
ISOLATION_SEED = 7


def _duck(ws: Path, sql: str) -> None:
    import duckdb

    con = duckdb.connect(str(ws / "sample_data" / "demo.duckdb"))
    try:
        con.execute(sql)
    finally:
        con.close()


def _unknown_method(ws: Path, url: str) -> None:
    engine = sa.create_engine(url)
    name = model_name(ISOLATION_SEED, "its")
    with engine.begin() as c:
        spec = c.execute(sa.text("SELECT spec FROM models WHERE name = :n"), {"n": name}).scalar_one()
        spec = json.loads(spec) if isinstance(spec, str) else spec
        spec["attribution"]["method"] = "magic_forecast"
        c.execute(sa.text("UPDATE models SET method = 'magic_forecast', spec = :s WHERE name = :n"),
                  {"s": json.dumps(spec), "n": name})
    engine.dispose()


def _refusing(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    import valuetrack.connectors as connectors
    from valuetrack.connectors.duckdb import DuckDBConnector
    from valuetrack.errors import WarehouseError

    class Refusing(DuckDBConnector):
        def run(self, stmt: Any, *, model: str | None = None, **kw: Any) -> Any:
            if model == target:
                raise WarehouseError("the warehouse refused the query: permission denied on table c07_synth "
                                     "(ask its owner for SELECT)")
            return super().run(stmt, model=model, **kw)

    monkeypatch.setattr(connectors, "connector_class", lambda dialect: Refusing)


def _failing_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from valuetrack.attribution.methods.panel import SyntheticControlMethod

    def boom(self: Any, *a: Any, **kw: Any) -> Any:
        raise np.linalg.LinAlgError("SVD did not converge")

    monkeypatch.setattr(SyntheticControlMethod, "estimate", boom)


BREAKS: dict[str, tuple[str, Callable[..., None], str]] = {
    # name → (broken model's method, how to break it, what its error must say)
    "table dropped": ("did", lambda ws, url, mp: _duck(ws, f"DROP TABLE c{ISOLATION_SEED:02d}_did"),
                      r"last refresh failed.*c07_did"),
    "column renamed": ("ab", lambda ws, url, mp: _duck(ws, f"ALTER TABLE c{ISOLATION_SEED:02d}_exposures RENAME COLUMN arm TO arm_label"),
                       r"last refresh failed.*arm"),
    "unknown method in its row": ("its", lambda ws, url, mp: _unknown_method(ws, url),
                                  r"stored registration is no longer valid.*magic_forecast.*models register"),
    "warehouse refuses its query": ("synthetic_control", lambda ws, url, mp: _refusing(mp, model_name(ISOLATION_SEED, "synthetic_control")),
                                    r"last refresh failed.*refused the query"),
    "series too short": ("its", lambda ws, url, mp: _duck(ws, f"DELETE FROM c{ISOLATION_SEED:02d}_daily WHERE day < DATE '{ISOLATION_AS_OF - dt.timedelta(days=10)}'"),
                         r"its.*pre-period too short"),
}


EXTRA_BREAKS: dict[str, tuple[str, Callable[..., None], str]] = {
    "a fit that raises": ("synthetic_control", lambda ws, url, mp: _failing_fit(mp),
                          r"the 'synthetic_control' fit failed \(LinAlgError: SVD did not converge\).*another method"),
    "constant series": ("its", lambda ws, url, mp: _duck(ws, f"UPDATE c{ISOLATION_SEED:02d}_daily SET its_kpi = 5"),
                        r"its.*pre-period series is constant"),
}


# SQL injection payloads (public lists, see the file's header): hostile names and values everywhere
SQLI_PAYLOADS = [line for line in (Path(__file__).with_name("sqli_payloads.txt").read_text(encoding="utf-8").splitlines())
                 if line and not line.startswith("# ")]

