"""Effective-dated money end to end (issue 17) and the two cost views (issue 16), to the cent.

A DuckDB warehouse where the effect is exactly 1.0 KPI unit per treated unit (treated units score
1 or 3, holdout units 0 or 2, 40 of each a day from the launch on 1 March 2025), registered through
the CLI with dated amounts, refreshed, and read back with ``value --json``. Every expected figure
below is computed by hand in its comment.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.reliability.cases import TRACEBACK, run_cli
from valuetrack import schemas

AS_OF = dt.date(2025, 7, 1)
LAUNCH = dt.date(2025, 3, 1)

MANIFEST = textwrap.dedent('''
    [[models]]
    name = "dated-money"
    display_name = "Dated money"
    owner = "finance@example.com"
    team = "pricing"
    connection = "demo"
    monthly_cost = [{from = 2025-03-01, amount = 3100.0}, {from = 2025-06-16, amount = 6000.0}]
    one_off_costs = [{on = 2025-02-01, amount = 24000.0, label = "build"},
                     {on = 2025-05-15, amount = 6100.0, label = "retraining"}]
    amortisation_months = 12

    [[models.interventions]]
    start = 2025-03-01
    label = "launch"

    [models.kpi]
    name = "orders"
    unit = "count"
    value_per_unit = [{from = 2025-03-01, amount = 10.0}, {from = 2025-05-10, amount = 12.5}]

    [models.attribution]
    method = "ab"
    window_days = 1
    outcome_lag_days = 0
    covariate_days = 0
    treatment_share = 0.5

    [models.attribution.exposures]
    table = "exposures"
    unit = "customer_id"
    timestamp = "scored_at"
    arm = "arm"

    [models.attribution.outcomes]
    table = "outcomes"
    unit = "customer_id"
    timestamp = "event_at"
    value = "value"
''')


def _warehouse(path: Path) -> None:
    import duckdb

    days = pd.date_range(LAUNCH, AS_OF - dt.timedelta(days=1), freq="D")
    rows, outcomes, unit = [], [], 0
    for day in days:
        for i in range(80):
            arm = "model" if i < 40 else "holdout"
            at = day + pd.Timedelta(hours=12)
            rows.append((unit, at, arm))
            y = (1.0 if i % 2 else 3.0) if arm == "model" else (0.0 if i % 2 else 2.0)
            if y:
                outcomes.append((unit, at + pd.Timedelta(hours=1), y))
            unit += 1
    con = duckdb.connect(str(path))
    try:
        con.register("e", pd.DataFrame(rows, columns=["customer_id", "scored_at", "arm"]))
        con.register("o", pd.DataFrame(outcomes, columns=["customer_id", "event_at", "value"]))
        con.execute("CREATE TABLE exposures AS SELECT * FROM e")
        con.execute("CREATE TABLE outcomes AS SELECT * FROM o")
    finally:
        con.close()


def _value(*extra: str) -> dict:
    run = run_cli("value", "--json", "--as-of", str(AS_OF), *extra)
    assert run.code == 0 and not TRACEBACK.search(run.err), run.err
    out = json.loads(run.out)
    schemas.validate("value", out)
    return out


@pytest.fixture
def dated(workspace: Path) -> Path:
    _warehouse(workspace / "sample_data" / "demo.duckdb")
    (workspace / "m.toml").write_text(MANIFEST)
    reg = run_cli("models", "register", "--file", workspace / "m.toml")
    assert reg.code == 0, reg.err
    ref = run_cli("refresh", "--as-of", str(AS_OF))
    assert ref.code == 0, ref.out + ref.err
    return workspace


def test_dated_costs_values_and_amortised_one_offs_to_the_cent(dated: Path) -> None:
    out = _value()
    assert set(out["cost_views"]) == {"running", "fully_loaded"}
    assert out["cost_views"]["running"]["label"] == "Net value (running costs)"
    assert out["cost_views"]["fully_loaded"]["label"] == "Net value (fully loaded)"
    (m,) = out["models"]
    assert m["effect_abs"] == pytest.approx(1.0)
    # gross: 40 treated units a day × 1.0 × value per unit (10.00 to 9 May, 12.50 from 10 May)
    #   March 31 × 400 = 12,400; April 30 × 400 = 12,000; May 9 × 400 + 22 × 500 = 14,600; June 30 × 500 = 15,000
    assert round(m["gross"], 2) == 54000.00
    # running cost: 3,100 a month to 15 June, 6,000 from 16 June: 3 × 3,100 + 15/30 × 3,100 + 15/30 × 6,000
    assert round(m["cost"], 2) == 13850.00
    assert round(m["net"], 2) == 40150.00
    assert round(m["roi"], 6) == round(40150 / 13850, 6)
    # amortised over 12 months from the later of its date and the launch, straight line by day:
    #   build 24,000 from 1 March 2025 over 365 days, 122 days to 30 June → 8,021.92
    #   retraining 6,100 from 15 May 2025 over 365 days, 47 days to 30 June → 785.48
    assert round(m["amortisation"], 2) == 8807.40
    assert round(m["cost_fully_loaded"], 2) == 22657.40
    assert round(m["net_fully_loaded"], 2) == 31342.60
    assert m["roi_fully_loaded"] == pytest.approx((54000 - 13850 - 8807.3973) / (13850 + 8807.3973), abs=1e-6)
    assert m["cost_one_off"] == pytest.approx(30100.0)
    assert m["amortisation_months"] == 12
    # payback on running net, counting each one-off cost from when it is incurred: cumulative net at
    # month ends 9,300 / 18,200 / 29,700 / 40,150 against 24,000, then 30,100 from 15 May → June
    assert m["payback_date"] == "2025-06-30"
    t = out["totals"]
    assert round(t["net"], 2) == 40150.00 and round(t["net_fully_loaded"], 2) == 31342.60
    # the charts read the same days: the uplift timeline's cumulative gross weights each cohort day by
    # its value per unit (12,400 by 31 March; 54,000 by 30 June), and the cumulative rows carry the
    # one-off costs incurred by each month-end (the payback line steps up on 15 May)
    from valuetrack import ledger
    from valuetrack.context import open_context

    record = ledger.model(open_context(), "dated-money")
    timeline = record.timeline["timeline"].set_index("day")
    assert round(float(timeline["cum_gross"].iloc[-1]), 2) == 54000.00
    assert round(float(timeline.loc[timeline.index.astype(str).str.startswith("2025-03-31"), "cum_gross"].iloc[0]), 2) == 12400.00
    cumulative = record.timeline["cumulative"]
    assert list(cumulative["one_off"]) == [24000.0, 24000.0, 30100.0, 30100.0]

    june = _value("--month", "2025-06")["models"][0]
    assert round(june["gross"], 2) == 15000.00
    assert round(june["cost"], 2) == 4550.00  # 1,550 + 3,000: the cost changed mid-month
    # (24,000 + 6,100) × 30 / 365 = 2,473.97
    assert round(june["amortisation"], 2) == 2473.97
    assert round(june["net_fully_loaded"], 2) == 7976.03
    may = _value("--month", "2025-05")["models"][0]
    assert round(may["gross"], 2) == 14600.00 and round(may["cost"], 2) == 3100.00
    assert may["cost_one_off"] == pytest.approx(6100.0)


def test_the_manifest_round_trips_and_a_money_edit_revalues_past_months(dated: Path) -> None:
    exported = run_cli("models", "export")
    assert exported.code == 0
    assert "{ from = 2025-06-16, amount = 6000.0 }" in exported.out
    assert '{ on = 2025-05-15, amount = 6100.0, label = "retraining" }' in exported.out
    (dated / "again.toml").write_text(exported.out)
    again = run_cli("models", "register", "--file", dated / "again.toml")
    assert again.code == 0, again.err
    assert run_cli("models", "export").out == exported.out
    for args, schema in ((("models", "show", "dated-money", "--json"), "models_show"), (("models", "list", "--json"), "models_list")):
        shown = run_cli(*args)
        assert shown.code == 0, shown.err
        schemas.validate(schema, json.loads(shown.out))
    listed = json.loads(run_cli("models", "list", "--json").out)["models"][0]
    assert listed["monthly_cost"] == 6000.0  # the amount in effect now

    before = _value("--month", "2025-04")["models"][0]
    # a money-changing edit touching a past month: April's cost rises to 4,500 from 16 April
    edited = MANIFEST.replace("{from = 2025-06-16, amount = 6000.0}",
                              "{from = 2025-04-16, amount = 4500.0}, {from = 2025-06-16, amount = 6000.0}")
    (dated / "edit.toml").write_text(edited)
    assert run_cli("models", "register", "--file", dated / "edit.toml").code == 0
    after = _value("--month", "2025-04")["models"][0]
    # April: 15/30 × 3,100 + 15/30 × 4,500 = 3,800.00 (was 3,100.00): the edit revalued the month
    assert round(before["cost"], 2) == 3100.00 and round(after["cost"], 2) == 3800.00
    assert round(after["net"] - before["net"], 2) == -700.00
    assert after["registry_revision"] == before["registry_revision"] + 1
    # the edit is an audited registry revision naming the field that changed
    from valuetrack.context import open_context

    ctx = open_context()
    (entry,) = [a for a in ctx.registry.audit("dated-money") if a.action == "update"]
    assert "monthly_cost" in entry.changes, entry.changes
    # and the valuation that followed it records the edit (the ledger's newest as-of, reason "edit")
    assert ctx.ledger.asof()["reason"] == "edit"
