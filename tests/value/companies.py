"""Seeded companies with one model per attribution method and known true values (numpy, fast).

``build_companies(path, seeds, as_of)`` writes one DuckDB warehouse holding every company's tables
(prefixed ``c<seed>_``) and returns the manifest registering all their models plus each model's
true gross value to date (KPI units × value per unit 1.0). Shapes, per company:

* ``ab``: one exposure per customer (90 % served), one outcome a day later; a constant effect per
  served customer;
* ``structural``: a KPI series = 40 + x1 + 0.5·x2 + noise, x1 and x2 random-walk control series; a
  constant daily effect after the launch;
* ``its``: a trend + weekday pattern + noise; a constant daily effect after the launch;
* ``did`` and ``auto`` (which has only a panel, so chooses did): 10 regions with region and day
  effects + noise; 2 treated regions, a constant effect per treated region and day;
* ``synthetic_control``: 10 regions mixing two common factors; the treated region's mix is an
  average of controls' (inside their convex hull); a constant effect per day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

METHODS = ("ab", "structural", "its", "did", "synthetic_control", "auto")
HISTORY_DAYS = 180
POST_DAYS = 90
MONTHLY_COST = 30.0


@dataclass(frozen=True)
class Company:
    seed: int
    truth: dict[str, float]
    """model name → true gross value to date (money)."""


def model_name(seed: int, method: str) -> str:
    return f"c{seed:02d}-{method.replace('_', '-')}"


def _days(as_of: dt.date) -> pd.DatetimeIndex:
    return pd.date_range(as_of - dt.timedelta(days=HISTORY_DAYS), periods=HISTORY_DAYS, freq="D")


def _panel(rng: np.random.Generator, days: pd.DatetimeIndex, launch: dt.date, *, synth: bool) -> tuple[pd.DataFrame, list[str], float]:
    n_units, n = 10, len(days)
    units = [f"r{i:02d}" for i in range(n_units)]
    post = np.asarray(days >= pd.Timestamp(launch))
    if synth:
        f = np.cumsum(rng.normal(0, 1, (2, n)), axis=1)
        load = rng.uniform(0.5, 2.0, (n_units, 2))
        load[0] = load[1:5].mean(axis=0)  # the treated unit is a mix of controls
        base = rng.uniform(80, 120, n_units)
        base[0] = base[1:5].mean()
        y = base[:, None] + load @ f + rng.normal(0, 1.0, (n_units, n))
        treated = [units[0]]
        effect = float(rng.uniform(1.0, 3.0))
    else:
        y = rng.uniform(50, 150, n_units)[:, None] + np.cumsum(rng.normal(0, 1, n))[None, :] + rng.normal(0, 2.0, (n_units, n))
        treated = units[:2]
        effect = float(rng.uniform(0.5, 2.0))
    for i, u in enumerate(units):
        if u in treated:
            y[i, post] += effect
    frame = pd.DataFrame({"region": np.repeat(units, n), "day": np.tile(days.date, n_units), "orders": y.ravel().round(4)})
    truth = effect * len(treated) * int(post.sum())
    return frame, treated, truth


def build_company(con: object, seed: int, as_of: dt.date) -> tuple[str, Company]:
    """Write company ``seed``'s tables through DuckDB connection ``con``; return its manifest text."""
    rng = np.random.default_rng(seed)
    days = _days(as_of)
    launch = as_of - dt.timedelta(days=POST_DAYS)
    post = np.asarray(days >= pd.Timestamp(launch))
    p = f"c{seed:02d}_"
    truth: dict[str, float] = {}

    # ab: customers first scored on a day of the last 120 days, 90 % served
    n = 6000
    first = rng.integers(1, 121, n)
    served = rng.random(n) < 0.9
    delta = float(rng.uniform(0.2, 0.6))
    ts = pd.Timestamp(as_of) - pd.to_timedelta(first, unit="D") + pd.Timedelta(hours=10)
    y = rng.gamma(2.0, 5.0, n) + delta * served
    exposures = pd.DataFrame({"customer_id": np.arange(n), "scored_at": ts, "arm": np.where(served, "model", "holdout")})
    outcomes = pd.DataFrame({"customer_id": np.arange(n), "event_at": ts + pd.Timedelta(days=1), "value": y.round(4)})
    truth[model_name(seed, "ab")] = delta * int(served.sum())

    # structural: KPI = 40 + x1 + 0.5 x2 + noise (+ effect after launch)
    x1 = 100 + np.cumsum(rng.normal(0, 1, len(days)))
    x2 = 60 + np.cumsum(rng.normal(0, 1, len(days)))
    eff_s = float(rng.uniform(3, 6))
    kpi = 40 + x1 + 0.5 * x2 + rng.normal(0, 1.0, len(days)) + eff_s * post
    truth[model_name(seed, "structural")] = eff_s * int(post.sum())
    # its: trend + weekday pattern + noise (+ effect after launch)
    t = np.arange(len(days))
    eff_i = float(rng.uniform(4, 8))
    its = 200 + 0.05 * t + np.array([0, 1, 2, 1, 0, -3, -4])[days.day_of_week] + rng.normal(0, 2.0, len(days)) + eff_i * post
    truth[model_name(seed, "its")] = eff_i * int(post.sum())
    daily = pd.DataFrame({"day": days.date, "kpi": kpi.round(4), "x1": x1.round(4), "x2": x2.round(4), "its_kpi": its.round(4)})

    did, did_treated, truth[model_name(seed, "did")] = _panel(rng, days, launch, synth=False)
    auto, auto_treated, truth[model_name(seed, "auto")] = _panel(rng, days, launch, synth=False)
    synth, synth_treated, truth[model_name(seed, "synthetic_control")] = _panel(rng, days, launch, synth=True)

    for name, frame in (("exposures", exposures), ("outcomes", outcomes), ("daily", daily), ("did", did),
                        ("auto", auto), ("synth", synth)):
        con.register("frame", frame)
        con.execute(f"CREATE OR REPLACE TABLE {p}{name} AS SELECT * FROM frame")
        con.unregister("frame")

    def entry(method: str, attribution: str, interventions: bool = True) -> str:
        iv = f"\n[[models.interventions]]\nstart = {launch.isoformat()}\nlabel = \"launch\"\n" if interventions else ""
        return (f'\n[[models]]\nname = "{model_name(seed, method)}"\ndisplay_name = "Company {seed} {method}"\n'
                f'owner = "owner@example.com"\nteam = "c{seed:02d}"\nconnection = "demo"\nmonthly_cost = {MONTHLY_COST}\n'
                f'{iv}\n[models.kpi]\nname = "kpi"\nunit = "USD"\nvalue_per_unit = 1.0\n\n'
                f'[models.attribution]\nmethod = "{method}"\n{attribution}')

    def panel(table: str, treated: list[str]) -> str:
        units = ", ".join(f'"{u}"' for u in treated)
        return (f'\n[models.attribution.panel]\ntable = "{p}{table}"\nunit = "region"\ndate = "day"\nvalue = "orders"\n'
                f'treated = [{units}]\n')

    manifest = "".join([
        entry("ab", f'window_days = 7\noutcome_lag_days = 1\ncovariate_days = 0\ntreatment_share = 0.9\n'
                    f'\n[models.attribution.exposures]\ntable = "{p}exposures"\nunit = "customer_id"\n'
                    f'timestamp = "scored_at"\narm = "arm"\n\n[models.attribution.outcomes]\ntable = "{p}outcomes"\n'
                    f'unit = "customer_id"\ntimestamp = "event_at"\nvalue = "value"\n', interventions=False),
        entry("structural", f'\n[models.attribution.series]\ntable = "{p}daily"\ndate = "day"\nvalue = "kpi"\n'
                            f'controls = ["x1", "x2"]\n'),
        entry("its", f'\n[models.attribution.series]\ntable = "{p}daily"\ndate = "day"\nvalue = "its_kpi"\n'),
        entry("did", panel("did", did_treated)),
        entry("synthetic_control", panel("synth", synth_treated)),
        entry("auto", panel("auto", auto_treated)),
    ])
    return manifest, Company(seed, truth)


def build_companies(path: Path, seeds: list[int], as_of: dt.date) -> tuple[str, list[Company]]:
    """One DuckDB warehouse at ``path`` with every company; (manifest of all models, companies)."""
    import duckdb

    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        parts = [build_company(con, s, as_of) for s in seeds]
    finally:
        con.close()
    return "".join(m for m, _ in parts), [c for _, c in parts]
