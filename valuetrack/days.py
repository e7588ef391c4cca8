"""Days as integers, for the statistics (valuetrack.attribution) and the money (valuetrack.value)
alike: a lower layer than both, so that neither imports the other for it."""

from __future__ import annotations

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
