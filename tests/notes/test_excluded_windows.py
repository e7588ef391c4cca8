"""Excluded windows on data with a planted outage (issue 17, docs/decisions.md D36).

One DuckDB warehouse, one A/B experiment (240 days × 800 customers, 90 % served, +1.0 per served
customer on a spend of about 20, sd 4), registered twice:

* ``clean``: the data as it happened;
* ``outage``: the same draws, except that on three days the served customers' outcomes were lost
  (a tracking outage: their spend never reached the warehouse, so it reads as 0).

Without an exclusion the outage model's estimate is far off (≥ 3 standard errors); with the three
days excluded it is within 0.25 standard errors of the clean estimate, no value is claimed for the
excluded cohorts, and their cost still counts. Refresh, `notes exclude`, `value --json` (schema
checked) as a person would run them. A vectorised simulation over 2,000 seeded companies shows how
often the two statements hold, and an interrupted time series with an outage checks the series side.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

AS_OF = dt.date(2026, 6, 1)
DAYS, PER_DAY, SHARE, EFFECT, BASE, SD = 240, 800, 0.9, 1.0, 20.0, 4.0
FIRST = AS_OF - dt.timedelta(days=DAYS + 10)
OUTAGE = (FIRST + dt.timedelta(days=100), FIRST + dt.timedelta(days=102))  # three days


def build(path: Path, seed: int = 17) -> dict[str, Any]:
    import duckdb

    rng = np.random.default_rng(seed)
    days = np.repeat(pd.date_range(FIRST, periods=DAYS).date, PER_DAY)
    served = rng.random(len(days)) < SHARE
    arm = np.where(served, "model", "holdout")
    y = rng.normal(BASE + EFFECT * served, SD).round(4)
    ids = np.arange(len(days))
    ts = pd.to_datetime(days) + pd.Timedelta(hours=9)
    exposures = pd.DataFrame({"customer_id": ids, "scored_at": ts, "arm": arm})
    outcomes = pd.DataFrame({"customer_id": ids, "event_at": ts + pd.Timedelta(days=1), "value": y})
    in_outage = (days >= OUTAGE[0]) & (days <= OUTAGE[1])
    lost = outcomes[~(in_outage & served)]  # the served customers' outcomes of those days never arrived
    con = duckdb.connect(str(path))
    for name, frame in (("exposures", exposures), ("outcomes_clean", outcomes), ("outcomes_outage", lost)):
        con.register("frame", frame)
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM frame")
        con.unregister("frame")
    con.close()
    return {"treated_in_outage": int((in_outage & served).sum()), "treated": int(served.sum())}


def manifest() -> str:
    out = ""
    for name in ("clean", "outage"):
        out += (f'\n[[models]]\nname = "{name}"\ndisplay_name = "{name}"\nowner = "o@example.com"\nteam = "t"\n'
                f'connection = "demo"\nmonthly_cost = 300.0\ncost_per_1k_predictions = 1.0\n\n'
                f'[models.kpi]\nname = "spend"\nunit = "USD"\nvalue_per_unit = 1.0\n\n'
                f'[models.attribution]\nmethod = "ab"\nwindow_days = 7\noutcome_lag_days = 1\ncovariate_days = 0\n'
                f'treatment_share = {SHARE}\n\n[models.attribution.exposures]\ntable = "exposures"\n'
                f'unit = "customer_id"\ntimestamp = "scored_at"\narm = "arm"\ntreatment = "model"\ncontrol = "holdout"\n\n'
                f'[models.attribution.outcomes]\ntable = "outcomes_{name}"\nunit = "customer_id"\ntimestamp = "event_at"\n'
                f'value = "value"\n')
    return out


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from valuetrack import schemas
    from valuetrack.cli import main

    ws = tmp_path_factory.mktemp("outage")
    (ws / "sample_data").mkdir()
    truth = build(ws / "sample_data" / "demo.duckdb")
    (ws / "models.toml").write_text(manifest())
    old = Path.cwd()
    os.chdir(ws)

    def run(*argv: str, schema: str | None = None) -> Any:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main([*argv, "--json"])
        assert code == 0, buf.getvalue()
        doc = json.loads(buf.getvalue())
        if schema:
            schemas.validate(schema, doc)
        return doc

    try:
        run("models", "register", "--file", "models.toml")
        run("refresh", "--as-of", AS_OF.isoformat())
        before = run("value", "--as-of", AS_OF.isoformat(), schema="value")
        note = run("notes", "exclude", "outage", "--from", OUTAGE[0].isoformat(), "--to", OUTAGE[1].isoformat(),
                   "--reason", "tracking outage: served customers' purchases lost", schema="notes_exclude")
        after = run("value", "--as-of", AS_OF.isoformat(), schema="value")
        listed = run("notes", "list", "outage", schema="notes_list")
    finally:
        os.chdir(old)
    by = lambda doc: {m["model"]: m for m in doc["models"]}  # noqa: E731
    return {"before": by(before), "after": by(after), "note": note, "listed": listed, "truth": truth}


def test_without_the_exclusion_the_estimate_is_far_off(outage: dict[str, Any]) -> None:
    clean, broken = outage["before"]["clean"], outage["before"]["outage"]
    assert abs(clean["effect_abs"] - EFFECT) < 3 * clean["effect_se"]  # the clean data recover the truth
    off = (clean["effect_abs"] - broken["effect_abs"]) / clean["effect_se"]
    assert off >= 3.0, off  # lost outcomes of served customers pull the estimate down


def test_with_the_exclusion_the_estimate_is_the_clean_one(outage: dict[str, Any]) -> None:
    clean, fixed = outage["after"]["clean"], outage["after"]["outage"]
    gap = abs(fixed["effect_abs"] - clean["effect_abs"]) / clean["effect_se"]
    assert gap <= 0.25, gap
    # the comparison the page and report show: "without" is exactly the estimate before the exclusion
    ex = fixed["exclusions"]
    assert ex["without"]["effect"] == pytest.approx(outage["before"]["outage"]["effect_abs"], rel=1e-12)
    assert ex["with"]["effect"] == pytest.approx(fixed["effect_abs"], rel=1e-12)
    assert ex["days"] == 3 and [w["start"] for w in ex["windows"]] == [OUTAGE[0].isoformat()]
    assert ex["shift_se"] == pytest.approx((ex["without"]["effect"] - ex["with"]["effect"]) / ex["with"]["effect_se"])
    assert ex["shift_se"] <= -3.0
    # the other model is untouched
    assert outage["after"]["clean"]["effect_abs"] == outage["before"]["clean"]["effect_abs"]


def test_no_value_is_claimed_for_the_excluded_days_and_their_cost_still_counts(outage: dict[str, Any]) -> None:
    truth = outage["truth"]
    clean, fixed = outage["after"]["clean"], outage["after"]["outage"]
    assert clean["treated_units"] == truth["treated"]
    assert fixed["treated_units"] == truth["treated"] - truth["treated_in_outage"]  # the excluded cohorts count for nothing
    assert fixed["gross"] == pytest.approx(fixed["effect_abs"] * fixed["treated_units"], rel=1e-12)
    assert fixed["cost"] == clean["cost"] == outage["before"]["outage"]["cost"]  # the model ran: its cost counts
    assert fixed["period_start"] == clean["period_start"]  # launch is the first day as stored


def test_the_note_is_stored_with_who_when_and_why(outage: dict[str, Any]) -> None:
    note = outage["note"]["note"]
    assert note["kind"] == "exclusion" and note["start"] == OUTAGE[0].isoformat() and note["end"] == OUTAGE[1].isoformat()
    assert note["text"].startswith("tracking outage") and note["created_by"] and note["created_at"]
    assert outage["note"]["valued"]["asof_id"] is not None  # the change valued the portfolio again
    assert [n["id"] for n in outage["listed"]["notes"]] == [note["id"]]


def _sums(rng: np.random.Generator, n: np.ndarray, mean: np.ndarray, sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Σy and Σy² of n iid N(mean, sd²) draws, exactly in distribution (mean and scatter independent)."""
    n = np.asarray(n, float)
    s = rng.normal(n * mean, sd * np.sqrt(np.maximum(n, 1)))
    ss = sd ** 2 * rng.chisquare(np.maximum(n - 1, 1))
    return s, ss + s ** 2 / np.maximum(n, 1)


