"""``valuetrack attribute ts``: a table with a date column → a time-series effect (structural or
ITS). Its own module so that the methods (timeseries.py, its.py) do not import each other."""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from valuetrack.attribution.its import fit_its
from valuetrack.attribution.timeseries import TSConfig, TSResult, fit_structural
from valuetrack.errors import ParameterError, ValidationError


def attribute_ts_frame(
    frame: pd.DataFrame,
    *,
    date_col: str,
    metric: str,
    intervention: Any,
    controls: Sequence[str] = (),
    method: str = "structural",
    alpha: float = 0.05,
    seed: int = 0,
) -> TSResult:
    """The ``valuetrack attribute ts`` entry point: a table with a date column → TSResult.

    Raises:
        ValidationError: a named column is missing or not numeric, dates do not parse, or the
            intervention is outside the data.
        ParameterError: unknown method or alpha outside (0, 1).
    """
    from valuetrack.io import numeric_column, require_columns

    if method not in ("structural", "its"):
        raise ParameterError(f"--method must be 'structural' or 'its'; got {method!r}")
    if not 0 < alpha < 1:
        raise ParameterError(f"--alpha must be in (0, 1); got {alpha}")
    controls = tuple(c for c in controls if c)
    require_columns(frame, [("--date-col", date_col), ("--metric", metric)] + [("--controls", c) for c in controls])
    if metric in controls:
        raise ValidationError(f"--controls: {metric!r} is the metric itself")
    try:
        dates = pd.to_datetime(frame[date_col])
    except Exception:
        raise ValidationError(f"--date-col: column {date_col!r} does not hold dates") from None
    if dates.isna().any():
        row = int(dates.isna().to_numpy().nonzero()[0][0])
        raise ValidationError(f"--date-col: row {row + 1} of {date_col!r} is not a date")
    data = pd.DataFrame({metric: numeric_column(frame, "--metric", metric)})
    for c in controls:
        data[c] = numeric_column(frame, "--controls", c)
    data.index = pd.DatetimeIndex(dates)
    try:
        start = pd.Timestamp(intervention)
    except Exception:
        raise ValidationError(f"--intervention: {intervention!r} is not a date") from None
    if method == "its":
        return fit_its(data, intervention=start, metric=metric, alpha=alpha)
    return fit_structural(data, intervention=start, controls=controls, metric=metric,
                          config=TSConfig(alpha=alpha, seed=seed))
