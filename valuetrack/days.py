"""Days as integers and calendar months, for the statistics (valuetrack.attribution), the money
(valuetrack.value) and the valuation alike: a lower layer than all, so that none imports another for it."""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

import numpy as np


def day_ordinals(days: Any) -> np.ndarray:
    """Dates as proleptic ordinals (integers: masks and searches without comparing date objects)."""
    days = list(days)
    try:  # the method itself mapped over the days (dates, datetimes, Timestamps): no generator frame
        return np.fromiter(map(dt.date.toordinal, days), dtype=np.int64, count=len(days))
    except TypeError:  # anything else with a toordinal
        return np.fromiter((d.toordinal() for d in days), dtype=np.int64, count=len(days))


def calendar_months(start: dt.date, last_day: dt.date) -> dict[str, tuple[dt.date, dt.date]]:
    """Every month (YYYY-MM) from the month of ``start`` to the month of ``last_day``: its first day
    and its last day, or ``last_day`` in the last month."""
    out, first = {}, start.replace(day=1)
    while first <= last_day:
        last = dt.date(first.year, first.month, calendar.monthrange(first.year, first.month)[1])
        out[first.strftime("%Y-%m")] = (first, min(last, last_day))
        first = last + dt.timedelta(days=1)
    return out
