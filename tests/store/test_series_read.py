"""A model's stored series points, pivoted to the wide frame a valuation reads."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pandas as pd

from valuetrack.store.aggregates import _pivot


def _points(n_days: int = 40, names=("control_0", "control_1", "value")) -> list[tuple]:
    rng = random.Random(3)
    start = dt.date(2026, 1, 1)
    return [((start + dt.timedelta(days=d)).isoformat(), name, round(rng.uniform(-50, 900), 1))
            for d in range(n_days) for name in names]


def _pandas(rows: list[tuple]) -> pd.DataFrame:
    """The reference: pandas' own pivot of the long rows."""
    long = pd.DataFrame(rows, columns=["day", "series", "value"])
    long["day"] = [dt.date.fromisoformat(d) for d in long["day"]]
    wide = long.pivot(index="day", columns="series", values="value").reset_index()
    wide.columns.name = None
    return wide.sort_values("day").reset_index(drop=True)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns) and list(a["day"]) == list(b["day"])
    for c in a.columns[1:]:
        assert np.array_equal(a[c].to_numpy(float), b[c].to_numpy(float), equal_nan=True), c


def test_pivot_is_pandas_pivot_in_stored_order_shuffled_with_gaps_and_nulls():
    rows = _points()
    _same(_pivot(rows), _pandas(rows))  # as stored: day by day, series in order
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    _same(_pivot(shuffled), _pandas(shuffled))
    by_series = sorted(rows, key=lambda r: (r[1], r[0]))
    _same(_pivot(by_series), _pandas(by_series))
    gappy = rows[:7] + rows[8:]  # one point missing: NaN there
    _same(_pivot(gappy), _pandas(gappy))
    nulls = [(d, s, None if i % 11 == 0 else v) for i, (d, s, v) in enumerate(rows)]
    _same(_pivot(nulls), _pandas(nulls))
    one_series = _points(names=("value",))
    _same(_pivot(one_series), _pandas(one_series))
    twice = rows + rows[-1:]  # a point twice: pandas decides (it refuses)
    assert _pivot(twice) is None
