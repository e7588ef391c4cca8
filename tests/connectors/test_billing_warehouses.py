"""Cost from the bill (``billed_cost_query``) on DuckDB and each stand-in, on the fixtures of
scripts/billing_fixtures.py: the daily costs equal the figures computed when the fixtures were
generated (tests/fixtures/billing/expected.json), before and after a late correction.

* Snowflake metering and the AWS cost-and-usage view are flat tables: DuckDB, Snowflake (fakesnow),
  BigQuery (emulator) and Athena (moto; its result computed by our query transpiled by sqlglot and
  run on DuckDB).
* The BigQuery billing export has nested ``credits`` and ``labels`` (arrays of structs), read with
  UNNEST: DuckDB and the BigQuery emulator.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.connectors.standins import connector_for
from valuetrack.errors import ParameterError
from valuetrack.queries import billed_cost_query
from valuetrack.refresh_pull import normalize_days
from valuetrack.registry.spec import ModelSpec
from valuetrack.value.billing import billed_cost

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "billing"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
START, END = dt.date.fromisoformat(EXPECTED["first_day"]), dt.date.fromisoformat(EXPECTED["last_day"])
FAR = dt.date(2027, 1, 1)  # as-of long after: every day settled
MODELS = ("churn-scorer", "upsell-recommender")
VERSIONS = ("initial", "final")


def rows(bill: str, version: str) -> list[dict]:
    """The rows of one version of a bill (the initial one rebuilt from the final rows and the
    recorded correction, as the generator does)."""
    final = [json.loads(line) for line in (FIXTURES / f"{bill}.jsonl").read_text().splitlines()]
    if version == "final":
        return final
    change = EXPECTED["bills"][bill]["correction"]
    if change["kind"] == "appended":
        return [r for i, r in enumerate(final) if i not in set(change["lines"])]
    return [change["initial"] if i == change["line"] else r for i, r in enumerate(final)]


def flat_frame(bill: str, version: str, timestamps: tuple[str, ...]) -> pd.DataFrame:
    df = pd.DataFrame(rows(bill, version))
    for col in timestamps:
        df[col] = pd.to_datetime(df[col], utc=True).astype("datetime64[us, UTC]")
    return df


def table(bill: str, version: str) -> str:
    return bill if version == "final" else f"{bill}_initial"


def spec_for(model: str, bill: str, version: str, **overrides) -> ModelSpec:
    recipe = dict(EXPECTED["bills"][bill]["cost_source"])
    for key in ("share", "where"):
        if isinstance(recipe.get(key), dict):
            recipe[key] = recipe[key][model]
    recipe.update(table=table(bill, version), **overrides)
    return ModelSpec.from_dict({
        "name": model, "display_name": model, "owner": "o@example.com", "team": "t",
        "kpi": {"name": "orders", "unit": "count", "value_per_unit": 2.0},
        "interventions": [{"start": START}],
        "attribution": {"method": "its", "series": {"table": "daily_kpis", "date": "day", "value": "orders"}},
        "cost_source": recipe,
    })


def daily_costs(engine, spec: ModelSpec) -> tuple[pd.Series, pd.DataFrame]:
    connector = connector_for(engine)
    res = connector.run(billed_cost_query(spec, START, END, dialect_ops=connector.ops), model=spec.name,
                        purpose="billing", timeout_s=120)
    frame = normalize_days(res.frame)
    frame.columns = [c.lower() for c in frame.columns]
    return billed_cost(frame, spec.cost_source, as_of=FAR, currency="USD", model=spec.name).by_day, frame


def assert_expected(got: pd.Series, bill: str, model: str, version: str) -> None:
    want = EXPECTED["bills"][bill]["daily_cost"][version][model]
    assert [d.isoformat() for d in got.index] == list(want), "the same days, each once, in order"
    for day, value in got.items():
        assert value == pytest.approx(want[day.isoformat()], abs=1e-6), day


# -- flat bills: every warehouse ------------------------------------------------------------------

FLAT = {"warehouse_metering_history": ("start_time", "end_time"), "cur": ("line_item_usage_start_date",)}


@pytest.fixture
def warehouse_tables() -> dict[str, pd.DataFrame]:
    """Both versions of the Snowflake metering history and of the AWS cost-and-usage view."""
    return {table(bill, v): flat_frame(bill, v, ts) for bill, ts in FLAT.items() for v in VERSIONS}


@pytest.mark.parametrize("bill", list(FLAT))
def test_flat_bills_give_the_generated_daily_costs_on_every_warehouse(warehouse_engine, bill):
    for version in VERSIONS:
        for model in MODELS:
            got, frame = daily_costs(warehouse_engine, spec_for(model, bill, version))
            assert len(frame) == len(frame["day"].unique()), "summed per day in the warehouse"
            assert_expected(got, bill, model, version)
    # the late correction changed exactly the corrected January day, for the model it concerns
    costs = EXPECTED["bills"][bill]["daily_cost"]
    changed = {(m, d) for m in MODELS for d in costs["final"][m] if costs["final"][m][d] != costs["initial"][m].get(d)}
    corrected_day = {"warehouse_metering_history": "2026-01-09", "cur": "2026-01-12"}[bill]
    want = {(m, corrected_day) for m in MODELS} if bill == "warehouse_metering_history" else {("churn-scorer", corrected_day)}
    assert changed == want


def test_shared_warehouse_shares_add_up_to_the_metered_credits(duckdb_engine):
    """Two models on one warehouse with fixed shares 0.6 and 0.4: together they pay for every
    credit of ML_SCORING_WH at the price per credit, and nothing of ETL_WH."""
    per_model = [daily_costs(duckdb_engine, spec_for(m, "warehouse_metering_history", "final"))[0] for m in MODELS]
    credits = pd.DataFrame(rows("warehouse_metering_history", "final"))
    scoring = credits[credits["warehouse_name"] == "ML_SCORING_WH"]
    assert sum(s.sum() for s in per_model) == pytest.approx(scoring["credits_used"].sum() * 3.0, abs=1e-6)
    assert per_model[0].sum() / per_model[1].sum() == pytest.approx(0.6 / 0.4)


# -- the BigQuery billing export: nested credits and labels ---------------------------------------

GCP = "gcp_billing_export"


def load_gcp_duckdb(engine) -> None:
    ddl = ("service STRUCT(id VARCHAR, description VARCHAR), sku STRUCT(id VARCHAR, description VARCHAR), "
           "usage_start_time TIMESTAMPTZ, usage_end_time TIMESTAMPTZ, export_time TIMESTAMPTZ, "
           "labels STRUCT(\"key\" VARCHAR, \"value\" VARCHAR)[], cost DOUBLE, currency VARCHAR, "
           "credits STRUCT(name VARCHAR, amount DOUBLE, type VARCHAR)[]")
    raw = engine.raw_connection()
    try:
        con = raw.driver_connection
        for version in VERSIONS:
            name = table(GCP, version)
            con.execute(f"CREATE TABLE {name} ({ddl})")
            cols = ["service", "sku", "usage_start_time", "usage_end_time", "export_time", "labels", "cost",
                    "currency", "credits"]
            con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' for _ in cols)})",
                            [[r[c] for c in cols] for r in rows(GCP, version)])
    finally:
        raw.close()


def load_gcp_bigquery(standin, engine) -> None:
    from google.cloud import bigquery

    F = bigquery.SchemaField
    schema = [
        F("service", "RECORD", fields=[F("id", "STRING"), F("description", "STRING")]),
        F("sku", "RECORD", fields=[F("id", "STRING"), F("description", "STRING")]),
        F("usage_start_time", "TIMESTAMP"), F("usage_end_time", "TIMESTAMP"), F("export_time", "TIMESTAMP"),
        F("labels", "RECORD", mode="REPEATED", fields=[F("key", "STRING"), F("value", "STRING")]),
        F("cost", "FLOAT64"), F("currency", "STRING"),
        F("credits", "RECORD", mode="REPEATED", fields=[F("name", "STRING"), F("amount", "FLOAT64"), F("type", "STRING")]),
    ]
    dataset = engine.url.database
    client = standin.client(dataset)
    for version in VERSIONS:
        config = bigquery.LoadJobConfig(schema=schema, write_disposition="WRITE_TRUNCATE",
                                        source_format="NEWLINE_DELIMITED_JSON")
        client.load_table_from_json(rows(GCP, version), f"{standin.project}.{dataset}.{table(GCP, version)}",
                                    job_config=config).result()


@pytest.fixture
def gcp_engines(duckdb_engine, bigquery_standin):
    """The billing export (both versions) in DuckDB and in the BigQuery emulator."""
    load_gcp_duckdb(duckdb_engine)
    bq = bigquery_standin.engine({})
    load_gcp_bigquery(bigquery_standin, bq)
    yield {"duckdb": duckdb_engine, "bigquery": bq}
    bq.dispose()


def test_bigquery_billing_export_net_cost_with_credits_on_duckdb_and_bigquery(gcp_engines):
    for name, engine in gcp_engines.items():
        for version in VERSIONS:
            for model in MODELS:
                got, frame = daily_costs(engine, spec_for(model, GCP, version))
                assert set(frame["currency"]) == {"USD"}, name
                assert_expected(got, GCP, model, version)


def test_bigquery_billing_export_where_on_a_struct_field(gcp_engines):
    """A where-filter on a field of the export's ``service`` struct, beside the label filter: only
    Vertex AI rows of the model, computed here from the fixture rows (net of credits)."""
    want: dict[str, float] = {}
    for r in rows(GCP, "final"):
        labelled = {"key": "valuetrack-model", "value": "churn-scorer"} in r["labels"]
        if labelled and r["service"]["description"] == "Vertex AI":
            day = r["usage_start_time"][:10]
            want[day] = want.get(day, 0.0) + r["cost"] + sum(c["amount"] for c in r["credits"])
    assert want
    for engine in gcp_engines.values():
        spec = spec_for("churn-scorer", GCP, "final", where="service.description = 'Vertex AI'")
        got, _ = daily_costs(engine, spec)
        assert {d.isoformat(): round(v, 6) for d, v in got.items()} == {d: round(v, 6) for d, v in sorted(want.items())}


def test_nested_columns_are_refused_clearly_where_not_supported():
    from valuetrack.connectors.athena import AthenaOps
    from valuetrack.connectors.snowflake import SnowflakeOps

    spec = spec_for("churn-scorer", GCP, "final")
    for ops in (SnowflakeOps(), AthenaOps()):
        with pytest.raises(ParameterError, match="cost_source.credits .* BigQuery and DuckDB only"):
            billed_cost_query(spec, START, END, dialect_ops=ops)
