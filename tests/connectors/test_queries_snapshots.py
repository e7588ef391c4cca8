"""Compiled SQL of each dialect, kept as reviewed snapshot files; each parses in its dialect.

The stand-ins all run DuckDB underneath, so these snapshots are the review surface for what the
real services will receive. Regenerate after a reviewed change with
``VALUETRACK_UPDATE_SNAPSHOTS=1 pytest tests/connectors/test_queries_snapshots.py``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import sqlglot

from tests.connectors.test_queries_fixture import make_spec
from valuetrack.connectors import connector_class
from valuetrack.queries import (ab_aggregate, billed_cost_query, health_queries, membership_query, series_batch_query,
                                shared_units_query)
from valuetrack.errors import ParameterError
from valuetrack.registry.spec import CostSource

SNAPSHOTS = Path(__file__).parent / "snapshots"
DIALECTS = {"duckdb": "duckdb", "bigquery": "bigquery", "snowflake": "snowflake", "awsathena": "athena"}


def _dialect(name: str):
    if name == "duckdb":
        import duckdb_engine

        return duckdb_engine.Dialect()
    if name == "bigquery":
        from sqlalchemy_bigquery import BigQueryDialect

        return BigQueryDialect()
    if name == "snowflake":
        from snowflake.sqlalchemy.snowdialect import SnowflakeDialect

        return SnowflakeDialect()
    from pyathena.sqlalchemy.rest import AthenaRestDialect

    return AthenaRestDialect()


def _reading(spec, name: str, tz: str, **exposures):
    import dataclasses

    ex = dataclasses.replace(spec.attribution.exposures, **exposures)
    return spec.replace(name=name, timezone=tz, attribution=dataclasses.replace(spec.attribution, exposures=ex))


def _queries(ops):
    day = dt.date
    spec = make_spec("mean", covariate_days=7, segment=True)
    hq = health_queries(spec, start=day(2025, 4, 1), end=day(2025, 4, 30), bin_edges=[0.25, 0.5, 0.75],
                        reference=(day(2025, 3, 1), day(2025, 3, 28)), dialect_ops=ops)
    import dataclasses

    from valuetrack.registry.spec import ModelSpec

    twin = dataclasses.replace(spec, name="twin-model")
    series = ModelSpec.from_dict({
        "name": "orders-forecast", "display_name": "Orders forecast", "owner": "o@example.com", "team": "t",
        "kpi": {"name": "orders", "unit": "count", "value_per_unit": 2.0},
        "interventions": [{"start": day(2025, 4, 10)}],
        "attribution": {"method": "structural", "series": {
            "table": "analytics.daily_kpis", "date": "kpi_date", "value": "orders", "controls": ["visits", "sessions"]}},
    })
    batch = health_queries([spec, twin], start=day(2025, 4, 1), end=day(2025, 4, 30),
                           bin_edges={spec.name: [0.25, 0.5, 0.75], twin.name: [0.3, 0.6]},
                           reference=(day(2025, 3, 1), day(2025, 3, 28)), dialect_ops=ops)
    out = {
        "batch_ab_mean_cuped_segment": ab_aggregate([spec, twin], cohort_start=day(2025, 4, 1),
                                                    cohort_end=day(2025, 4, 30), as_of=day(2025, 5, 15), dialect_ops=ops),
        "batch_health_daily": batch.daily_exposures,
        "batch_health_histogram": batch.score_histogram,
        "batch_health_edges": batch.reference_edges,
        "batch_health_freshness": batch.freshness,
        "ab_mean_cuped_segment": ab_aggregate(spec, cohort_start=day(2025, 4, 1), cohort_end=day(2025, 4, 30),
                                              as_of=day(2025, 5, 15), dialect_ops=ops),
        "ab_conversion": ab_aggregate(make_spec("conversion", covariate_days=0, segment=False, where=None),
                                      cohort_start=day(2025, 4, 1), cohort_end=day(2025, 4, 30),
                                      as_of=day(2025, 5, 15), dialect_ops=ops),
        "health_daily": hq.daily_exposures,
        "health_histogram": hq.score_histogram,
        "health_edges": hq.reference_edges,
        "health_freshness": hq.freshness,
        # overlap counted once: one GROUP BY on each unit's bitmask of the models that served it, the
        # models sharing the exposures table read by one scan; at most 4,097 rows, as the refresh asks
        "overlap_membership": membership_query([spec, spec.replace(name="other-model")], as_of=day(2025, 5, 15),
                                               dialect_ops=ops, limit=4097),
        # overlap counted again only for the units served since the stored counts' base day (D64):
        # their masks now, before the base day and before the new settled day; one scan of the
        # shared table (two time zones: each model's instants picked by its zone number), a model
        # without a model column read on its own
        "overlap_changes": membership_query(
            [spec, _reading(spec, "other-model", "Asia/Tokyo"), _reading(spec, "every-model", "Europe/Paris", model=None)],
            as_of=day(2025, 5, 15), since=day(2025, 4, 20), settled=day(2025, 4, 28), dialect_ops=ops, limit=4097),
        # pairs: one scan for the models sharing the table through its model column (two time zones,
        # two treatment labels), a model without a model column read on its own
        "overlap_pairs_mixed": shared_units_query(
            [spec, _reading(spec, "other-model", "Asia/Tokyo", treatment="shadow"),
             _reading(spec, "every-model", "Europe/Paris", model=None)], as_of=day(2025, 5, 15), dialect_ops=ops),
        # the daily series of two models reading one KPI table (one's KPI is the other's control)
        "batch_series": series_batch_query(
            [series, series.replace(name="visits-forecast", attribution=dataclasses.replace(
                series.attribution, series=dataclasses.replace(series.attribution.series, value="visits",
                                                              controls=("orders",))))],
            day(2025, 4, 1), day(2025, 4, 30), dialect_ops=ops),
        # cost from the bill: a flat bill (Snowflake metering) with a where-filter and a constant currency
        "billing_metering": billed_cost_query(
            spec.replace(cost_source=CostSource(table="account_usage.warehouse_metering_history", date="start_time",
                                                amount="credits_used", currency="USD",
                                                where="warehouse_name = 'ML_SCORING_WH'", price_per_unit=3.0,
                                                share=0.6)),
            day(2025, 4, 1), day(2025, 4, 30), dialect_ops=ops),
    }
    try:  # the BigQuery billing export: nested credits and labels (UNNEST), on BigQuery and DuckDB only
        out["billing_gcp_export"] = billed_cost_query(
            spec.replace(cost_source=CostSource(table="billing_admin.gcp_billing_export_v1", date="usage_start_time",
                                                amount="cost", currency_column="currency", credits="credits",
                                                labels="labels", label_key="valuetrack-model",
                                                where="service.description = 'Vertex AI'")),
            day(2025, 4, 1), day(2025, 4, 30), dialect_ops=ops)
    except ParameterError:
        pass
    return out


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_compiled_sql_matches_snapshot_and_parses(dialect):
    ops = connector_class(dialect).ops
    d = _dialect(dialect)
    update = os.environ.get("VALUETRACK_UPDATE_SNAPSHOTS") == "1"
    for name, stmt in _queries(ops).items():
        compiled = stmt.compile(dialect=d)
        text = f"-- {dialect}: {name} (placeholders as sent; parameter names below)\n-- params: {sorted(compiled.params)}\n{compiled}\n"
        path = SNAPSHOTS / f"{name}.{dialect}.sql"
        if update or not path.exists():
            assert update, f"missing snapshot {path.name}: run with VALUETRACK_UPDATE_SNAPSHOTS=1 and review it"
            path.write_text(text)
        assert path.read_text() == text, f"{path.name} changed: review the diff and update the snapshot"
        # with values inlined, the SQL must parse in the warehouse's own dialect
        literal = str(stmt.compile(dialect=d, compile_kwargs={"literal_binds": True}))
        parsed = sqlglot.parse(literal, read=DIALECTS[dialect])
        assert len(parsed) == 1 and parsed[0] is not None
