"""Exchange rates from a warehouse table (``[fx]`` connection + table; ``fx_rates_query``) on DuckDB,
Snowflake (fakesnow), BigQuery (emulator) and Athena (moto + DuckDB), through the real drivers and
dialects: only the asked currencies and the days before the as-of date leave the warehouse, dates
come back as dates and rates as floats, and the rows pass the same checks as a CSV's."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from tests.connectors.standins import connector_for
from valuetrack.queries import fx_rates_query
from valuetrack.value.fx import FxRates, check_rates

FIRST = dt.date(2026, 3, 2)  # a Monday
AS_OF = dt.date(2026, 3, 12)


def _table() -> pd.DataFrame:
    rows = []
    for i in range(12):
        day = FIRST + dt.timedelta(days=i)
        if day.weekday() >= 5:  # no rates on weekends
            continue
        rows.append({"rate_day": day, "ccy": "EUR", "usd_per_unit": 1.08 + 0.01 * i, "source": "ecb"})
        rows.append({"rate_day": day, "ccy": "GBP", "usd_per_unit": 1.27, "source": "ecb"})
    return pd.DataFrame(rows)


@pytest.fixture
def warehouse_tables() -> dict[str, pd.DataFrame]:
    return {"fx_daily": _table()}


def test_fx_rates_on_every_warehouse(warehouse_engine):
    connector = connector_for(warehouse_engine)
    query = fx_rates_query("fx_daily", "rate_day", "ccy", "usd_per_unit", ["EUR"], AS_OF - dt.timedelta(days=1),
                           dialect_ops=connector.ops)
    frame = connector.run(query, model="fx-rates", purpose="fx", timeout_s=120).frame
    frame.columns = [c.lower() for c in frame.columns]
    rows = check_rates(frame, "USD", "fx_daily")
    want = _table()
    want = want[(want.ccy == "EUR") & (want.rate_day < AS_OF)]
    assert set(rows["currency"]) == {"EUR"}  # GBP stayed in the warehouse
    assert list(rows["date"]) == list(want["rate_day"]) and all(type(d) is dt.date for d in rows["date"])
    assert [round(r, 10) for r in rows["rate"]] == [round(r, 10) for r in want["usd_per_unit"]]
    # the weekend of 7-8 March takes Friday's rate; the day after the last row is carried too
    fx = FxRates.from_frame(rows, "USD", "fx_daily")
    daily = fx.daily("EUR", dt.date(2026, 3, 6), dt.date(2026, 3, 9))
    assert [round(r, 10) for r in daily] == [1.12, 1.12, 1.12, 1.15]
