"""Cost from the bill: a model's billed cost per day, and which days of it have settled.

The warehouse sums the bill per UTC day (and currency) with
:func:`valuetrack.queries.billed_cost_query`; the refresh stores those sums as they are (units of
``amount``: money, or Snowflake credits). Here they become money: × ``price_per_unit`` × ``share``
(so editing either needs no refresh). Bills are revised for days after the fact, so a day's billed
cost replaces the manifest's running-cost estimate only once it is older than ``settle_days`` and
the bill has reached it; later days keep the estimate (docs/methods-value.md, D40, D41). The daily
cost series (valuetrack.value.roi.daily_money) is the one place that substitutes them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from valuetrack.errors import ValidationError
from valuetrack.registry.spec import CostSource


@dataclass(frozen=True)
class BilledCost:
    """A model's billed cost in money per day, and the days that have settled.

    Attributes:
        by_day: money per day (date index, sorted) over every day the bill holds for the model.
        settled_from: the first day in the bill (earlier days keep the estimate: the bill does not
            reach them, e.g. an export switched on after the launch).
        settled_through: the last day whose billed cost is used: the earlier of (as-of − 1 −
            ``settle_days``) and the last day in the bill; None when no day has settled.
        currency: the bill's currency.
    """

    by_day: pd.Series
    settled_from: dt.date | None
    settled_through: dt.date | None
    currency: str

    def settled_mask(self, days: pd.Index) -> np.ndarray:
        """True for the ``days`` whose billed cost is used."""
        if self.settled_through is None or not len(days):
            return np.zeros(len(days), dtype=bool)
        return np.array([self.settled_from <= d <= self.settled_through for d in days], dtype=bool)

    def on(self, days: pd.Index) -> np.ndarray:
        """Billed money on each of ``days`` (0 where the bill holds no row: nothing was billed)."""
        if not len(days):
            return np.zeros(0)
        return self.by_day.reindex(days).fillna(0.0).to_numpy(dtype=float)


def billed_cost(frame: pd.DataFrame, source: CostSource, *, as_of: dt.date, currency: str,
                model: str = "") -> BilledCost:
    """Turn the stored per-day sums of the bill (``day``, ``currency``, ``amount``) into money.

    Args:
        frame: the stored billed sums (``currency`` may be absent: then ``source.currency``).
        source: the model's ``[cost_source]``.
        as_of: the valuation's as-of date (days from ``as_of - settle_days`` on are not settled).
        currency: the currency the model's figures are in.
        model: the model's name, for messages.

    Raises:
        ValidationError: the bill is in another currency than ``currency``, naming it and the day.
    """
    if frame is None or not len(frame):
        return BilledCost(pd.Series([], dtype=float, index=pd.Index([], dtype="object")), None, None, currency)
    frame = frame.copy()
    if "currency" not in frame.columns or source.currency is not None:
        frame["currency"] = source.currency
    missing = frame[frame["currency"].isna() | (frame["currency"].astype(str).str.strip() == "")]
    if len(missing):
        where = f"model {model!r}: " if model else ""
        raise ValidationError(
            f"{where}cost_source.currency_column: bill rows of {sorted(missing['day'])[0]} have no currency; fill the "
            f"column {source.currency_column!r}, or give the bill's currency as cost_source.currency")
    other = frame[frame["currency"] != currency]
    if len(other):
        first = other.sort_values("day").iloc[0]
        where = f"model {model!r}: " if model else ""
        raise ValidationError(
            f"{where}cost_source: the bill is in {first['currency']} on {first['day']} but the model's figures are in "
            f"{currency}; bill rows in another currency cannot be added to its cost. Narrow cost_source.where to "
            f"rows in {currency}, or report the model in {first['currency']}.")
    factor = float(source.price_per_unit) * float(source.share)
    by_day = (frame.groupby("day")["amount"].sum().astype(float) * factor).sort_index()
    last_billed = by_day.index[-1]
    settled = min(as_of - dt.timedelta(days=1 + source.settle_days), last_billed)
    first_billed = by_day.index[0]
    if settled < first_billed:
        return BilledCost(by_day, None, None, currency)
    return BilledCost(by_day, first_billed, settled, currency)


def summary(days: pd.Index, billed: np.ndarray, settled: np.ndarray, estimate: np.ndarray) -> dict[str, Any]:
    """How a period's running cost splits between the bill and the estimate, for the labels shown
    beside the cost (arrays over the period's ``days``): ``billed`` (the settled billed cost used),
    ``estimated`` (the estimate used on the other days), ``estimate_on_billed_days`` (what the
    estimate said for the billed days), ``billed_days``, ``estimated_days``, and the first and last
    billed day used (``settled_from``, ``settled_through``; None when no day of the period has settled)."""
    used = [d for d, s in zip(days, settled) if s]
    return {"billed": float(np.sum(billed[settled])), "estimated": float(np.sum(estimate[~settled])),
            "estimate_on_billed_days": float(np.sum(estimate[settled])), "billed_days": int(settled.sum()),
            "estimated_days": int((~settled).sum()), "settled_from": used[0] if used else None,
            "settled_through": used[-1] if used else None}


def share_problems(specs: Any) -> list[str]:
    """Models reading the same bill rows (same connection, table, where and label) whose shares add
    up to more than 1: together they would be charged more than the bill (D41). Retired models count
    too (their share of the past stays); ``specs`` is the whole registry as it would be after an edit."""
    groups: dict[tuple, list[Any]] = {}
    for spec in specs:
        cs = spec.cost_source
        if cs is None:
            continue
        label = (cs.labels, cs.label_key, cs.label_value or spec.name) if cs.labels else None
        key = (spec.connection, cs.table.lower(), " ".join((cs.where or "").split()), label)
        groups.setdefault(key, []).append(spec)
    problems = []
    for (connection, table, where, _), members in groups.items():
        total = sum(s.cost_source.share for s in members)
        if total > 1.0 + 1e-9:
            names = ", ".join(f"{s.name} ({s.cost_source.share:g})" for s in sorted(members, key=lambda s: s.name))
            rows = f"{table}" + (f" where {where}" if where else "")
            problems.append(f"model {members[-1].name!r}.cost_source.share: the models reading the same bill rows "
                            f"({rows} on connection {connection!r}) have shares adding up to {total:g}: {names}. "
                            "Lower them so they add up to at most 1.")
    return problems
