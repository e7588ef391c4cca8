"""Overlap: shared units counted in the warehouse match a brute-force count; the portfolio total
deducts value that two models sharing units and a KPI would both claim."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tests.conftest import VALID_MANIFEST
from valuetrack.queries import shared_units_query
from valuetrack.registry.manifest import parse_manifest
from valuetrack.value.overlap import Overlap, deduplicate, overlap_groups, shares_kpi

AS_OF = dt.date(2025, 6, 1)


def _specs():
    base = parse_manifest(VALID_MANIFEST)[0].spec
    a = base.replace(name="model-a")
    b = base.replace(name="model-b")
    other_kpi = base.replace(name="model-c", attribution=base.attribution.__class__(
        **{**base.attribution.__dict__, "outcomes": base.attribution.outcomes.__class__(
            **{**base.attribution.outcomes.__dict__, "where": "event_type = 'refund'"})}))
    return a, b, other_kpi


def test_groups_and_shared_kpi() -> None:
    a, b, c = _specs()
    assert shares_kpi(a, b) and not shares_kpi(a, c)
    assert [[s.name for s in g] for g in overlap_groups([c, b, a])] == [["model-a", "model-b", "model-c"]]
    assert overlap_groups([a, c]) == []  # no pair shares a KPI: nothing can be double counted


def test_shared_units_query_matches_brute_force(tmp_path) -> None:
    rng = np.random.default_rng(4)
    n = 3000
    frame = pd.DataFrame({
        "customer_id": rng.integers(0, 800, n),
        "scored_at": pd.Timestamp("2025-05-01") + pd.to_timedelta(rng.integers(0, 40 * 24, n), unit="h"),
        "model_id": rng.choice(["model-a", "model-b", "model-c"], n),
        "arm": rng.choice(["model", "holdout"], n, p=[0.8, 0.2]),
        "score": rng.random(n), "country": "FR",
    })
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    with engine.begin() as conn:
        frame.to_sql("exposures", conn, index=False)
    specs = list(_specs())
    with engine.connect() as conn:
        got = {(specs[r.model_a].name, specs[r.model_b].name): r.shared
               for r in conn.execute(shared_units_query(specs, as_of=AS_OF))}
    cutoff = pd.Timestamp(dt.datetime(2025, 6, 1, 22, 0))  # midnight after as_of in Europe/Paris, in UTC
    served = frame[(frame["arm"] == "model") & (frame["scored_at"] < cutoff)].groupby("model_id")["customer_id"].apply(set)
    expected = {(x, y): len(served[x] & served[y]) for x, y in [("model-a", "model-b"), ("model-a", "model-c"), ("model-b", "model-c")]}
    assert got == {k: v for k, v in expected.items() if v}


def test_deduction_counts_shared_value_once() -> None:
    overlaps = [Overlap("a", "b", 100, True), Overlap("a", "c", 50, False), Overlap("b", "d", 10, True)]
    out = deduplicate(overlaps, gross={"a": 1000.0, "b": 300.0, "c": 500.0, "d": -50.0},
                      treated_units={"a": 1000, "b": 200, "c": 100, "d": 10})
    ab, ac, bd = out
    assert (ab.share_a, ab.share_b) == (0.1, 0.5)
    assert ab.deduction == min(1000 * 0.1, 300 * 0.5)  # 100: the smaller claim on the shared units
    assert ac.deduction == 0.0  # different KPIs cannot double count
    assert bd.deduction == 0.0  # d destroys value: nothing is counted twice
