"""A guardrail's aggregate is the model's A/B query on the guardrail's outcomes: on the same events it
equals the KPI's aggregate summed over segments, it is re-read incrementally like the KPI's, re-read
in full when its definition changes, and dropped when it leaves the manifest."""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import pandas as pd
import pytest

from tests.connectors.test_queries_fixture import make_spec, make_tables
from valuetrack.config import ConnectionSettings
from valuetrack.connectors import get_connector
from valuetrack.refresh_pull import HISTORY_START, pull_model
from valuetrack.registry.spec import Guardrail, OutcomeSource
from valuetrack.store.aggregates import AggregateStore

SUMS = ["n", "n_units", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy"]


@pytest.fixture(scope="module")
def connector(tmp_path_factory):
    path = tmp_path_factory.mktemp("wh") / "wh.duckdb"
    con = duckdb.connect(str(path))
    for name, frame in make_tables().items():
        con.register("_src", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _src")
        con.unregister("_src")
    con.close()
    return get_connector(ConnectionSettings("wh", f"duckdb:///{path}"))


@pytest.fixture
def store(tmp_path):
    from valuetrack.store.db import open_engine

    return AggregateStore(open_engine(f"sqlite:///{tmp_path / 'app.db'}"))


def with_guardrail(where: str | None = "event_type = 'purchase'"):
    spec = make_spec("sum")
    g = Guardrail(name="same_events", harm="decrease", tolerance=0.0,
                  outcomes=OutcomeSource("outcomes", "customer_id", "event_at", "value", where))
    return dataclasses.replace(spec, guardrails=(g,))


def refresh(store, spec, connector, as_of):
    st = store.status(spec.name)
    rid = store.start_refresh(spec.name, as_of=as_of, since_day=st.next_since_day)
    pulled = pull_model(spec, connector, as_of=as_of, since_day=st.next_since_day,
                        guardrail_definitions=store.guardrail_definitions(spec.name))
    store.save(rid, pulled)
    return pulled


def by_day_arm(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.groupby(["day", "arm"])[SUMS].sum().sort_index()


def test_guardrail_on_the_kpis_events_equals_the_kpis_aggregate(store, connector) -> None:
    spec = with_guardrail()
    pulled = refresh(store, spec, connector, dt.date(2025, 4, 10))
    assert [c["purpose"] for c in pulled.costs].count("guardrail-same_events") == 1
    kpi = by_day_arm(store.read_ab(spec.name))
    guardrail = by_day_arm(store.read_guardrails(spec.name).drop(columns=["guardrail"]))
    pd.testing.assert_frame_equal(guardrail, kpi)
    assert len(kpi) > 0


def test_incremental_then_a_changed_definition_rereads_everything(store, connector) -> None:
    spec = with_guardrail()
    first = refresh(store, spec, connector, dt.date(2025, 4, 10))
    assert first.guardrails["same_events"].since_day == HISTORY_START
    second = refresh(store, spec, connector, dt.date(2025, 11, 10))
    assert second.guardrails["same_events"].since_day == second.since_day > HISTORY_START
    # incremental reads give what one full read gives
    kpi = by_day_arm(store.read_ab(spec.name))
    pd.testing.assert_frame_equal(by_day_arm(store.read_guardrails(spec.name).drop(columns=["guardrail"])), kpi)
    # another filter: the guardrail is read from the start again and its old rows are gone
    changed = with_guardrail("event_type = 'view'")
    third = refresh(store, changed, connector, dt.date(2025, 11, 11))
    assert third.guardrails["same_events"].since_day == HISTORY_START
    full = pull_model(changed, connector, as_of=dt.date(2025, 11, 11)).guardrails["same_events"].ab
    stored = store.read_guardrails(spec.name).drop(columns=["guardrail"])
    pd.testing.assert_frame_equal(by_day_arm(stored), by_day_arm(full))
    assert by_day_arm(stored)["sum_y"].sum() != kpi["sum_y"].sum()
    assert set(store.guardrail_definitions(spec.name).values()) == {third.guardrails["same_events"].definition}
    # a guardrail removed from the manifest leaves nothing behind
    refresh(store, make_spec("sum"), connector, dt.date(2025, 11, 12))
    assert store.read_guardrails(spec.name).empty
