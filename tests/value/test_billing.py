"""Cost from the bill, end to end on DuckDB: manifest → refresh (the billing query, its cost
recorded) → valuation (settled billed cost in place of the estimate, the estimate for the days
not settled) → value JSON, by hand from the figures of tests/fixtures/billing/expected.json; a late
correction to a final month changes that month's cost and the valuation's inputs."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from valuetrack.errors import ValidationError
from valuetrack.registry.spec import ModelSpec
from valuetrack.value.billing import billed_cost

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "billing"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
BILL = "warehouse_metering_history"
MONTHLY = 310.0  # the manifest's estimate: 10 a day in January, 310/28 a day in February
CHURN = "churn-scorer"


def bill_rows(version: str) -> pd.DataFrame:
    final = [json.loads(line) for line in (FIXTURES / f"{BILL}.jsonl").read_text().splitlines()]
    change = EXPECTED["bills"][BILL]["correction"]
    if version == "initial":
        final = [change["initial"] if i == change["line"] else r for i, r in enumerate(final)]
    df = pd.DataFrame(final)
    for col in ("start_time", "end_time"):
        df[col] = pd.to_datetime(df[col], utc=True).dt.tz_localize(None)  # naive UTC, as TIMESTAMP
    return df


def load_bill(path: Path, version: str) -> None:
    con = duckdb.connect(str(path))
    try:
        frame = bill_rows(version)  # noqa: F841 (read by DuckDB by name)
        con.execute(f"CREATE OR REPLACE TABLE {BILL} AS SELECT * FROM frame")
    finally:
        con.close()


def expected(version: str, first: dt.date, last: dt.date) -> float:
    days = EXPECTED["bills"][BILL]["daily_cost"][version][CHURN]
    return sum(v for d, v in days.items() if first <= dt.date.fromisoformat(d) <= last)


MANIFEST = textwrap.dedent(f"""
    [[models]]
    name = "{CHURN}"
    display_name = "Churn scorer"
    owner = "o@example.com"
    team = "ml"
    monthly_cost = {MONTHLY}

    [models.kpi]
    name = "orders"
    unit = "count"
    value_per_unit = 2.0

    [models.attribution]
    method = "its"

    [models.attribution.series]
    table = "daily_kpis"
    date = "day"
    value = "orders"

    [[models.interventions]]
    start = 2026-01-01
    label = "launch"

    [models.cost_source]
    table = "{BILL}"
    date = "start_time"
    amount = "credits_used"
    currency = "USD"
    where = "warehouse_name = 'ML_SCORING_WH'"
    price_per_unit = 3.0
    share = 0.6
    settle_days = 2
