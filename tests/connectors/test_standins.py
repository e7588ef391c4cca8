"""The stand-in harness itself: the same SQLAlchemy Core runs on all four warehouses.

Every query goes through the real dialect and client library of its warehouse (duckdb-engine,
snowflake-sqlalchemy + snowflake-connector-python, sqlalchemy-bigquery + google-cloud-bigquery,
pyathena + boto3) to a local stand-in. See docs/testing-standins.md.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

import standins

pytestmark = pytest.mark.standin

metadata = sa.MetaData()
exposures = sa.Table(
    "exposures",
    metadata,
    sa.Column("customer_id", sa.BigInteger),
    sa.Column("model_id", sa.String),
    sa.Column("arm", sa.String),
    sa.Column("scored_at", sa.DateTime(timezone=True)),
    sa.Column("score", sa.Float),
    sa.Column("country", sa.String),
)
outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("customer_id", sa.BigInteger),
    sa.Column("event_at", sa.DateTime(timezone=True)),
    sa.Column("event_day", sa.Date),
    sa.Column("event_type", sa.String),
    sa.Column("revenue", sa.Float),
    sa.Column("is_refund", sa.Boolean),
)


class utc_day(FunctionElement):  # noqa: N801 - reads like the SQL function it is
    """Truncate a UTC timestamp to its day. The date part is SQL text, not a bound parameter:
    a bound 'day' becomes two different parameters in SELECT and GROUP BY, which BigQuery and
    DuckDB then refuse as "not in GROUP BY"."""

    type = sa.DateTime(timezone=True)
    inherit_cache = True
    name = "utc_day"


@compiles(utc_day)
def _utc_day_default(element, compiler, **kw):  # DuckDB, Snowflake, Athena (Trino)
    return f"date_trunc('day', {compiler.process(element.clauses, **kw)})"


@compiles(utc_day, "bigquery")
def _utc_day_bigquery(element, compiler, **kw):
    return f"TIMESTAMP_TRUNC({compiler.process(element.clauses, **kw)}, DAY)"


def aggregate_query() -> sa.Select:
    """Join + group by day x arm x country (NULL group), count/sum over a NULL-valued column."""
    # GROUP BY the label: sqlalchemy-bigquery renders a label there by its name (and an
    # unlabelled function by an anonymous name the SELECT never defines)
    day = utc_day(exposures.c.scored_at).label("day")
    return (
        sa.select(
            day,
            exposures.c.arm,
            exposures.c.country,
            sa.func.count().label("n_rows"),
            sa.func.count(outcomes.c.revenue).label("n_revenue"),
            sa.func.sum(outcomes.c.revenue).label("revenue"),
            sa.func.sum(exposures.c.score).label("score_sum"),
            sa.func.max(outcomes.c.event_day).label("last_day"),
        )
        .select_from(exposures.join(outcomes, outcomes.c.customer_id == exposures.c.customer_id))
        .where(
            exposures.c.model_id == sa.bindparam("model", type_=sa.String),
            outcomes.c.event_type == sa.bindparam("event_type", type_=sa.String),
            outcomes.c.event_at >= sa.bindparam("since", type_=sa.TIMESTAMP(timezone=True)),
        )
        .group_by(day, exposures.c.arm, exposures.c.country)
    )


# sa.TIMESTAMP, not sa.DateTime: sqlalchemy-bigquery types a DateTime parameter as DATETIME
# even with timezone=True, and BigQuery does not compare DATETIME with TIMESTAMP columns
PARAMS = {"model": "churn", "event_type": "purchase", "since": dt.datetime(2025, 3, 2, 11, 0, tzinfo=dt.timezone.utc)}


def expected_aggregate(tables: dict[str, pd.DataFrame], model: str, event_type: str, since: dt.datetime) -> list[tuple]:
    """The same aggregate computed by hand in Python."""
    exp = standins.records(tables["exposures"])
    out = standins.records(tables["outcomes"])
    groups: dict[tuple, list[tuple[dict, dict]]] = defaultdict(list)
    for e in exp:
        for o in out:
            if (
                e["customer_id"] is not None
                and e["customer_id"] == o["customer_id"]
                and e["model_id"] == model
                and o["event_type"] == event_type
                and o["event_at"] is not None
                and o["event_at"] >= since
            ):
                day = e["scored_at"].replace(hour=0, minute=0, second=0, microsecond=0) if e["scored_at"] else None
                groups[(day, e["arm"], e["country"])].append((e, o))
    rows = []
    for (day, arm, country), pairs in groups.items():
        revenue = [o["revenue"] for _, o in pairs if o["revenue"] is not None]
        scores = [e["score"] for e, _ in pairs if e["score"] is not None]
        days = [o["event_day"] for _, o in pairs if o["event_day"] is not None]
        rows.append(
            (day, arm, country, len(pairs), len(revenue), sum(revenue) if revenue else None,
             sum(scores) if scores else None, max(days) if days else None)
        )
    return standins.normalize_rows(rows)


def test_same_aggregate_on_all_four(duckdb_engine, snowflake_engine, bigquery_engine, athena_engine, warehouse_tables):
    expected = expected_aggregate(warehouse_tables, **PARAMS)
    assert len(expected) >= 4 and any(r[2] is None for r in expected)  # the data exercises NULLs
    results = {}
    for engine in (duckdb_engine, snowflake_engine, bigquery_engine, athena_engine):
        with engine.connect() as con:
            results[engine.dialect.name] = standins.normalize_rows(con.execute(aggregate_query(), PARAMS).all())
    assert set(results) == {"duckdb", "snowflake", "bigquery", "awsathena"}
    for name, rows in results.items():
        assert rows == expected, name


@pytest.mark.parametrize("country", ["FR", "Côte d'Ivoire", "nowhere", "x' OR '1'='1"])
def test_bound_string_parameter(warehouse_engine, warehouse_tables, country):
    df = warehouse_tables["exposures"]
    expected = int((df["country"] == country).sum())
    core = sa.select(sa.func.count()).select_from(exposures).where(exposures.c.country == sa.bindparam("c"))
    text = sa.text("SELECT count(*) AS n FROM exposures WHERE country = :c")
    with warehouse_engine.connect() as con:
        assert con.execute(core, {"c": country}).scalar_one() == expected
        assert con.execute(text, {"c": country}).scalar_one() == expected
        # a string parameter in the select list, too (typed: BigQuery needs to know it)
        echoed = con.execute(sa.select(sa.bindparam("echo", type_=sa.String)), {"echo": country}).scalar_one()
        assert echoed == country


def test_tables_round_trip(warehouse_engine, warehouse_tables):
    """Every kind of column (with its NULLs) comes back as loaded."""
    for name, table in (("exposures", exposures), ("outcomes", outcomes)):
        df = warehouse_tables[name]
        with warehouse_engine.connect() as con:
            got = standins.normalize_rows(con.execute(sa.select(table)).all())
        want = standins.normalize_rows(tuple(r.values()) for r in standins.records(df))
        assert got == want, name


def test_athena_manual_queue(athena_standin, warehouse_tables):
    """Without the automatic hook, queue_result_for() queues a Core statement's result."""
    engine = athena_standin.engine(warehouse_tables, auto_queue=False)
    try:
        stmt = sa.select(sa.func.count().label("n")).select_from(exposures).where(exposures.c.arm == sa.bindparam("arm"))
        athena_standin.queue_result_for(engine, stmt, {"arm": "holdout"})
        with engine.connect() as con:
            assert con.execute(stmt, {"arm": "holdout"}).scalar_one() == 3
    finally:
        athena_standin.dispose(engine)


