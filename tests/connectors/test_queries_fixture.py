"""Fixture data with the known traps, and an independent brute-force A/B aggregate in Python.

Shared by test_queries.py (DuckDB) and test_connectors_warehouses.py (the four warehouses).
The brute force walks units one by one with plain Python and zoneinfo; it shares no code with
valuetrack.queries.

Traps covered (unit ids in brackets):
  * local day across a time zone offset: first exposure 23:30 UTC is the next day in Paris [1]
  * the spring DST change (2025-03-30 in Europe/Paris): 22:30 UTC is 00:30 next day in CEST,
    but would be 23:30 the same day with a fixed +01:00 offset [2]; autumn change [14]
  * a crossover unit, seen in both arms [3]; a later crossover after the cohort day [13]
  * a unit with no outcome at all [4], a unit whose outcomes are all NULL [5]
  * events before exposure (CUPED x), outside the covariate window, after the window [6]
  * integer-valued outcomes whose mean is not an integer (3 and 4 → 3.5) [7]
  * events exactly at first exposure (in) and exactly at first exposure + window (out) [8]
  * an event after the as-of cutoff [9]
  * exposures of another model and of an arm that is neither treatment nor control [10]
  * a segment that changes after the first exposure (the first one counts) [12]
  * events filtered out by the where-filter (event_type = 'view') [6, 7]
plus 150 seeded random units, integer values, so every sum is exact in float64.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from zoneinfo import ZoneInfo

import pandas as pd

from valuetrack.registry.spec import ModelSpec

TZ = "Europe/Paris"
MODEL = "churn-save"
AS_OF = dt.date(2025, 11, 10)
UTC = dt.timezone.utc


def T(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s)


def make_spec(aggregation: str = "sum", *, covariate_days: int = 7, segment: bool = True, window_days: int = 10,
              where: str | None = "event_type = 'purchase'", timezone: str = TZ) -> ModelSpec:
    exposures = {"table": "exposures", "unit": "customer_id", "timestamp": "scored_at", "arm": "arm",
                 "model": "model_id", "treatment": "model", "control": "holdout", "score": "score"}
    if segment:
        exposures["segment"] = "country"
    outcomes = {"table": "outcomes", "unit": "customer_id", "timestamp": "event_at", "value": "value"}
    if where:
        outcomes["where"] = where
    return ModelSpec.from_dict({
        "name": MODEL, "display_name": "Churn save", "owner": "o@example.com", "team": "retention",
        "timezone": timezone,
        "kpi": {"name": "revenue", "unit": "USD", "value_per_unit": 1.0, "aggregation": aggregation},
        "attribution": {"method": "ab", "window_days": window_days, "outcome_lag_days": 2,
                        "covariate_days": covariate_days, "treatment_share": 0.5,
                        "exposures": exposures, "outcomes": outcomes},
    })


def make_tables(seed: int = 7) -> dict[str, pd.DataFrame]:
    """exposures(customer_id, scored_at, model_id, arm, score, country), outcomes(customer_id, event_at, event_type, value)."""
    ex: list[tuple] = []
    oc: list[tuple] = []

    def e(unit, ts, arm, country="FR", model=MODEL, score=0.5):
        ex.append((unit, T(ts), model, arm, score, country))

    def o(unit, ts, value, kind="purchase"):
        oc.append((unit, T(ts), kind, value))

    e(1, "2025-03-29 23:30", "model"); o(1, "2025-03-30 10:00", 5)
    e(2, "2025-03-30 22:30", "holdout", "DE"); o(2, "2025-03-31 09:00", 7); o(2, "2025-04-02 09:00", 1)
    e(3, "2025-03-30 12:00", "model"); e(3, "2025-03-30 13:00", "holdout"); o(3, "2025-03-31 00:00", 100)
    e(4, "2025-03-31 08:00", "model")
    e(5, "2025-03-31 09:00", "holdout"); o(5, "2025-04-01 00:00", None); o(5, "2025-04-01 01:00", None)
    e(6, "2025-04-01 12:00", "model", "DE"); o(6, "2025-03-30 12:00", 2); o(6, "2025-03-20 12:00", 50)
    o(6, "2025-04-05 12:00", 3); o(6, "2025-04-11 12:00", 9); o(6, "2025-04-02 12:00", 1000, "view")
    e(7, "2025-04-01 13:00", "holdout"); o(7, "2025-04-01 14:00", 3); o(7, "2025-04-03 14:00", 4)
    o(7, "2025-04-03 15:00", 8, "view"); o(7, "2025-03-29 15:00", 1); o(7, "2025-03-29 16:00", None)
    e(8, "2025-04-02 10:00", "model"); e(8, "2025-04-03 10:00", "model")
    o(8, "2025-04-02 10:00", 11); o(8, "2025-04-12 10:00", 13)
    e(9, "2025-11-08 10:00", "holdout"); o(9, "2025-11-09 10:00", 2); o(9, "2025-11-10 23:30", 40)
    e(10, "2025-04-02 11:00", "model", model="other-model"); e(10, "2025-04-02 12:00", "shadow"); o(10, "2025-04-02 13:00", 6)
    e(12, "2025-04-03 10:00", "model", "FR"); e(12, "2025-04-04 10:00", "model", "DE"); o(12, "2025-04-05 10:00", 2)
    e(13, "2025-04-03 11:00", "holdout"); e(13, "2025-06-01 11:00", "model"); o(13, "2025-04-04 11:00", 5)
    e(14, "2025-10-25 22:30", "model"); e(14, "2025-10-26 23:30", "model"); o(14, "2025-10-27 10:00", 4)

    rng = random.Random(seed)
    start = T("2025-03-25 00:00")
    for unit in range(100, 250):
        arm = rng.choice(["model", "holdout"])
        first = start + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 40))
        country = rng.choice(["FR", "DE", "ES"])
        for k in range(rng.randint(1, 3)):
            ex.append((unit, first + dt.timedelta(hours=7 * k), MODEL, arm, round(rng.random(), 3), country))
        if rng.random() < 0.05:
            ex.append((unit, first + dt.timedelta(days=2), MODEL, "holdout" if arm == "model" else "model", 0.1, country))
        for _ in range(rng.choice([0, 0, 1, 2, 4])):
            ts = first + dt.timedelta(minutes=rng.randrange(-60 * 24 * 12, 60 * 24 * 14))
            value = None if rng.random() < 0.08 else rng.randint(0, 9)
            oc.append((unit, ts, rng.choice(["purchase", "purchase", "view"]), value))

    exposures = pd.DataFrame(ex, columns=["customer_id", "scored_at", "model_id", "arm", "score", "country"])
    outcomes = pd.DataFrame(oc, columns=["customer_id", "event_at", "event_type", "value"])
    outcomes["value"] = outcomes["value"].astype("Int64")
    exposures["customer_id"] = exposures["customer_id"].astype("int64")
    outcomes["customer_id"] = outcomes["customer_id"].astype("int64")
    return {"exposures": exposures, "outcomes": outcomes}


def _local_midnight_utc(day: dt.date, tz: str) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC).replace(tzinfo=None)


def brute_force(spec: ModelSpec, tables: dict[str, pd.DataFrame], *, cohort_start: dt.date, cohort_end: dt.date,
                as_of: dt.date) -> tuple[dict, dict]:
    """Return ({(day, arm[, segment]): stats}, {(day[, segment]): n_crossover}) computed unit by unit."""
    a = spec.attribution
    src, out = a.exposures, a.outcomes
    tz = ZoneInfo(spec.timezone)
    cutoff = _local_midnight_utc(as_of + dt.timedelta(days=1), spec.timezone)
    c_from = _local_midnight_utc(cohort_start, spec.timezone)
    c_to = _local_midnight_utc(min(cohort_end, as_of) + dt.timedelta(days=1), spec.timezone)
    units: dict = {}
    for row in tables["exposures"].itertuples(index=False):
        if row.model_id != MODEL or row.arm not in (src.treatment, src.control) or row.scored_at >= cutoff:
            continue
        ts = row.scored_at.to_pydatetime() if hasattr(row.scored_at, "to_pydatetime") else row.scored_at
        u = units.setdefault(row.customer_id, {"first": ts, "arms": set(), "segment": row.country})
        u["arms"].add(row.arm)
        if ts < u["first"]:
            u["first"], u["segment"] = ts, row.country
    events: dict = {}
    for row in tables["outcomes"].itertuples(index=False):
        if spec.attribution.outcomes.where and row.event_type != "purchase":
            continue
        ts = row.event_at.to_pydatetime() if hasattr(row.event_at, "to_pydatetime") else row.event_at
        v = None if row.value is None or row.value is pd.NA or (isinstance(row.value, float) and math.isnan(row.value)) else int(row.value)
        events.setdefault(row.customer_id, []).append((ts, v))

    def kpi(evts: list) -> float | None:
        values = [v for _, v in evts if v is not None]
        if spec.kpi.aggregation == "sum":
            return float(sum(values))
        if spec.kpi.aggregation == "conversion":
            return 1.0 if evts else 0.0
        return (sum(values) / len(values)) if values else None

    stats: dict = {}
    cross: dict = {}
    for unit, u in units.items():
        first = u["first"]
        if not c_from <= first < c_to:
            continue
        day = first.replace(tzinfo=UTC).astimezone(tz).date()
        seg = (u["segment"],) if src.segment else ()
        if len(u["arms"]) > 1:
            cross[(day, *seg)] = cross.get((day, *seg), 0) + 1
            continue
        arm = next(iter(u["arms"]))
        mine = events.get(unit, [])
        y_ev = [(t, v) for t, v in mine if first <= t < first + dt.timedelta(days=a.window_days) and t < cutoff]
        y = kpi(y_ev)
        key = (day, arm, *seg)
        s = stats.setdefault(key, {"n": 0, "n_units": 0, "sum_y": 0.0, "sum_y2": 0.0, "sum_x": 0.0, "sum_x2": 0.0, "sum_xy": 0.0})
        s["n_units"] += 1
        if y is None:
            continue
        if a.covariate_days:
            x_ev = [(t, v) for t, v in mine if first - dt.timedelta(days=a.covariate_days) <= t < first]
            x = kpi(x_ev)
            x = 0.0 if x is None else x
        else:
            x = 0.0
        s["n"] += 1
        s["sum_y"] += y
        s["sum_y2"] += y * y
        s["sum_x"] += x
        s["sum_x2"] += x * x
        s["sum_xy"] += x * y
    return stats, cross


def frame_to_dicts(ab: pd.DataFrame, xo: pd.DataFrame, segment: bool) -> tuple[dict, dict]:
    """An (ab, crossovers) pair as returned by split_crossovers → the brute force's dict shape."""
    stats = {}
    for r in ab.to_dict("records"):
        key = (r["day"], r["arm"], *([r["segment"]] if segment else []))
        stats[key] = {k: (int(r[k]) if k in ("n", "n_units") else (0.0 if r[k] is None or r[k] != r[k] else float(r[k])))
                      for k in ("n", "n_units", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")}
    cross = {}
    for r in xo.to_dict("records"):
        cross[(r["day"], *([r["segment"]] if segment else []))] = int(r["n_crossover"])
    return stats, cross


def assert_same(got: dict, want: dict, *, exact: bool = True) -> None:
    assert set(got) == set(want), f"keys differ: only got {set(got) - set(want)}, only want {set(want) - set(got)}"
    for key in want:
        for stat, w in want[key].items():
            g = got[key][stat]
            if exact:
                assert g == w, f"{key} {stat}: got {g}, want {w}"
            else:
                assert math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-9), f"{key} {stat}: got {g}, want {w}"


def test_brute_force_sees_the_traps():
    spec = make_spec("sum")
    stats, cross = brute_force(spec, make_tables(), cohort_start=dt.date(2025, 3, 29), cohort_end=AS_OF, as_of=AS_OF)
    days = {k[0] for k in stats}
    assert dt.date(2025, 3, 30) in days and dt.date(2025, 3, 31) in days  # units 1 and 2 (time zone, DST)
    assert cross  # unit 3, 13 and random crossovers