""")


@pytest.fixture
def billed_workspace(workspace: Path) -> Path:
    rng = np.random.default_rng(7)
    days = pd.date_range("2025-09-01", "2026-03-10", freq="D")
    orders = 100 + rng.normal(0, 2, len(days)) + np.where(days >= "2026-01-01", 10.0, 0.0)
    kpis = pd.DataFrame({"day": days.date, "orders": orders})  # noqa: F841 (read by DuckDB by name)
    con = duckdb.connect(str(workspace / "sample_data" / "demo.duckdb"))
    con.execute("CREATE TABLE daily_kpis AS SELECT CAST(day AS DATE) AS day, orders FROM kpis")
    con.close()
    load_bill(workspace / "sample_data" / "demo.duckdb", "initial")
    (workspace / "models.toml").write_text(MANIFEST)
    return workspace


def test_settled_bill_replaces_the_estimate_by_hand(billed_workspace: Path, cli) -> None:
    assert cli("models", "register", "--file", "models.toml").code == 0
    refreshed = cli("refresh", "--as-of", "2026-02-20", "--json", schema="refresh")
    assert refreshed.code == 0, refreshed.out + refreshed.err
    value = cli("value", "--as-of", "2026-02-20", "--json", schema="value").json
    (m,) = value["models"]
    # as of 2026-02-20 with a 2-day lag: billed through 2026-02-17, estimated on 02-18 and 02-19
    billed = expected("initial", dt.date(2026, 1, 1), dt.date(2026, 2, 17))
    estimated = 2 * MONTHLY / 28
    assert m["cost"] == pytest.approx(billed + estimated, abs=1e-6)
    b = m["cost_billing"]
    assert b["billed"] == pytest.approx(billed, abs=1e-6)
    assert b["estimated"] == pytest.approx(estimated, abs=1e-9)
    assert b["estimate_on_billed_days"] == pytest.approx(MONTHLY + 17 * MONTHLY / 28, abs=1e-9)
    assert (b["billed_days"], b["estimated_days"]) == (48, 2)
    assert (b["settled_from"], b["settled_through"]) == ("2026-01-01", "2026-02-17")
    assert m["net"] == pytest.approx(m["gross"] - m["cost"], abs=1e-6)
    # January, wholly settled: the bill alone
    jan = cli("value", "--as-of", "2026-02-20", "--month", "2026-01", "--json", schema="value").json["models"][0]
    assert jan["cost"] == pytest.approx(expected("initial", dt.date(2026, 1, 1), dt.date(2026, 1, 31)), abs=1e-6)
    assert jan["cost_billing"]["estimated_days"] == 0
    # the billing query ran with the refresh and its cost is recorded with the others
    from valuetrack.context import open_context

    status = open_context().aggregates.status(CHURN)
    purposes = [q["purpose"] for q in status.last_ok["cost"]["queries"]]
    assert "billing" in purposes and status.last_ok["cost"]["total"]["queries"] == len(purposes)


def test_a_late_correction_to_a_final_month_changes_its_cost_and_the_inputs(billed_workspace: Path, cli) -> None:
    from valuetrack.context import open_context

    assert cli("models", "register", "--file", "models.toml").code == 0
    assert cli("refresh", "--as-of", "2026-03-05").code == 0
    before = cli("value", "--as-of", "2026-03-05", "--month", "2026-01", "--json", schema="value").json["models"][0]
    hash_before = open_context().ledger.asof()["input_hash"]
    load_bill(billed_workspace / "sample_data" / "demo.duckdb", "final")  # 2026-01-09 revised in place
    assert cli("refresh", "--as-of", "2026-03-05").code == 0
    after = cli("value", "--as-of", "2026-03-05", "--month", "2026-01", "--json", schema="value").json["models"][0]
    # 0.75 credits more on the shared warehouse that day × 3.00 per credit × this model's 0.6
    assert after["cost"] - before["cost"] == pytest.approx(0.75 * 3.0 * 0.6, abs=1e-9)
    assert after["cost"] == pytest.approx(expected("final", dt.date(2026, 1, 1), dt.date(2026, 1, 31)), abs=1e-6)
    assert open_context().ledger.asof()["input_hash"] != hash_before


def test_a_bill_in_another_currency_is_refused_naming_it_and_the_day() -> None:
    spec = ModelSpec.from_dict({
        "name": CHURN, "display_name": "c", "owner": "o", "team": "t",
        "kpi": {"name": "orders", "unit": "count", "value_per_unit": 1.0},
        "attribution": {"method": "its", "series": {"table": "k", "date": "day", "value": "v"}},
        "interventions": [{"start": dt.date(2026, 1, 1)}],
        "cost_source": {"table": "bill", "date": "d", "amount": "a", "currency_column": "cur"}})
    frame = pd.DataFrame({"day": [dt.date(2026, 1, 1), dt.date(2026, 1, 2)], "currency": ["USD", "EUR"],
                          "amount": [1.0, 2.0]})
    with pytest.raises(ValidationError, match="the bill is in EUR on 2026-01-02 but the model's figures are in USD"):
        billed_cost(frame, spec.cost_source, as_of=dt.date(2026, 2, 1), currency="USD", model=CHURN)


def test_settling_lag_and_the_end_of_the_bill() -> None:
    """A day settles once older than settle_days, and never past the last day the bill holds."""
    spec = ModelSpec.from_dict({
        "name": CHURN, "display_name": "c", "owner": "o", "team": "t",
        "kpi": {"name": "orders", "unit": "count", "value_per_unit": 1.0},
        "attribution": {"method": "its", "series": {"table": "k", "date": "day", "value": "v"}},
        "interventions": [{"start": dt.date(2026, 1, 1)}],
        "cost_source": {"table": "bill", "date": "d", "amount": "a", "currency": "USD", "settle_days": 3,
                        "price_per_unit": 2.0, "share": 0.5}})
    days = [dt.date(2026, 1, d) for d in range(3, 11)]
    frame = pd.DataFrame({"day": days, "amount": [1.0] * len(days)})
    b = billed_cost(frame, spec.cost_source, as_of=dt.date(2026, 1, 10), currency="USD")
    assert (b.settled_from, b.settled_through) == (dt.date(2026, 1, 3), dt.date(2026, 1, 6))  # 10 − 1 − 3
    assert b.by_day.iloc[0] == 1.0  # × 2.0 per unit × 0.5 share
    late = billed_cost(frame, spec.cost_source, as_of=dt.date(2026, 3, 1), currency="USD")
    assert late.settled_through == dt.date(2026, 1, 10)  # the bill stops there: later days keep the estimate
    early = billed_cost(frame, spec.cost_source, as_of=dt.date(2026, 1, 5), currency="USD")
    assert early.settled_through is None
    index = pd.Index([dt.date(2026, 1, d) for d in range(1, 8)], dtype="object")
    assert b.settled_mask(index).tolist() == [False, False, True, True, True, True, False]


@pytest.mark.parametrize("change, message", [
    ({"currency": None}, "give exactly one of `currency`"),
    ({"currency_column": "cur"}, "give exactly one of `currency`"),
    ({"share": 1.5}, "share: must be > 0 and at most 1"),
    ({"price_per_unit": 0}, "price_per_unit: must be > 0"),
    ({"settle_days": -1}, "settle_days: must be between 0 and 90"),
    ({"labels": "labels"}, "`labels` (the column) and `label_key` go together"),
    ({"where": "1=1; DROP TABLE bill"}, "cost_source.where"),
    ({"amount": "a; drop"}, "cost_source.amount"),
])
def test_bad_cost_sources_are_refused_naming_the_field(change, message) -> None:
    source = {"table": "bill", "date": "d", "amount": "a", "currency": "USD", **change}
    source = {k: v for k, v in source.items() if v is not None}
    with pytest.raises(ValidationError) as err:
        ModelSpec.from_dict({
            "name": CHURN, "display_name": "c", "owner": "o", "team": "t",
            "kpi": {"name": "orders", "unit": "count", "value_per_unit": 1.0},
            "attribution": {"method": "its", "series": {"table": "k", "date": "day", "value": "v"}},
            "interventions": [{"start": dt.date(2026, 1, 1)}], "cost_source": source})
    assert any(message in p for p in err.value.problems), err.value.problems


def test_the_report_shows_the_billed_and_the_estimated_cost_labelled(billed_workspace: Path, cli) -> None:
    """February as of 2026-02-20: billed through 02-17, estimated on 02-18 and 02-19; the two parts
    are labelled in every format (HTML, PDF, CSV, XLSX) with the same figures as the JSON."""
    import csv
    import subprocess

    from openpyxl import load_workbook

    assert cli("models", "register", "--file", "models.toml").code == 0
    assert cli("refresh", "--as-of", "2026-02-20").code == 0
    feb = cli("value", "--as-of", "2026-02-20", "--month", "2026-02", "--json", schema="value").json["models"][0]
    b = feb["cost_billing"]
    assert b["billed"] == pytest.approx(expected("initial", dt.date(2026, 2, 1), dt.date(2026, 2, 17)), abs=1e-6)
    for fmt in ("html", "pdf", "csv", "xlsx"):
        assert cli("report", "--month", "2026-02", "--format", fmt, "--out", f"r.{fmt}", "--as-of", "2026-02-20").code == 0
    html = (billed_workspace / "r.html").read_text()
    pdf = subprocess.run(["pdftotext", "r.pdf", "-"], capture_output=True, text=True, check=True).stdout
    for text in (html, " ".join(pdf.split())):
        assert "of which billed, settled through 2026-02-17 (17 days)" in text
        assert "of which estimated, not settled (2 days)" in text
        assert f"Its cost is the bill ({BILL}) through 2026-02-17" in text
    rows = {r["metric"]: float(r["value"]) for r in csv.DictReader((billed_workspace / "r.csv").open())
            if r["model"] == CHURN and r["value"] != ""}
    assert rows["cost_billed"] == pytest.approx(b["billed"], abs=1e-6)
    assert rows["cost_estimated"] == pytest.approx(2 * MONTHLY / 28, abs=1e-6)
    assert rows["cost"] == pytest.approx(b["billed"] + b["estimated"], abs=1e-6)
    sheet = {r[0]: r[1] for r in load_workbook(billed_workspace / "r.xlsx")[CHURN].iter_rows(values_only=True) if r}
    assert sheet["Cost billed (settled)"] == pytest.approx(b["billed"], abs=1e-6)
    assert sheet["Billed through"] == "2026-02-17"


def test_the_model_page_labels_the_billed_and_the_estimated_cost(billed_workspace: Path, cli, monkeypatch) -> None:
    from tests.pages.conftest import app, assert_clean, html_tables
    from valuetrack.formatting import money

    assert cli("models", "register", "--file", "models.toml").code == 0
    assert cli("refresh", "--as-of", "2026-02-20").code == 0
    m = cli("value", "--as-of", "2026-02-20", "--json", schema="value").json["models"][0]
    monkeypatch.setenv("VALUETRACK_AS_OF", "2026-02-20")
    at = app("pages/model.py", model=CHURN, section="Costs").run()  # the section with the bill
    assert_clean(at)
    captions = " ".join(c.value for c in at.caption)
    assert f"running costs {money(m['cost'], 'USD')}: billed through 17 Feb 2026, estimated after" in captions.replace("\\", "")
    text = " ".join(x.value for x in at.markdown).replace("\\", "")
    b = m["cost_billing"]
    assert (f"Billed, settled (48 days, 01 Jan 2026 to 17 Feb 2026): {money(b['billed'], 'USD')} "
            f"(the manifest's estimate for those days: {money(b['estimate_on_billed_days'], 'USD')})") in text
    assert f"Estimated, not settled yet (2 days): {money(b['estimated'], 'USD')}" in text
    months = next(t for t in html_tables(at) if t["id"] == "months")
    assert [r["cells"][2].partition(" ")[2] for r in months["rows"]] == ["(billed + estimated)", "(billed)"]


def test_the_documented_recipes_are_valid_cost_sources() -> None:
    """The three recipes of docs/connectors.md (and the user guide's) pass the manifest's checks."""
    import re
    import tomllib

    root = Path(__file__).resolve().parents[2]
    blocks = []
    for doc in ("connectors.md", "user-guide.md"):
        text = (root / "docs" / doc).read_text()
        for block in re.findall(r"```toml\n(.*?)```", text, re.S):
            if "[models.cost_source]" in block:
                # the user guide shows the other two recipes commented out: uncomment, one recipe each
                lines = [line[2:] if re.match(r"# (\[|\w+ = )", line) else line for line in block.splitlines()]
                lines = [line for line in lines if not line.startswith("#")]
                blocks += ["[models" + part for part in "\n".join(lines).split("[models")[1:]]
    assert len(blocks) == 6, len(blocks)
    for block in blocks:
        source = tomllib.loads(block)["models"]["cost_source"]
        ModelSpec.from_dict({
            "name": CHURN, "display_name": "c", "owner": "o", "team": "t",
            "kpi": {"name": "orders", "unit": "count", "value_per_unit": 1.0},
            "attribution": {"method": "its", "series": {"table": "k", "date": "day", "value": "v"}},
            "interventions": [{"start": dt.date(2026, 1, 1)}], "cost_source": source})


def test_the_form_round_trips_a_cost_source_and_leaves_it_out_when_empty() -> None:
    from valuetrack.ui import views

    source = {"table": "billing.gcp_export", "date": "usage_start_time", "amount": "cost", "currency_column": "currency",
              "credits": "credits", "labels": "labels", "label_key": "valuetrack-model",
              "where": "service.description = 'Vertex AI'", "share": 0.5, "settle_days": 4}
    spec = ModelSpec.from_dict({
        "name": CHURN, "display_name": "c", "owner": "o", "team": "t",
        "kpi": {"name": "orders", "unit": "count", "value_per_unit": 1.0},
        "attribution": {"method": "its", "series": {"table": "k", "date": "day", "value": "v"}},
        "interventions": [{"start": dt.date(2026, 1, 1)}], "cost_source": source})
    form = views.spec_to_form(spec)
    assert form["cost_source.table"] == "billing.gcp_export" and form["cost_source.share"] == 0.5
    data, problems = views.form_to_data(form)
    assert not problems
    assert ModelSpec.from_dict(data) == spec
    empty = {**form, **{k: "" for k in form if k.startswith("cost_source.") and isinstance(form[k], str)}}
    data, _ = views.form_to_data(empty)
    assert "cost_source" not in data and ModelSpec.from_dict(data).cost_source is None


def test_shares_of_one_warehouse_above_one_are_refused(billed_workspace: Path, cli) -> None:
    """Two models on ML_SCORING_WH: 0.6 + 0.4 is the whole bill; 0.6 + 0.5 would charge more than it."""
    other = MANIFEST.replace(f'name = "{CHURN}"', 'name = "upsell-recommender"').replace("share = 0.6", "share = 0.5")
    (billed_workspace / "both.toml").write_text(MANIFEST + other)
    res = cli("models", "register", "--file", "both.toml")
    assert res.code != 0
    assert "cost_source.share: the models reading the same bill rows" in res.err
    assert "adding up to 1.1: churn-scorer (0.6), upsell-recommender (0.5)" in res.err
    assert cli("models", "list", "--json", schema="models_list").json["models"] == []  # all or nothing
    (billed_workspace / "both.toml").write_text(MANIFEST + other.replace("share = 0.5", "share = 0.4"))
    assert cli("models", "register", "--file", "both.toml").code == 0


def test_the_fixtures_are_what_the_seeded_generator_writes() -> None:
    """tests/fixtures/billing/ is reproducible: the generator, run again with its seed, writes the same
    bytes (the expected daily costs included)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "billing_fixtures.py"
    spec = importlib.util.spec_from_file_location("billing_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = module.generate(EXPECTED["seed"])
    assert sorted(files) == sorted(p.name for p in FIXTURES.iterdir())
    for name, text in files.items():
        assert (FIXTURES / name).read_text() == text, name


def test_models_show_and_export_carry_the_cost_source(billed_workspace: Path, cli) -> None:
    assert cli("models", "register", "--file", "models.toml").code == 0
    shown = cli("models", "show", CHURN, "--json", schema="models_show").json
    assert "cost_source" in json.dumps(shown) and "ML_SCORING_WH" in json.dumps(shown)
    assert cli("models", "export", "--out", "out.toml").code == 0
    assert cli("models", "register", "--file", "out.toml", "--dry-run", "--json", schema="models_register").code == 0
    import tomllib

    exported = tomllib.loads((billed_workspace / "out.toml").read_text())["models"][0]["cost_source"]
    assert exported["share"] == 0.6 and exported["price_per_unit"] == 3.0 and exported["settle_days"] == 2


def test_bill_rows_without_a_currency_are_refused_naming_the_column_and_the_day() -> None:
    spec = ModelSpec.from_dict({
        "name": CHURN, "display_name": "c", "owner": "o", "team": "t",
        "kpi": {"name": "orders", "unit": "count", "value_per_unit": 1.0},
        "attribution": {"method": "its", "series": {"table": "k", "date": "day", "value": "v"}},
        "interventions": [{"start": dt.date(2026, 1, 1)}],
        "cost_source": {"table": "bill", "date": "d", "amount": "a", "currency_column": "cur"}})
    frame = pd.DataFrame({"day": [dt.date(2026, 1, 1), dt.date(2026, 1, 2)], "currency": ["USD", ""],
                          "amount": [1.0, 2.0]})
    with pytest.raises(ValidationError, match="cost_source.currency_column: bill rows of 2026-01-02 have no currency"):
        billed_cost(frame, spec.cost_source, as_of=dt.date(2026, 2, 1), currency="USD", model=CHURN)


def test_a_late_correction_to_a_final_month_goes_through_the_restatement_flow(billed_workspace: Path, cli) -> None:
    """January's report is issued final (version 1) on the initial bill; the metering history then
    revises 2026-01-09 (0.75 credits more on the shared warehouse). After the next refresh, January
    still shows version 1 and the difference waits as a pending restatement; applying it (with a
    reason) makes version 2 with the corrected cost: 0.75 × 3.00 × 0.6 = 1.35 more."""
    assert cli("models", "register", "--file", "models.toml").code == 0
    assert cli("refresh", "--as-of", "2026-03-05").code == 0
    issued = cli("report", "--month", "2026-01", "--format", "csv", "--out", "jan-v1.csv", "--as-of", "2026-03-05",
                 "--json", schema="report")
    assert issued.code == 0, issued.out + issued.err
    assert issued.json["status"] == "final" and issued.json["final_version"] == 1
    v1 = cli("value", "--as-of", "2026-03-05", "--month", "2026-01", "--json", schema="value").json
    cost_v1 = v1["models"][0]["cost"]
    assert cost_v1 == pytest.approx(expected("initial", dt.date(2026, 1, 1), dt.date(2026, 1, 31)), abs=1e-6)

    load_bill(billed_workspace / "sample_data" / "demo.duckdb", "final")
    assert cli("refresh", "--as-of", "2026-03-05").code == 0
    now = cli("value", "--as-of", "2026-03-05", "--month", "2026-01", "--json", schema="value").json
    assert now["final"]["version"] == 1 and now["models"][0]["cost"] == cost_v1  # final stays final
    p = now["pending_restatement"]
    assert p is not None and p["cost_after"] - p["cost_before"] == pytest.approx(1.35, abs=1e-9)
    assert p["delta"] == pytest.approx(-1.35, abs=1e-9)
    assert [d["model"] for d in p["models"]] == [CHURN]

    reason = "Snowflake revised the cloud-services credits of 2026-01-09"
    done = cli("restate", "--month", "2026-01", "--reason", reason, "--as-of", "2026-03-05", "--json", schema="restate")
    assert done.code == 0, done.out + done.err
    v2 = cli("value", "--as-of", "2026-03-05", "--month", "2026-01", "--json", schema="value").json
    assert v2["final"]["version"] == 2 and v2["final"]["reason"] == reason and v2["pending_restatement"] is None
    assert v2["models"][0]["cost"] == pytest.approx(expected("final", dt.date(2026, 1, 1), dt.date(2026, 1, 31)),
                                                    abs=1e-6)