def test_simulated_companies_clear_both_bounds_nearly_always() -> None:
    """2,000 seeded companies of the same shape, day sums drawn exactly (numpy, vectorised): the
    unexcluded estimate is ≥ 3 SE off in every one; the excluded one is within 0.25 SE of the clean
    data in ≥ 95 % (its distance is the noise of 3 of 240 days: sd ≈ √(3/240) ≈ 0.11 SE)."""
    from valuetrack.attribution.ab import ABConfig, ArmStats, analyze_ab_batch

    rng = np.random.default_rng(2026)
    sims = 2000
    n = rng.binomial(PER_DAY, SHARE, (sims, DAYS)).astype(float)
    arms = {"t": n, "c": PER_DAY - n}
    sums = {k: _sums(rng, v, BASE + (EFFECT if k == "t" else 0.0), SD) for k, v in arms.items()}
    out = np.zeros(DAYS, bool)
    out[100:103] = True
    config = ABConfig(planned_treatment_share=SHARE)

    def effect(keep: np.ndarray, lose: bool) -> tuple[np.ndarray, np.ndarray]:
        st = {}
        for k in ("c", "t"):
            s, s2 = sums[k]
            if lose and k == "t":  # the served customers' outcomes of the outage days read as 0
                s, s2 = np.where(out, 0.0, s), np.where(out, 0.0, s2)
            st[k] = ArmStats((arms[k] * keep).sum(1), (s * keep).sum(1), (s2 * keep).sum(1))
        r = analyze_ab_batch(st["c"], st["t"], config)
        return r["effect_abs"], r["se_abs"]

    everything = np.ones(DAYS, bool)
    clean, se = effect(everything, False)
    unexcluded, _ = effect(everything, True)
    excluded, _ = effect(~out, True)
    off = (clean - unexcluded) / se
    near = np.abs(excluded - clean) / se
    assert (off >= 3).all(), off.min()
    assert (near <= 0.25).mean() >= 0.95, (near <= 0.25).mean()
    assert np.std(excluded - clean) / se.mean() == pytest.approx(np.sqrt(3 / 240), rel=0.15)


