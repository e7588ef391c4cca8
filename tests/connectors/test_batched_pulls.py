"""Models sharing an exposures table are read by one query grouped by model (issue 13): the
batched pull must give each model exactly what its own queries give, on DuckDB, Snowflake
(fakesnow), BigQuery (emulator) and Athena (moto), through the real drivers."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pytest

from tests.connectors.standins import connector_for
from tests.connectors.test_queries_fixture import AS_OF, MODEL, make_spec, make_tables
from valuetrack.queries import model_value
from valuetrack.refresh_pull import HEALTH_DAYS, pull_model, pull_models

TWIN = "twin-model"
START = dt.date(2025, 4, 8)  # cohorts from here; the histogram's reference window is the 28 days before


@pytest.fixture
def warehouse_tables() -> dict[str, pd.DataFrame]:
    """The trap fixture plus a second model on the same table: the odd units of the first, again
    (so that the same customers are in both models: the outcomes must join per model and unit),
    with their arms swapped and scores shifted (so that each model has its own histogram edges)."""
    tables = make_tables()
    ex = tables["exposures"]
    twin = ex[(ex.model_id == MODEL) & (ex.customer_id % 2 == 1)].copy()
    twin["model_id"] = TWIN
    twin["arm"] = twin["arm"].map({"model": "holdout", "holdout": "model"}).fillna(twin["arm"])
    twin["score"] = (twin["score"] * 0.5 + 0.4).round(3)
    tables["exposures"] = pd.concat([ex, twin], ignore_index=True)
    for name, col in (("exposures", "scored_at"), ("outcomes", "event_at")):
        tables[name][col] = tables[name][col].dt.tz_localize("UTC")
    return tables


def _specs(aggregation: str) -> list:
    first = make_spec(aggregation, covariate_days=7, segment=True)
    return [first, dataclasses.replace(first, name=TWIN, display_name="Twin")]


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a.astype(object).where(a.notna(), None), b.astype(object).where(b.notna(), None),
                                  check_dtype=False, rtol=1e-9)


@pytest.mark.parametrize("aggregation", ["sum", "conversion"])
def test_a_batch_gives_each_model_what_its_own_queries_give(warehouse_engine, aggregation):
    connector = connector_for(warehouse_engine)
    specs = _specs(aggregation)
    batched = pull_models(specs, connector, as_of=AS_OF, since_days={s.name: START for s in specs},
                          bin_edges={s.name: None for s in specs}, timeout_s=120)
    for spec in specs:
        got = batched[spec.name]
        assert not isinstance(got, Exception), got
        shared = {c["purpose"] for c in got.costs if c.get("batch") == 2}
        assert shared == {"ab", "health-edges", "health-daily", "health-histogram", "health-freshness"}
        alone = pull_model(spec, connector, as_of=AS_OF, since_day=START, timeout_s=120)
        assert not any(c.get("batch") for c in alone.costs)
        assert len(got.ab) > 0
        _same(got.ab, alone.ab)
        _same(got.crossovers, alone.crossovers)
        assert got.bin_edges == pytest.approx(alone.bin_edges)
        for part in ("daily_exposures", "score_histogram", "freshness"):
            _same(got.health[part], alone.health[part])
    a, b = (batched[s.name] for s in specs)
    assert not a.ab[["n", "sum_y"]].equals(b.ab[["n", "sum_y"]])  # the two models really differ
    assert a.bin_edges != b.bin_edges


class _NoBatches:
    """A warehouse that refuses every shared query (say, one too large for a quota) and answers
    the per-model ones: the connector's own code runs, only the shared queries fail."""

    def __init__(self, connector):
        self._connector = connector

    def __getattr__(self, name):
        return getattr(self._connector, name)

    def run(self, stmt, *, model, purpose, timeout_s=None):
        if purpose.endswith("-batch"):
            from valuetrack.errors import WarehouseError

            raise WarehouseError(f"the {purpose} query of model {model!r} failed: quota exceeded")
        return self._connector.run(stmt, model=model, purpose=purpose, timeout_s=timeout_s)


def test_a_failing_batch_falls_back_to_one_query_per_model(duckdb_engine):
    connector = connector_for(duckdb_engine)
    specs = _specs("sum")
    args = dict(as_of=AS_OF, since_days={s.name: START for s in specs}, bin_edges={s.name: None for s in specs},
                timeout_s=60)
    fallback = pull_models(specs, _NoBatches(connector), **args)
    batched = pull_models(specs, connector, **args)
    for spec in specs:
        got, want = fallback[spec.name], batched[spec.name]
        assert not any(c.get("batch") for c in got.costs) and all(c.get("batch") == 2 for c in want.costs)
        _same(got.ab, want.ab)
        _same(got.health["daily_exposures"], want.health["daily_exposures"])
        _same(got.health["score_histogram"], want.health["score_histogram"])


