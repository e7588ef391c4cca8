"""End to end with a CSV of rates: a EUR model registered, refreshed on DuckDB and read with
``value --json`` in USD, beside its twin registered without a currency (the same data, the same
amounts, read as USD); then a rate table with a gap of more than 4 days fails the EUR model alone,
through the isolation path, naming the currency and the day."""

from __future__ import annotations

import calendar
import datetime as dt
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from tests.manifests import CHURN_MANIFEST
from tests.reliability.cases import AS_OF, build_warehouse

LAUNCH = dt.date(2025, 3, 1)  # the manifest's intervention


def _manifest() -> str:
    eur = CHURN_MANIFEST.replace('timezone = "Europe/Paris"\n', 'timezone = "Europe/Paris"\ncurrency = "EUR"\n')
    eur = eur.replace("cost_per_1k_predictions = 0.5", "cost_per_1k_predictions = 0.0")
    assert 'currency = "EUR"' in eur
    twin = eur.replace('name = "churn-save-offers"', 'name = "churn-save-offers-usd"').replace('currency = "EUR"\n', "")
    return eur + twin.split("\n", 1)[1] if twin.startswith("\n") else eur + twin


def _rates(days: list[dt.date]) -> pd.DataFrame:
    """Weekdays only (no Saturday or Sunday rows), a rate that moves every day."""
    rows = [{"date": d.isoformat(), "currency": "EUR", "rate": round(1.05 + 0.004 * (i % 11), 4)}
            for i, d in enumerate(days) if d.weekday() < 5]
    return pd.DataFrame(rows)


def _carried(rates: pd.DataFrame, day: dt.date) -> float:
    published = rates[pd.to_datetime(rates["date"]).dt.date <= day].iloc[-1]
    assert (day - dt.date.fromisoformat(published["date"])).days <= 4
    return float(published["rate"])


@pytest.fixture
def eur_workspace(workspace: Path) -> Path:
    build_warehouse(workspace / "sample_data" / "demo.duckdb")
    import duckdb

    con = duckdb.connect(str(workspace / "sample_data" / "demo.duckdb"))  # the twin's exposures: the same rows
    con.execute("INSERT INTO exposures SELECT customer_id, scored_at, 'churn-save-offers-usd', arm, score, country "
                "FROM exposures")
    con.close()
    days = [LAUNCH - dt.timedelta(days=7) + dt.timedelta(days=i) for i in range((AS_OF - LAUNCH).days + 8)]
    _rates(days).to_csv(workspace / "fx_rates.csv", index=False)
    settings = workspace / "valuetrack.toml"
    settings.write_text(settings.read_text() + textwrap.dedent("""
        [fx]
        quote = "USD"
        csv = "fx_rates.csv"
    """))
    (workspace / "models.toml").write_text(_manifest())
    return workspace


def test_a_eur_model_end_to_end_register_refresh_value_json(eur_workspace: Path, cli) -> None:
    assert cli("models", "register", "--file", "models.toml").code == 0
    exported = cli("models", "export").out
    assert 'currency = "EUR"' in exported
    refreshed = cli("refresh", "--as-of", AS_OF.isoformat(), "--json", schema="refresh")
    assert refreshed.code == 0, refreshed.err
    doc = cli("value", "--as-of", AS_OF.isoformat(), "--json", schema="value").json
    assert doc["currency"] == "USD"
    rows = {m["model"]: m for m in doc["models"]}
    eur, usd = rows["churn-save-offers"], rows["churn-save-offers-usd"]
    assert eur["state"] == "ok" and usd["state"] == "ok" and usd["native"] is None
    native = eur["native"]
    assert native["currency"] == "EUR" and eur["currency"] == "USD"
    # in its own currency the EUR model is its twin, to the cent
    assert round(native["cost"], 2) == round(usd["cost"], 2)
    assert round(native["gross"], 2) == round(usd["gross"], 2)
    # in USD: 4,000 EUR a month, each live day at its own rate (weekends at Friday's)
    rates = pd.read_csv(eur_workspace / "fx_rates.csv", dtype={"date": str})
    last = AS_OF - dt.timedelta(days=1)
    expected = sum(4000.0 / calendar.monthrange(d.year, d.month)[1] * _carried(rates, d)
                   for d in (LAUNCH + dt.timedelta(days=i) for i in range((last - LAUNCH).days + 1)))
    assert round(eur["cost"], 2) == round(expected, 2)
    lo, hi = rates["rate"].min(), rates["rate"].max()
    ends = sorted((lo * native["gross"], hi * native["gross"]))
    assert ends[0] <= eur["gross"] <= ends[1]
    assert eur["gross"] != pytest.approx(native["gross"])  # converted, never 1.0
    # the totals are in USD: the EUR model's converted figures, not its native ones
    assert doc["totals"]["cost"] == pytest.approx(eur["cost"] + usd["cost"])

    # a gap of more than 4 days: the EUR model cannot be valued, its twin still is
    gap = rates[~pd.to_datetime(rates["date"]).dt.date.between(dt.date(2025, 5, 6), dt.date(2025, 5, 13))]
    gap.to_csv(eur_workspace / "fx_rates.csv", index=False)
    revalued = cli("revalue", "--as-of", AS_OF.isoformat(), "--json", schema="revalue")
    assert "no EUR rate for 2025-05-10" in revalued.json["failures"]["churn-save-offers"]
    # as refresh and value do: the model named on stderr with why, exit 1 (it was 0, silently)
    assert revalued.code == 1 and "churn-save-offers: could not be valued" in revalued.err
    assert "no EUR rate for 2025-05-10" in revalued.err
    doc = cli("value", "--as-of", AS_OF.isoformat(), "--json", schema="value").json
    rows = {m["model"]: m for m in doc["models"]}
    assert rows["churn-save-offers-usd"]["state"] == "ok"
    broken = rows["churn-save-offers"]
    assert broken["state"] == "error"
    assert "no EUR rate for 2025-05-10: the last EUR rate before it is of 2025-05-05, 5 days earlier" in broken["error"]
    assert doc["totals"]["not_valued"] == 1


