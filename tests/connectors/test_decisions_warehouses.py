"""A classifier's decisions aggregate (``decisions_query``) from DuckDB, Snowflake (fakesnow),
BigQuery (emulator) and Athena (moto + DuckDB), through the real drivers and dialects: the same
rows as a brute force in pandas, with the traps a predictions table holds (a repeated prediction
id, a label that landed after the as-of date, NULL scores' absence, a score of exactly 1, the
threshold itself)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tests.connectors.standins import connector_for
from valuetrack.queries import DECISION_COLUMNS, decisions_query
from valuetrack.refresh_pull import normalize_decisions
from valuetrack.registry.spec import ModelSpec

AS_OF = dt.date(2025, 3, 10)
START, END = dt.date(2025, 3, 1), dt.date(2025, 3, 9)


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 400
    predicted = [dt.datetime(2025, 2, 27) + dt.timedelta(hours=float(h)) for h in rng.uniform(0, 24 * 12, n)]
    score = np.round(rng.beta(1.2, 4.0, n), 4)
    score[:3] = [1.0, 0.3, 0.2999]  # the top bin, the threshold itself and just under it
    label = (rng.random(n) < score).astype(float)
    landed = [p + dt.timedelta(days=float(d)) for p, d in zip(predicted, rng.uniform(0, 15, n))]
    known = rng.random(n) < 0.8
    frame = pd.DataFrame({
        "prediction_id": np.arange(n, dtype=np.int64),
        "predicted_at": predicted,
        "score": score,
        "is_fraud": pd.array(np.where(known, label, 0), dtype="Int64"),
        "labelled_at": landed,
        "note": ["x"] * n,  # a column the query must not read
    })
    frame.loc[~known, ["is_fraud"]] = pd.NA
    frame.loc[~known, "labelled_at"] = pd.NaT
    # a retried prediction: the same id logged twice counts once
    return pd.concat([frame, frame.iloc[[5]].assign(predicted_at=frame.predicted_at[5] + dt.timedelta(seconds=30))],
                     ignore_index=True)


@pytest.fixture
def warehouse_tables() -> dict[str, pd.DataFrame]:
    return {"fraud_predictions": _table()}


def _spec() -> ModelSpec:
    return ModelSpec.from_dict({
        "name": "fraud-screen", "display_name": "Fraud", "owner": "o@example.com", "team": "t",
        "kpi": {"name": "losses", "unit": "USD", "value_per_unit": 1.0, "higher_is_better": False},
        "interventions": [{"start": dt.date(2025, 1, 1)}],
        "attribution": {"method": "structural", "series": {"table": "daily", "date": "d", "value": "v",
                                                           "controls": ["c"]}},
        "decisions": {"table": "fraud_predictions", "id": "prediction_id", "timestamp": "predicted_at",
                      "label": "is_fraud", "label_timestamp": "labelled_at", "score": "score", "threshold": 0.3,
                      "value_tp": 100.0, "value_fp": -20.0},
    })


def _brute_force() -> pd.DataFrame:
    t = _table().sort_values("predicted_at").drop_duplicates("prediction_id")
    t = t[(t.predicted_at.dt.date >= START) & (t.predicted_at.dt.date <= END)]
    cutoff = pd.Timestamp(AS_OF + dt.timedelta(days=1))
    known = t.is_fraud.notna() & (t.labelled_at < cutoff)
    s = t.score.to_numpy()
    frame = pd.DataFrame({
        "day": t.predicted_at.dt.date, "bin": np.minimum(np.floor(s * 100), 99).astype(int),
        "decision": (s >= 0.3).astype(int), "n": 1, "sum_s": s, "sum_s2": s * s,
        "n_labelled": known.astype(int).to_numpy(), "n_positive": (known & (t.is_fraud == 1)).astype(int).to_numpy(),
        "sum_s_labelled": np.where(known, s, 0.0), "sum_s2_labelled": np.where(known, s * s, 0.0)})
    return frame.groupby(["day", "bin", "decision"], as_index=False).sum()[list(DECISION_COLUMNS)]


def test_decisions_on_every_warehouse(warehouse_engine):
    connector = connector_for(warehouse_engine)
    spec = _spec()
    res = connector.run(decisions_query(spec, START, END, as_of=AS_OF, dialect_ops=connector.ops), model=spec.name,
                        purpose="decisions", timeout_s=120)
    res.frame.columns = [c.lower() for c in res.frame.columns]
    got = normalize_decisions(res.frame).sort_values(["day", "bin", "decision"]).reset_index(drop=True)
    want = _brute_force().reset_index(drop=True)
    assert len(want) > 50 and want["n_labelled"].sum() < want["n"].sum()
    pd.testing.assert_frame_equal(got[["day", "bin", "decision", "n", "n_labelled", "n_positive"]],
                                  want[["day", "bin", "decision", "n", "n_labelled", "n_positive"]], check_dtype=False)
    for col in ("sum_s", "sum_s2", "sum_s_labelled", "sum_s2_labelled"):
        np.testing.assert_allclose(got[col], want[col], rtol=1e-9, atol=1e-12)
    assert res.attempts == 1
