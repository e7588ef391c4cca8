"""The aggregates cache: incremental refresh, one transaction, failures leave the old figures."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
import sqlalchemy as sa

from tests.connectors.test_queries_fixture import make_spec, make_tables
from valuetrack.config import ConnectionSettings
from valuetrack.connectors import get_connector
from valuetrack.connectors.duckdb import DuckDBConnector
from valuetrack.errors import WarehouseError
from valuetrack.refresh_pull import pull_model
from valuetrack.store.aggregates import AggregateStore, ab_aggregates, refreshes


@pytest.fixture(scope="module")
def wh_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("wh") / "wh.duckdb"
    con = duckdb.connect(str(path))
    for name, frame in make_tables().items():
        con.register("_src", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _src")
        con.unregister("_src")
    con.close()
    return path


@pytest.fixture
def store(tmp_path):
    from valuetrack.store.db import open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'app.db'}")  # migrated to head: 0001 + 0002
    return AggregateStore(engine)


def _refresh(store, spec, connector, as_of):
    st = store.status(spec.name)
    rid = store.start_refresh(spec.name, as_of=as_of, since_day=st.next_since_day)
    try:
        pulled = pull_model(spec, connector, as_of=as_of, since_day=st.next_since_day)
    except WarehouseError as exc:
        store.fail_refresh(rid, exc.message)
        raise
    store.save(rid, pulled)
    return pulled


def test_incremental_refresh_rereads_only_immature_cohorts(store, wh_path):
    spec = make_spec("sum")
    connector = get_connector(ConnectionSettings("wh", f"duckdb:///{wh_path}"))
    first = _refresh(store, spec, connector, dt.date(2025, 4, 10))
    assert first.since_day == dt.date(2000, 1, 1)
    st = store.status(spec.name)
    assert not st.stale and st.next_since_day == dt.date(2025, 3, 30)  # as_of - 10 - 2 + 1
    before = store.read_ab(spec.name)
    second = _refresh(store, spec, connector, dt.date(2025, 11, 10))
    assert second.since_day == dt.date(2025, 3, 30)
    after = store.read_ab(spec.name)
    # final days kept as they were, re-read days now mature
    old = before[before.day < dt.date(2025, 3, 30)].reset_index(drop=True)
    assert old.equals(after[after.day < dt.date(2025, 3, 30)].reset_index(drop=True))
    assert after[after.day <= dt.date(2025, 10, 29)]["mature"].all()
    # the incremental result equals a full refresh
    full = pull_model(spec, connector, as_of=dt.date(2025, 11, 10)).ab
    assert after[["n", "sum_y", "sum_y2", "sum_xy"]].sum().tolist() == full[["n", "sum_y", "sum_y2", "sum_xy"]].sum().tolist()
    hist = store.refreshes(spec.name)
    assert list(hist["status"]) == ["ok", "ok"] and hist.iloc[0]["cost"]["total"]["queries"] >= 3
    # the totals over segments stored with the rows (D61) are the rows summed now, bit for bit
    for before in (None, dt.date(2025, 4, 2), dt.date(2025, 11, 10)):
        assert store.read_ab_by_day(spec.name, before).equals(_summed(store, spec.name, before))
    assert not store.read_health(spec.name)["daily_exposures"].empty


def _summed(store, model, before=None):
    """The stored A/B rows summed over segments by the database at the time of reading (what
    read_ab_by_day did before D61)."""
    t = ab_aggregates
    sums = [sa.func.sum(t.c[k]).label(k) for k in ("n", "n_units", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")]
    stmt = (sa.select(t.c.day, t.c.arm, sa.literal("").label("segment"), *sums,
                      sa.func.min(sa.cast(t.c.mature, sa.Integer)).label("mature"))
            .where(t.c.model_name == model, t.c.day < (before or dt.date(9999, 1, 1)))
            .group_by(t.c.day, t.c.arm).order_by(t.c.day, t.c.arm))
    frame = store._frame(stmt)
    frame["mature"] = frame["mature"].astype(bool)
    return frame


class _DownConnector(DuckDBConnector):
    def execute(self, cursor, statement, parameters, ctx):
        raise ConnectionRefusedError("connection refused by host (secret-token-123)")


def test_a_down_warehouse_leaves_stored_aggregates_intact_and_stale(store, wh_path):
    spec = make_spec("sum")
    ok = get_connector(ConnectionSettings("wh", f"duckdb:///{wh_path}"))
    _refresh(store, spec, ok, dt.date(2025, 5, 1))
    before = store.read_ab(spec.name)
    down = _DownConnector(ConnectionSettings("wh", f"duckdb:///{wh_path}", {"max_attempts": 3, "retry_base_s": 0.001,
                                                                           "token": "secret-token-123"}))
    with pytest.raises(WarehouseError, match="failed after 3 attempts"):
        _refresh(store, spec, down, dt.date(2025, 6, 1))
    assert store.read_ab(spec.name).equals(before)
    st = store.status(spec.name)
    assert st.stale and "failed" in st.reason and st.last_ok["as_of"] == dt.date(2025, 5, 1)
    assert "secret-token-123" not in st.last_attempt["error"]
    # all models' statuses in one query (what a refresh reads) say the same, never-refreshed ones included
    assert store.statuses([spec.name, "never-refreshed"]) == {spec.name: st,
                                                              "never-refreshed": store.status("never-refreshed")}


def test_a_failed_write_rolls_back(store, wh_path):
    spec = make_spec("sum")
    connector = get_connector(ConnectionSettings("wh", f"duckdb:///{wh_path}"))
    _refresh(store, spec, connector, dt.date(2025, 5, 1))
    before = store.read_ab(spec.name)
    pulled = pull_model(spec, connector, as_of=dt.date(2025, 6, 1), since_day=dt.date(2025, 3, 1))
    broken = pulled.ab.copy()
    broken = __import__("pandas").concat([broken, broken.iloc[:1]])  # duplicate primary key
    rid = store.start_refresh(spec.name, as_of=dt.date(2025, 6, 1))
    with pytest.raises(sa.exc.IntegrityError):
        store.save(rid, pulled.__class__(**{**pulled.__dict__, "ab": broken}))
    assert store.read_ab(spec.name).equals(before)
    assert store.read_ab_by_day(spec.name).equals(_summed(store, spec.name))  # the totals too
    assert store.status(spec.name).stale
