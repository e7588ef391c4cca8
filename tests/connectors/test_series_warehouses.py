"""The daily KPI series and its control series (``series_query``) from DuckDB, Snowflake
(fakesnow), BigQuery (emulator) and Athena (moto + DuckDB), through the real drivers and dialects:
the same days and the same values on every warehouse."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from tests.connectors.standins import connector_for
from valuetrack.queries import series_query
from valuetrack.refresh_pull import normalize_days
from valuetrack.registry.spec import ModelSpec

FIRST = dt.date(2025, 2, 20)
DAYS = 20
START, END = dt.date(2025, 2, 25), dt.date(2025, 3, 5)  # inclusive; crosses a month end


def _table() -> pd.DataFrame:
    days = [FIRST + dt.timedelta(days=i) for i in range(DAYS)]
    orders = pd.array([100 + 3 * i for i in range(DAYS)], dtype="Int64")
    orders[8] = pd.NA  # a missing KPI value inside the range (2025-02-28)
    return pd.DataFrame({
        "kpi_date": days,
        "orders": orders,                                             # integer KPI → 64-bit float
        "orders_b": [50.25 + 1.5 * i for i in range(DAYS)],           # float control
        "visits_c": pd.array([1000 - 7 * i for i in range(DAYS)], dtype="Int64"),  # integer control
        "note": ["x"] * DAYS,                                         # a column the query must not read
    })


@pytest.fixture
def warehouse_tables() -> dict[str, pd.DataFrame]:
    """A daily KPI table with two control series (DATE day column, integer and float values)."""
    return {"daily_kpis": _table()}


def _spec() -> ModelSpec:
    return ModelSpec.from_dict({
        "name": "orders-forecast", "display_name": "Orders forecast", "owner": "o@example.com", "team": "t",
        "kpi": {"name": "orders", "unit": "count", "value_per_unit": 2.0},
        "interventions": [{"start": dt.date(2025, 3, 1)}],
        "attribution": {"method": "structural", "series": {
            "table": "daily_kpis", "date": "kpi_date", "value": "orders", "controls": ["orders_b", "visits_c"]}},
    })


def _expected() -> pd.DataFrame:
    t = _table()
    t = t[(t.kpi_date >= START) & (t.kpi_date <= END)]
    return pd.DataFrame({
        "day": list(t.kpi_date),
        "value": [float("nan") if v is pd.NA else float(v) for v in t.orders],
        "orders_b": [float(v) for v in t.orders_b],
        "visits_c": [float(v) for v in t.visits_c],
    })


def _floats(values) -> list[float]:
    return [float("nan") if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values]


def test_series_on_every_warehouse(warehouse_engine):
    connector = connector_for(warehouse_engine)
    spec = _spec()
    res = connector.run(series_query(spec, START, END, dialect_ops=connector.ops), model=spec.name, purpose="series",
                        timeout_s=120)
    got = normalize_days(res.frame)
    want = _expected()
    assert [c.lower() for c in got.columns] == ["day", "value", "orders_b", "visits_c"]
    got.columns = [c.lower() for c in got.columns]
    # every day of the range, both ends included, in order, as dates
    assert list(got["day"]) == list(want["day"])
    assert all(type(d) is dt.date for d in got["day"])
    for col in ("value", "orders_b", "visits_c"):
        g, w = _floats(got[col]), _floats(want[col])
        assert [math.isnan(v) for v in g] == [math.isnan(v) for v in w], col  # the NULL stays NULL
        assert all(math.isnan(a) or a == pytest.approx(b, rel=1e-12) for a, b in zip(g, w)), col
    assert res.attempts == 1


def test_series_single_day_and_empty_range(warehouse_engine):
    connector = connector_for(warehouse_engine)
    spec = _spec()
    one = normalize_days(connector.run(series_query(spec, END, END, dialect_ops=connector.ops),
                                       model=spec.name, purpose="series").frame)
    assert list(one["day"]) == [END]
    assert _floats(one.iloc[:, 1]) == [float(100 + 3 * (END - FIRST).days)]
    later = FIRST + dt.timedelta(days=DAYS + 10)
    none = connector.run(series_query(spec, later, later, dialect_ops=connector.ops), model=spec.name,
                         purpose="series").frame
    assert len(none) == 0


def test_models_reading_one_table_share_one_series_query(warehouse_engine):
    """Two models whose series live in the same table (one's KPI is the other's control) are read
    by one query: each gets exactly the frame its own query gives, and a share of that query's cost."""
    from valuetrack.refresh_pull import pull_model, pull_models

    connector = connector_for(warehouse_engine)
    first = _spec()
    second = ModelSpec.from_dict({**first.to_dict(), "name": "visits-forecast", "attribution": {
        "method": "structural", "series": {"table": "daily_kpis", "date": "kpi_date", "value": "visits_c",
                                           "controls": ["orders_b"]}}})
    specs = [first, second]
    batched = pull_models(specs, connector, as_of=END, since_days={s.name: START for s in specs},
                          bin_edges={s.name: None for s in specs}, timeout_s=120)
    for spec in specs:
        alone = pull_model(spec, connector, as_of=END, since_day=START, timeout_s=120)
        got = batched[spec.name]
        assert not isinstance(got, Exception), got
        pd.testing.assert_frame_equal(got.series, alone.series)
        assert [c["purpose"] for c in got.costs] == ["series"] and got.costs[0]["batch"] == 2
    assert batched[first.name].costs[0]["query_id"] == batched[second.name].costs[0]["query_id"]
    assert list(batched[second.name].series.columns) == ["day", "value", "orders_b"]