def test_rates_from_a_warehouse_table_are_read_at_refresh_and_pushed_down(eur_workspace: Path, cli) -> None:
    """The same rates in a DuckDB table with other column names, read through the connection: the
    EUR model's figures are those of the CSV, and only its currency's rows leave the warehouse."""
    import duckdb

    from valuetrack.config import load_settings
    from valuetrack.connectors import get_connector
    from valuetrack.fx import read_table_rates

    rates = pd.read_csv(eur_workspace / "fx_rates.csv", dtype={"date": str})
    con = duckdb.connect(str(eur_workspace / "sample_data" / "demo.duckdb"))
    con.register("r", rates)
    con.execute("CREATE TABLE fx_daily AS SELECT CAST(date AS DATE) AS rate_day, currency AS ccy, rate AS usd_per_unit "
                "FROM r UNION ALL SELECT DATE '2025-03-03', 'GBP', 1.27")
    con.close()
    assert cli("models", "register", "--file", "models.toml").code == 0
    assert cli("refresh", "--as-of", AS_OF.isoformat()).code == 0
    by_csv = {m["model"]: m for m in cli("value", "--as-of", AS_OF.isoformat(), "--json", schema="value").json["models"]}

    settings = eur_workspace / "valuetrack.toml"
    settings.write_text(settings.read_text().replace('csv = "fx_rates.csv"', 'connection = "demo"\ntable = "fx_daily"\n'
                                                     'date = "rate_day"\ncurrency = "ccy"\nrate = "usd_per_unit"'))
    (eur_workspace / "fx_rates.csv").unlink()  # the table alone now
    done = cli("refresh", "--as-of", AS_OF.isoformat(), "--json", schema="refresh")
    assert done.code == 0, done.out + done.err
    by_table = {m["model"]: m for m in cli("value", "--as-of", AS_OF.isoformat(), "--json", schema="value").json["models"]}
    eur = by_table["churn-save-offers"]
    assert eur["state"] == "ok" and eur["native"]["currency"] == "EUR"
    for key in ("gross", "cost", "net"):
        assert round(eur[key], 2) == round(by_csv["churn-save-offers"][key], 2)

    s = load_settings(settings)
    connector = get_connector(s.connection("demo"), s.secrets())
    frame = read_table_rates(s, connector, ["EUR"], AS_OF)
    sql = connector.compile(__import__("valuetrack.queries", fromlist=["fx_rates_query"]).fx_rates_query(
        "fx_daily", "rate_day", "ccy", "usd_per_unit", ["EUR"], AS_OF))
    connector.dispose()
    # GBP and the as-of day's own rate (not a valued day) stayed in the warehouse
    assert set(frame["currency"]) == {"EUR"} and len(frame) == (rates["date"] < AS_OF.isoformat()).sum()
    assert "ccy IN" in sql and "rate_day" in sql


