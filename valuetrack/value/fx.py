"""Exchange rates by day: which rate converts a model's amounts into the reporting currency on a day.

A rate is **units of the reporting currency per 1 unit of the model's currency** (reporting USD,
model EUR, rate 1.0850: 1 EUR = 1.0850 USD). Each day uses its own rate; a day without a published
rate takes the last one published before it, for at most :data:`MAX_CARRY_DAYS` days (weekends,
holidays). Past that, or before the first rate, :class:`FxError` names the currency and the day:
a missing rate is never taken as 1.0 (docs/methods-value.md, *Currencies*; docs/decisions.md D32).

Pure: the rates come in as a frame (valuetrack/fx.py reads them from the CSV or the app database).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from valuetrack.errors import ValidationError, ValuetrackError

MAX_CARRY_DAYS = 4
"""A published rate serves the days after it for at most this many days (a long weekend)."""


class FxError(ValuetrackError):
    """No usable rate for a currency on a day (a model that needs it cannot be valued)."""

    code = "fx"


def check_rates(frame: pd.DataFrame, reporting: str, source: str) -> pd.DataFrame:
    """Refuse a rate table that would not mean what it says; return it as (date, currency, rate).

    Args:
        frame: columns ``date``, ``currency``, ``rate`` (already renamed).
        reporting: the reporting currency ([store].currency).
        source: where the rows come from, for messages (e.g. "fx_rates.csv").

    Raises:
        ValidationError naming the row and the column: a date that is not a date, a currency that is
        not a 3-letter code, a rate that is not a positive finite number, two different rates for one
        currency and day, or a rate other than 1 for the reporting currency itself (a table quoted
        the other way round, or against another currency).
    """
    problems: list[str] = []
    # ISO dates only: 05/03/2026 is the 5th of March in one country and the 3rd of May in another
    iso = frame["date"].map(lambda v: v.isoformat()[:10] if hasattr(v, "isoformat") else str(v).strip())
    out = pd.DataFrame({"date": pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce"),
                        "currency": frame["currency"].astype(str).str.strip(),
                        "rate": pd.to_numeric(frame["rate"], errors="coerce")})
    for i, row in enumerate(out.itertuples(index=False)):
        line = f"{source}: row {i + 1}"
        raw = frame.iloc[i]
        if pd.isna(row.date):
            problems.append(f"{line}: date {raw['date']!r} is not a date (YYYY-MM-DD)")
        if len(row.currency) != 3 or not row.currency.isalpha() or not row.currency.isupper():
            problems.append(f"{line}: currency {raw['currency']!r} is not a 3-letter code such as 'EUR'")
        if not (isinstance(row.rate, float) and math.isfinite(row.rate) and row.rate > 0):
            problems.append(f"{line}: rate {raw['rate']!r} must be a positive number "
                            f"({reporting} per 1 unit of the row's currency)")
        elif row.currency == reporting and not math.isclose(row.rate, 1.0, rel_tol=1e-9):
            problems.append(f"{line}: the rate of {reporting} itself is {row.rate}, not 1: rates must be {reporting} "
                            f"per 1 unit of each currency (is the table quoted the other way round, or against "
                            f"another currency?)")
        if len(problems) >= 20:
            break
    if not problems:
        out["date"] = out["date"].dt.date
        dup = out[out.duplicated(["date", "currency"], keep=False)]
        clash = dup.groupby(["date", "currency"])["rate"].nunique()
        clash = clash[clash > 1]
        if len(clash):
            (day, cur) = clash.index[0]
            problems.append(f"{source}: {cur} has different rates on {day}; keep one rate per currency and day")
    if problems:
        raise ValidationError(problems)
    return out.drop_duplicates(["date", "currency"]).sort_values(["currency", "date"]).reset_index(drop=True)


@dataclass(frozen=True)
class FxRates:
    """The dated rates of every currency, as units of ``reporting`` per 1 unit of each.

    Attributes:
        reporting: the reporting currency (its own rate is 1 every day, with no row needed).
        source: where the rates come from, named in every error.
        rates: currency → rates indexed by publication day (sorted).
    """

    reporting: str
    source: str
    rates: Mapping[str, pd.Series] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, reporting: str, source: str) -> FxRates:
        """From checked rows (:func:`check_rates`) of date, currency, rate."""
        return cls(reporting, source, {cur: pd.Series(g["rate"].to_numpy(float), index=list(g["date"]))
                                       for cur, g in frame.groupby("currency")})

    def daily(self, currency: str, start: dt.date, end: dt.date) -> np.ndarray:
        """The rate of each day of [start, end] (inclusive): the day's own, else the last one published
        at most MAX_CARRY_DAYS days before it.

        Raises:
            FxError naming the currency and the first day without a usable rate.
        """
        n = (end - start).days + 1
        if n <= 0:
            return np.ones(0)
        if currency == self.reporting:
            return np.ones(n)
        series = self.rates.get(currency)
        if series is None or not len(series):
            known = ", ".join(sorted(self.rates)) or "none"
            raise FxError(f"no {currency} rate for {start}: {self.source} has no {currency} rates (currencies in it: "
                          f"{known}); add {currency} rates ({self.reporting} per 1 {currency}), one per day")
        published = np.array(series.index, dtype="datetime64[D]")
        days = np.datetime64(start, "D") + np.arange(n)
        idx = np.searchsorted(published, days, side="right") - 1
        age = np.where(idx >= 0, (days - published[np.maximum(idx, 0)]).astype(int), 10**9)
        bad = np.flatnonzero(age > MAX_CARRY_DAYS)
        if len(bad):
            day = start + dt.timedelta(days=int(bad[0]))
            if idx[bad[0]] < 0:
                why = f"the first {currency} rate in {self.source} is of {series.index[0]}"
            else:
                last = series.index[idx[bad[0]]]
                why = (f"the last {currency} rate before it is of {last}, {(day - last).days} days earlier, and a rate "
                       f"is carried forward for at most {MAX_CARRY_DAYS} days")
            raise FxError(f"no {currency} rate for {day}: {why}; add the {currency} rate of {day} "
                          f"({self.reporting} per 1 {currency}) to {self.source}")
        return series.to_numpy(float)[idx]

    def digest(self, currency: str) -> str:
        """A hash of one currency's rates (part of the model's input hash)."""
        series = self.rates.get(currency)
        if series is None or currency == self.reporting:
            return "none"
        text = ";".join(f"{d}:{r!r}" for d, r in zip(series.index, series.to_numpy(float)))
        return hashlib.sha256(text.encode()).hexdigest()