def test_column_kinds(warehouse_tables):
    assert standins.column_kinds(warehouse_tables["exposures"]) == {
        "customer_id": "int", "model_id": "str", "arm": "str", "scored_at": "timestamp_tz",
        "score": "float", "country": "str",
    }
    assert standins.column_kinds(warehouse_tables["outcomes"])["event_day"] == "date"
    assert standins.column_kinds(warehouse_tables["outcomes"])["is_refund"] == "bool"


@pytest.mark.parametrize("ci, asked, outcome", [("true", "skip", "fail"), ("", "", "fail"), ("", "skip", "skip")],
                         ids=["ci-asked-to-skip", "local-default", "local-asked-to-skip"])
def test_a_missing_stand_in_fails_in_ci_even_when_asked_to_skip(monkeypatch, ci, asked, outcome) -> None:
    """The failure policy (standins.missing): a missing stand-in fails the test; only a developer's
    VALUETRACK_STANDINS=skip outside CI turns that into an explicit skip, never in CI."""
    from _pytest.outcomes import Failed, Skipped

    monkeypatch.setenv("CI", ci) if ci else monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("VALUETRACK_STANDINS", asked)
    with pytest.raises(Skipped if outcome == "skip" else Failed, match="is missing: install it"):
        standins.missing("the BigQuery stand-in", "install it")
