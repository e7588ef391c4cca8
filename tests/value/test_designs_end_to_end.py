"""Designs beyond one holdout, registered from a manifest and valued end to end (issue 19).

One DuckDB warehouse holds three models:

* ``ramped``: a rollout ramped 10 % → 50 % → 90 % while spend per customer falls from 30 to 10;
  the naive pooled difference is negative, the truth +1.0 per served customer;
* ``duel``: a holdout (10 %), the champion ``model`` (45 %, +1.0) and the challenger ``v4`` (45 %,
  +3.0 and a little more expensive): the challenger should be promoted;
* ``checked``: a holdout (10 %) and a daily KPI series of all customers' spend with a control
  series: the holdout's total and the time series' gap over the same days should agree;
* ``biased``: the same, with a step in the series at the launch that the control misses: the two
  methods must disagree and raise ``methods_disagree``.

``refresh`` then ``value --json`` (schema-checked) and ``flags --json``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

AS_OF = dt.date(2026, 6, 1)
RAMP = [(AS_OF - dt.timedelta(days=120), 0.1), (AS_OF - dt.timedelta(days=80), 0.5), (AS_OF - dt.timedelta(days=40), 0.9)]


def exposures_outcomes(rng: np.random.Generator, first_day: np.ndarray, arm: np.ndarray, mean: np.ndarray,
                       start_id: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(first_day)
    ts = pd.to_datetime(first_day) + pd.Timedelta(hours=10)
    y = rng.gamma(2.0, mean / 2.0)
    ids = np.arange(start_id, start_id + n)
    return (pd.DataFrame({"customer_id": ids, "scored_at": ts, "arm": arm}),
            pd.DataFrame({"customer_id": ids, "event_at": ts + pd.Timedelta(days=1), "value": y.round(4)}))


def build(path: Path) -> str:
    import duckdb

    rng = np.random.default_rng(19)
    con = duckdb.connect(str(path))
    # ramped: three periods of 40 days, 600 customers a day
    frames = []
    for k, (start, share) in enumerate(RAMP):
        days = np.repeat(pd.date_range(start, periods=40).date, 600)
        served = rng.random(len(days)) < share
        base = [30.0, 20.0, 10.0][k]
        frames.append(exposures_outcomes(rng, days, np.where(served, "model", "holdout"), base + 1.0 * served,
                                         start_id=k * 10**6))
    ramp_e = pd.concat([f[0] for f in frames]); ramp_o = pd.concat([f[1] for f in frames])
    # duel: 120 days, 900 customers a day
    days = np.repeat(pd.date_range(AS_OF - dt.timedelta(days=120), periods=120).date, 900)
    u = rng.random(len(days))
    arm = np.where(u < 0.1, "holdout", np.where(u < 0.55, "model", "v4"))
    duel_e, duel_o = exposures_outcomes(rng, days, arm, 20.0 + np.where(arm == "model", 1.0, np.where(arm == "v4", 3.0, 0.0)))
    # checked: 240 days of spend by everyone; the model serves 90 % of customers from day 150
    all_days = pd.date_range(AS_OF - dt.timedelta(days=240), periods=240)
    launch = all_days[150].date()
    per_day = 300
    days = np.repeat(all_days.date, per_day)
    post = days >= launch
    served = post & (rng.random(len(days)) < 0.9)
    x1 = 2000 + np.cumsum(rng.normal(0, 20, len(all_days)))
    weekday = 1.0 + 0.1 * np.sin(2 * np.pi * all_days.day_of_week / 7)
    mean = 20.0 * np.repeat(weekday, per_day) + 2.0 * served
    chk_e, chk_o = exposures_outcomes(rng, days[post], np.where(served[post], "model", "holdout"), mean[post])
    spend = pd.Series(rng.gamma(2.0, mean / 2.0)).groupby(days).sum()  # everyone's spend, before and after
    series = pd.DataFrame({"day": all_days.date, "kpi": (spend.to_numpy() + 0.5 * x1).round(4), "x1": x1.round(4)})
    # the holdout's outcomes in the series must be the same draws: rebuild them from the outcomes table
    post_spend = chk_o.assign(day=chk_e["scored_at"].dt.date.to_numpy()).groupby("day")["value"].sum()
    series.loc[series["day"] >= launch, "kpi"] = (post_spend.reindex(series.loc[series["day"] >= launch, "day"]).to_numpy()
                                                  + 0.5 * x1[150:]).round(4)
    # the same series with a bias from the launch on (a concurrent campaign the controls miss)
    series["kpi_biased"] = (series["kpi"] + np.where(series["day"] >= launch, 1500.0, 0.0)).round(4)
    for name, frame in (("ramp_exposures", ramp_e), ("ramp_outcomes", ramp_o), ("duel_exposures", duel_e),
                        ("duel_outcomes", duel_o), ("chk_exposures", chk_e), ("chk_outcomes", chk_o), ("chk_series", series)):
        con.register("frame", frame)
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM frame")
        con.unregister("frame")
    con.close()

    def model(name: str, attribution: str, extra: str = "") -> str:
        return (f'\n[[models]]\nname = "{name}"\ndisplay_name = "{name}"\nowner = "o@example.com"\nteam = "t"\n'
                f'connection = "demo"\nmonthly_cost = 100.0\ncost_per_1k_predictions = 1.0\n{extra}\n'
                f'[models.kpi]\nname = "spend"\nunit = "USD"\nvalue_per_unit = 1.0\n\n'
                f'[models.attribution]\nmethod = "ab"\nwindow_days = 7\noutcome_lag_days = 1\ncovariate_days = 0\n'
                f'{attribution}')

    def ab(prefix: str, share: float) -> str:
        return (f'treatment_share = {share}\n\n[models.attribution.exposures]\ntable = "{prefix}_exposures"\n'
                f'unit = "customer_id"\ntimestamp = "scored_at"\narm = "arm"\n\n[models.attribution.outcomes]\n'
                f'table = "{prefix}_outcomes"\nunit = "customer_id"\ntimestamp = "event_at"\nvalue = "value"\n')

    steps = "".join(f"\n[[models.attribution.allocation]]\nfrom = {d.isoformat()}\ntreatment_share = {s}\n" for d, s in RAMP)
    return (model("ramped", ab("ramp", 0.5) + steps)
            + model("duel", ab("duel", 0.45) + '\n[models.attribution.challenger]\narm = "v4"\nlabel = "v4"\n'
                    'treatment_share = 0.45\nmonthly_cost = 100.0\ncost_per_1k_predictions = 2.0\n')
            + model("checked", ab("chk", 0.9) + '\n[models.attribution.series]\ntable = "chk_series"\ndate = "day"\n'
                    'value = "kpi"\ncontrols = ["x1"]\n',
                    extra=f'\n[[models.interventions]]\nstart = {launch.isoformat()}\nlabel = "launch"\n')
            + model("biased", ab("chk", 0.9) + '\n[models.attribution.series]\ntable = "chk_series"\ndate = "day"\n'
                    'value = "kpi_biased"\ncontrols = ["x1"]\n',
                    extra=f'\n[[models.interventions]]\nstart = {launch.isoformat()}\nlabel = "launch"\n'))


@pytest.fixture(scope="module")
def valued(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import contextlib
    import io
    import json
    import os

    from valuetrack.cli import main

    ws = tmp_path_factory.mktemp("designs")
    (ws / "sample_data").mkdir()
    manifest = build(ws / "sample_data" / "demo.duckdb")
    (ws / "models.toml").write_text(manifest)
    old = Path.cwd()
    os.chdir(ws)
    try:
        def run(*argv: str) -> tuple[int, Any]:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                code = main(list(argv))
            return code, (json.loads(buf.getvalue()) if "--json" in argv and buf.getvalue().strip() else None)

        assert run("models", "register", "--file", "models.toml")[0] == 0
        assert run("refresh", "--as-of", AS_OF.isoformat())[0] == 0
        code, value = run("value", "--as-of", AS_OF.isoformat(), "--json")
        assert code == 0
        code, flags = run("flags", "--as-of", AS_OF.isoformat(), "--json")
    finally:
        os.chdir(old)
    from valuetrack import schemas

    schemas.validate("value", value)
    return {"models": {m["model"]: m for m in value["models"]}, "flags": flags}


def test_a_ramped_rollout_is_stratified(valued: dict[str, Any]) -> None:
    m = valued["models"]["ramped"]
    ramp = m["design"]["ramp"]
    assert ramp["pooled_effect_abs"] < 0  # the naive estimate has the wrong sign
    assert abs(m["effect_abs"] - 1.0) < 3 * m["effect_se"]
    assert [p["treatment_share"] for p in ramp["periods"]] == [0.1, 0.5, 0.9]
    assert m["trusted"] and not any(f["model"] == "ramped" and f["type"] == "untrustworthy" for f in valued["flags"]["flags"])


def test_a_better_challenger_is_promoted(valued: dict[str, Any]) -> None:
    m = valued["models"]["duel"]
    ch = m["design"]["challenger"]
    assert ch["recommendation"] == "promote", ch
    duel = ch["comparisons"]["v4 vs model"]
    assert duel["significant"] and duel["cs"][0] > 0
    assert ch["cost_per_unit"]["v4"] > ch["cost_per_unit"]["model"] > 0
    # the model's own value is the champion's against the holdout, on the two-arm share
    assert abs(m["effect_abs"] - 1.0) < 3 * m["effect_se"] and m["trusted"]


def test_holdout_and_time_series_agree(valued: dict[str, Any]) -> None:
    t = valued["models"]["checked"]["design"]["triangulation"]
    assert t["status"] == "compared", t
    assert t["look"] == 90 and not t["disagree"]
    assert abs(t["ab_total"] - 2.0 * t["treated_units"]) < 3 * t["ab_se"]
    assert not any(f["model"] == "checked" and f["type"] == "methods_disagree" for f in valued["flags"]["flags"])


def test_a_biased_time_series_raises_methods_disagree(valued: dict[str, Any]) -> None:
    t = valued["models"]["biased"]["design"]["triangulation"]
    assert t["status"] == "compared" and t["disagree"] and t["ts_total"] > t["ab_total"], t
    flag = next(f for f in valued["flags"]["flags"] if f["model"] == "biased" and f["type"] == "methods_disagree")
    assert "disagree about the first 90 days" in flag["reason"] and flag["p_value"] < t["level"]


def test_the_model_page_says_it_in_words(valued: dict[str, Any]) -> None:
    from valuetrack.design_text import design_rows

    rows = {k: v for m in valued["models"].values() for k, v in design_rows(m["design"] or {}, "USD")}
    assert rows["Challenger v4"].startswith("promote")
    assert rows["Holdout vs time series, first 90 days"].startswith("agree")
    assert sum(k.startswith("Allocation from") for k in rows) == 3
    assert not any(v in ("None", "nan", "True", "False") for v in rows.values())