def test_an_interrupted_time_series_treats_excluded_days_as_missing() -> None:
    """A daily KPI with a launch effect of +30 a day; a 4-day outage after the launch reads 0. The
    outage drags the gap down; excluded, the days are missing and the estimate is the clean one's."""
    from valuetrack.attribution.its import fit_its
    from valuetrack.value.notes import exclude_days

    rng = np.random.default_rng(5)
    day = pd.date_range("2025-01-01", periods=200)
    launch = day[140]
    y = 500 + 0.2 * np.arange(200) + 10 * np.sin(2 * np.pi * np.asarray(day.day_of_week) / 7) + rng.normal(0, 5, 200)
    y = y + np.where(day >= launch, 30.0, 0.0)
    broken = y.copy()
    broken[160:164] = 0.0
    window = [(day[160].date(), day[163].date())]

    import dataclasses

    Data = dataclasses.make_dataclass("Data", [("ab", Any), ("series", Any)])  # what exclude_days reads
    data = Data(pd.DataFrame(), pd.DataFrame({"day": day.date, "value": broken, "x1": np.arange(200.0)}))
    cut = exclude_days(data, window)
    assert cut.series["value"].isna().sum() == 4 and cut.series["x1"].notna().all()  # controls are kept
    fit = lambda v: fit_its(pd.Series(v, index=day), intervention=launch, alpha=0.05).to_dict()  # noqa: E731
    clean, off, excl = fit(y), fit(broken), fit(cut.series["value"].to_numpy())
    assert abs(off["effect_avg"] - clean["effect_avg"]) > 3 * abs(clean["ci_avg"][1] - clean["effect_avg"]) / 1.96
    assert abs(excl["effect_avg"] - clean["effect_avg"]) < 0.25 * abs(clean["ci_avg"][1] - clean["effect_avg"]) / 1.96
    assert excl["n_post"] == clean["n_post"] - 4
