"""What a model's notes do to its figures (docs/methods-value.md, "Excluded windows and overrides").

* **Excluded windows** (D36) are taken out of the data before the method sees it: an A/B model's
  cohorts first exposed on an excluded day are dropped from both arms; a daily series' KPI (and a
  panel's units) are missing on those days, before and after the launch alike (control series are
  kept: they are not the model's measurement). No value is claimed for excluded days (the treated
  units of an excluded cohort count for nothing, an excluded day adds no gap); their cost still
  counts, since the model ran. The estimate with and without the exclusions is kept side by side.
* **Overrides** (D37) adjust only the reported (adjusted) figure: a fixed amount counts on its day; a
  share counts that share of the estimated gross value of the days it covers (the rest is taken
  away). Statistics, intervals, flags and payback use the unadjusted figures.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from valuetrack.attribution.methods.panel import UNIT_PREFIX


def exclusion_windows(notes: Iterable[Any]) -> list[tuple[dt.date, dt.date]]:
    """The (first, last) day of every active excluded window, in date order."""
    return sorted((n.start, n.end) for n in notes if n.kind == "exclusion" and n.active)


def excluded_mask(days: Any, windows: Sequence[tuple[dt.date, dt.date]]) -> np.ndarray:
    """True for each day inside any window (days: dates or timestamps)."""
    d = pd.to_datetime(pd.Series(list(days))).dt.normalize().to_numpy()
    out = np.zeros(len(d), dtype=bool)
    for start, end in windows:
        out |= (d >= np.datetime64(start)) & (d <= np.datetime64(end))
    return out


def exclude_days(data: Any, windows: Sequence[tuple[dt.date, dt.date]]) -> Any:
    """The model's stored aggregates with the excluded days taken out of attribution (see above).

    ``data`` is value/portfolio's ``_ModelData``; exposures per day (health, per-prediction cost)
    and a classifier's decisions are left as they are.
    """
    if not windows:
        return data
    changes: dict[str, Any] = {}
    ab = data.ab
    if len(ab):
        changes["ab"] = ab[~excluded_mask(ab["day"], windows)].reset_index(drop=True)
        changes["first_day"] = min(ab["day"])
    series = data.series
    if series is not None and len(series) and "day" in series.columns:
        series = series.copy()
        hit = excluded_mask(series["day"], windows)
        measured = [c for c in series.columns if c == "value" or str(c).startswith(UNIT_PREFIX)]
        series.loc[hit, measured] = np.nan
        changes["series"] = series
    return dataclasses.replace(data, **changes)


def excluded_days(windows: Sequence[tuple[dt.date, dt.date]], first: dt.date | None, last: dt.date) -> int:
    """Days of the union of the windows that fall in [first, last]."""
    if first is None or not windows:
        return 0
    days = set()
    for start, end in windows:
        d = max(start, first)
        while d <= min(end, last):
            days.add(d)
            d += dt.timedelta(days=1)
    return len(days)


def comparison(with_excl: Any, without: Any, alpha: float, windows: Sequence[tuple[dt.date, dt.date]],
               notes: Iterable[Any], first: dt.date | None, last: dt.date) -> dict[str, Any]:
    """The estimate and its interval with the excluded windows (as valued) and without them.

    ``with_excl`` / ``without``: (Effect, ModelValue of the same period unadjusted) pairs.
    """
    z = float(stats.norm.ppf(1 - alpha / 2))

    def side(effect: Any, value: Any) -> dict[str, Any]:
        e, se = effect.per_unit, effect.per_unit_se
        ci = [e - z * se, e + z * se] if e is not None and se is not None else (effect.details or {}).get("ci_avg")
        gross, gse = value.gross, value.gross_se
        return {"effect": e, "effect_se": se, "effect_ci": list(ci) if ci else None, "p_value": effect.p_value,
                "trusted": effect.trusted, "gross": gross, "gross_se": gse,
                "ci_gross": [gross - z * gse, gross + z * gse] if gross is not None and gse is not None else None,
                "net": value.net, "ci_net": list(value.ci_net) if value.ci_net else None,
                "treated_units": value.treated_units}

    w, wo = side(*with_excl), side(*without)
    shift = None
    if w["effect"] is not None and wo["effect"] is not None and w["effect_se"]:
        shift = (wo["effect"] - w["effect"]) / w["effect_se"]  # how far the unexcluded estimate sits, in SE
    elif w["gross"] is not None and wo["gross"] is not None and w["gross_se"]:
        shift = (wo["gross"] - w["gross"]) / w["gross_se"]
    return {"windows": [{"id": n.id, "start": n.start, "end": n.end, "text": n.text, "by": n.created_by}
                        for n in notes if n.kind == "exclusion" and n.active],
            "days": excluded_days(windows, first, last), "with": w, "without": wo, "shift_se": shift}


def adjustment(notes: Iterable[Any], start: dt.date, end: dt.date,
               gross_between: Callable[[dt.date, dt.date], float | None]) -> tuple[float, list[dict[str, Any]]]:
    """The overrides' adjustment to [start, end] and each override's part of it.

    An amount counts when its day lies in the period. A share ``s`` over [from, to] adds
    (s − 1) × the gross value of the days of [from, to] inside the period (``gross_between``).
    """
    total, rows = 0.0, []
    for n in notes:
        if n.kind != "override" or not n.active:
            continue
        if n.category == "amount":
            if n.start is None or not start <= n.start <= end:
                continue
            part = float(n.amount)
        else:
            lo, hi = max(start, n.start or start), min(end, n.end or end)
            if hi < lo:
                continue
            gross = gross_between(lo, hi)
            part = (float(n.amount) - 1.0) * float(gross or 0.0)
        total += part
        rows.append({"id": n.id, "category": n.category, "amount": n.amount, "start": n.start, "end": n.end,
                     "text": n.text, "by": n.created_by, "at": n.created_at, "effect": part})
    return total, rows


def adjusted(net: float | None, cost: float, total: float, rows: list[dict[str, Any]]) -> float | None:
    """The adjusted net value: the net value plus the overrides' adjustment (with no estimate, the
    cost alone plus the adjustment once any override counts)."""
    if net is not None:
        return net + total
    return -cost + total if rows else None