def test_the_model_page_and_every_report_state_the_currency_of_each_figure(eur_workspace: Path, cli,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.pages.conftest import app, assert_clean, html_tables

    assert cli("models", "register", "--file", "models.toml").code == 0
    assert cli("refresh", "--as-of", AS_OF.isoformat()).code == 0
    eur = {m["model"]: m for m in cli("value", "--as-of", AS_OF.isoformat(), "--json", schema="value").json["models"]}[
        "churn-save-offers"]
    native = eur["native"]

    # the CSV report: every row has its unit; the model's own figures in EUR, the rate in USD per EUR
    assert cli("report", "--month", "2025-06", "--format", "csv", "--out", "r.csv", "--as-of", AS_OF.isoformat()).code == 0
    rows = pd.read_csv(eur_workspace / "r.csv")
    mine = rows[rows["model"] == "churn-save-offers"].set_index("metric")
    assert mine.loc["net", "unit"] == "USD" and mine.loc["native_net", "unit"] == "EUR"
    assert mine.loc["fx_rate_mean", "unit"] == "USD per EUR" and 1.05 <= mine.loc["fx_rate_mean", "value"] <= 1.09
    assert set(rows.loc[rows["model"] == "churn-save-offers-usd", "metric"]).isdisjoint({"native_net", "fx_rate_mean"})
    # the HTML report (the PDF's source): the model's section says which figures are in EUR
    assert cli("report", "--month", "2025-06", "--format", "html", "--out", "r.html", "--as-of", AS_OF.isoformat()).code == 0
    html = (eur_workspace / "r.html").read_text()
    assert "In EUR, the model&#39;s currency: net value" in html or "In EUR, the model's currency: net value" in html
    assert "€4,000.00" in html  # the registered monthly cost, in EUR
    # the PDF (read with pdftotext) and the XLSX say the same
    import shutil
    import subprocess

    assert shutil.which("pdftotext"), "pdftotext not found: run `bash scripts/system-deps.sh` (make test does)"
    assert cli("report", "--month", "2025-06", "--format", "pdf", "--out", "r.pdf", "--as-of", AS_OF.isoformat()).code == 0
    text = " ".join(subprocess.run(["pdftotext", str(eur_workspace / "r.pdf"), "-"], check=True, capture_output=True,
                                   text=True).stdout.split())
    assert "In EUR, the model's currency: net value" in text and "every other figure is in USD" in text
    assert cli("report", "--month", "2025-06", "--format", "xlsx", "--out", "r.xlsx", "--as-of", AS_OF.isoformat()).code == 0
    from openpyxl import load_workbook

    cells = {row[0]: row[1] for ws in load_workbook(eur_workspace / "r.xlsx").worksheets
             for row in ws.iter_rows(values_only=True) if row and isinstance(row[0], str)}
    assert cells["Net value (EUR)"] == pytest.approx(mine.loc["native_net", "value"])
    assert cells["Mean rate (USD per 1 EUR)"] == pytest.approx(mine.loc["fx_rate_mean", "value"])

    # the model page: the reporting figures, and the model's own beside them (Babel: € and $)
    monkeypatch.setenv("VALUETRACK_AS_OF", AS_OF.isoformat())
    at = app("pages/model.py", model="churn-save-offers").run()
    assert_clean(at)
    table = next(t for t in html_tables(at) if t["head"] == ["Figure", "EUR", "USD"])
    cells = {r["cells"][0]: r["cells"][1:] for r in table["rows"]}
    from valuetrack.formatting import money_column

    assert cells["Net value"] == [money_column([native["gross"], native["cost"], native["net"]], "EUR")[2],
                                  money_column([eur["gross"], eur["cost"], eur["net"]], "USD")[2]]
    assert cells["Net value"][0].startswith(("€", "-€", "−€")) and "$" in cells["Net value"][1]
    assert any("converted at each day's rate (USD per 1 EUR" in c.value for c in at.caption)


def test_a_rate_table_that_cannot_be_read_fails_the_models_that_need_it(eur_workspace: Path, cli) -> None:
    settings = eur_workspace / "valuetrack.toml"
    settings.write_text(settings.read_text().replace('csv = "fx_rates.csv"', 'connection = "demo"\ntable = "no_such_table"'))
    assert cli("models", "register", "--file", "models.toml").code == 0
    done = cli("refresh", "--as-of", AS_OF.isoformat(), "--json", schema="refresh")
    assert done.code == 1
    outcome = {o["model"]: o for o in done.json["refreshed"]}
    assert outcome["churn-save-offers-usd"]["status"] == "ok"
    assert outcome["churn-save-offers"]["status"] == "failed"
    assert "the exchange rates could not be read" in outcome["churn-save-offers"]["error"]
    rows = {m["model"]: m for m in cli("value", "--as-of", AS_OF.isoformat(), "--json", schema="value").json["models"]}
    assert rows["churn-save-offers-usd"]["state"] == "ok"
    assert rows["churn-save-offers"]["state"] == "error"
    assert "no rates from table no_such_table of connection 'demo' ([fx].table) yet" in rows["churn-save-offers"]["error"]