def test_a_model_reading_another_models_rows_is_pulled_beside_the_batch(duckdb_engine):
    """A copy with the same ``model_value`` (issue 16's overlap tests compare such copies) cannot
    share the grouped query (one group per model value): it runs its own and gets the same rows."""
    connector = connector_for(duckdb_engine)
    specs = _specs("sum")
    ex = dataclasses.replace(specs[0].attribution.exposures, model_value=MODEL)
    copy = dataclasses.replace(specs[0], name="churn-copy",
                               attribution=dataclasses.replace(specs[0].attribution, exposures=ex))
    names = [s.name for s in [*specs, copy]]
    got = pull_models([*specs, copy], connector, as_of=AS_OF, since_days={n: START for n in names},
                      bin_edges={n: None for n in names}, timeout_s=60)
    assert not any(isinstance(v, Exception) for v in got.values()), got
    assert all(c.get("batch") == 2 for c in got[specs[0].name].costs)
    assert not any(c.get("batch") for c in got["churn-copy"].costs)
    _same(got["churn-copy"].ab, got[specs[0].name].ab)


def test_guardrails_of_the_same_name_share_one_query(warehouse_engine):
    """Both models guard "refunds" on the same outcomes: one ``guardrail-refunds-batch`` query reads both,
    and each model gets exactly what its own guardrail query gives; a guardrail only one model has
    runs alone."""
    from valuetrack.registry.spec import Guardrail, OutcomeSource

    connector = connector_for(warehouse_engine)
    refunds = Guardrail(name="refunds", harm="increase", tolerance=0.0,
                        outcomes=OutcomeSource("outcomes", "customer_id", "event_at", "value", "event_type = 'view'"))
    views = dataclasses.replace(refunds, name="views_any", aggregation="conversion")
    first, twin = _specs("sum")
    specs = [dataclasses.replace(first, guardrails=(refunds, views)), dataclasses.replace(twin, guardrails=(refunds,))]
    batched = pull_models(specs, connector, as_of=AS_OF, since_days={s.name: START for s in specs},
                          bin_edges={s.name: None for s in specs}, timeout_s=120)
    for spec in specs:
        got = batched[spec.name]
        assert not isinstance(got, Exception), got
        shared = {c["purpose"] for c in got.costs if c.get("batch") == 2}
        assert "guardrail-refunds" in shared and "guardrail-views_any" not in shared
        alone = pull_model(spec, connector, as_of=AS_OF, since_day=START, timeout_s=120)
        assert set(got.guardrails) == set(alone.guardrails) == {g.name for g in spec.guardrails}
        for name in got.guardrails:
            # new guardrails (no stored definition) are read from the start of the history
            assert got.guardrails[name].since_day == alone.guardrails[name].since_day < START
            _same(got.guardrails[name].ab, alone.guardrails[name].ab)
    a, b = (batched[s.name].guardrails["refunds"].ab for s in specs)
    assert len(a) and len(b) and not a[["n", "sum_y"]].equals(b[["n", "sum_y"]])


def _whole_history_counts(tables: dict[str, pd.DataFrame], value: str, tz: str) -> dict:
    """Brute force: a model's exposures per local day and arm, up to the as-of date."""
    ex = tables["exposures"]
    ex = ex[ex.model_id == value]
    day = ex.scored_at.dt.tz_convert(tz).dt.date
    keep = day <= AS_OF
    return ex[keep].assign(day=day[keep]).groupby(["day", "arm"]).size().sort_index().to_dict()


@pytest.mark.parametrize("since", [None, START], ids=["first refresh", "stored counts too short"])
def test_daily_exposures_are_read_over_the_whole_history_in_one_batch(warehouse_engine, warehouse_tables, since):
    """The daily exposure counts (the predictions the cost per 1,000 predictions is charged on, D53)
    are read over the whole history on a first refresh and when asked (``whole_exposures``), still
    by one query for the models sharing the table; the score histogram keeps its own window."""
    connector = connector_for(warehouse_engine)
    specs = _specs("sum")
    got = pull_models(specs, connector, as_of=AS_OF, since_days={s.name: since for s in specs},
                      bin_edges={s.name: (0.25, 0.5, 0.75) for s in specs}, timeout_s=120,
                      whole_exposures={s.name for s in specs})
    hist_from = since or AS_OF - dt.timedelta(days=HEALTH_DAYS - 1)
    for spec in specs:
        pulled = got[spec.name]
        assert not isinstance(pulled, Exception), pulled
        assert pulled.exposures_whole and {c["purpose"]: c.get("batch") for c in pulled.costs}["health-daily"] == 2
        daily = pulled.health["daily_exposures"]
        counts = daily.set_index(["day", "arm"])["n_exposures"].astype(int).sort_index().to_dict()
        assert counts == _whole_history_counts(warehouse_tables, model_value(spec), spec.timezone)
        hist = pulled.health["score_histogram"]
        assert min(daily["day"]) < hist_from and len(hist) and min(hist["day"]) >= hist_from
        assert hist["n"].astype(int).sum() == daily.loc[[d >= hist_from for d in daily["day"]], "n_exposures"].astype(int).sum()
    # without being asked, an incremental pull reads the counts from its since day only
    if since is not None:
        alone = pull_model(specs[0], connector, as_of=AS_OF, since_day=since, timeout_s=120)
        assert not alone.exposures_whole and min(alone.health["daily_exposures"]["day"]) >= since
