"""Connector behaviour on a real DuckDB: timeout + cancel, retries, errors, connection check, preview."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from valuetrack.config import ConnectionSettings
from valuetrack.connectors import connector_class, get_connector, test_connection as check_connection
from valuetrack.connectors.base import Connector
from valuetrack.connectors.duckdb import DuckDBConnector
from valuetrack.errors import ConfigError, MissingDependency, UnsafeSQL, WarehouseError

SLOW = sa.text("SELECT count(*) FROM range(200000000) a, range(1000) b WHERE (a.range * b.range) % 7 = 3")


@pytest.fixture
def duck(tmp_path):
    c = get_connector(ConnectionSettings("wh", f"duckdb:///{tmp_path / 'w.duckdb'}", {"retry_base_s": 0.001}))
    with c.engine.begin() as k:
        k.exec_driver_sql("CREATE TABLE exposures (customer_id INT, scored_at TIMESTAMP, arm VARCHAR)")
        k.exec_driver_sql("INSERT INTO exposures VALUES (1, '2025-01-01 10:00', 'model'), (2, '2025-01-03 10:00', 'holdout')")
    yield c
    c.dispose()


def test_registry_picks_the_class_by_dialect():
    assert connector_class("duckdb") is DuckDBConnector
    assert connector_class("awsathena").__name__ == "AthenaConnector"
    with pytest.raises(ConfigError, match="no connector for URL scheme 'mysql'"):
        get_connector(ConnectionSettings("x", "mysql://h/db"))


def test_timeout_cancels_the_running_query(duck):
    t0 = time.perf_counter()
    with pytest.raises(WarehouseError, match="timed out after 0.3 s; the warehouse job was cancelled"):
        duck.run(SLOW, model="m-1", purpose="ab", timeout_s=0.3)
    assert time.perf_counter() - t0 < 5  # interrupted, not run to the end
    # the connection is usable right after
    assert duck.run(sa.select(sa.literal(1).label("one")), model="m-1", purpose="ab").frame["one"].tolist() == [1]


class _Flaky(DuckDBConnector):
    """Fails the first ``failures`` submissions with a throttling error, then runs for real."""

    failures = 2

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.calls = 0
        self.slept: list[float] = []
        self._sleep = self.slept.append

    def execute(self, cursor, statement, parameters, ctx):
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("ThrottlingException: Rate exceeded")
        super().execute(cursor, statement, parameters, ctx)


def test_transient_errors_are_retried_with_backoff(tmp_path):
    c = _Flaky(ConnectionSettings("wh", f"duckdb:///{tmp_path / 'f.duckdb'}", {"retry_base_s": 1.0, "max_attempts": 4}))
    res = c.run(sa.select(sa.literal(7).label("x")), model="m-1", purpose="ab")
    assert res.frame["x"].tolist() == [7] and res.attempts == 3
    assert len(c.slept) == 2 and 0.5 <= c.slept[0] <= 1.0 and 1.0 <= c.slept[1] <= 2.0  # exponential, jittered


def test_throttling_gives_a_clear_error_after_the_retries(tmp_path):
    c = _Flaky(ConnectionSettings("wh", f"duckdb:///{tmp_path / 'f.duckdb'}", {"max_attempts": 2, "retry_base_s": 0.01}))
    c.failures = 10
    with pytest.raises(WarehouseError, match="failed after 2 attempts.*Rate exceeded"):
        c.run(sa.select(sa.literal(1)), model="m-1", purpose="ab")
    assert c.calls == 2


def test_permanent_errors_are_not_retried(duck):
    with pytest.raises(WarehouseError, match="the ab query of model 'm-1' failed: error: .*no_such_table"):
        duck.run(sa.select(sa.column("x")).select_from(sa.table("no_such_table")), model="m-1", purpose="ab")


def test_test_connection_ok_and_down(duck, tmp_path):
    ok = duck.test_connection()
    assert ok.ok and ok.latency_s is not None and ok.server_version
    down = check_connection(ConnectionSettings("gone", f"duckdb:///{tmp_path}/no/such/dir/x.duckdb"))
    assert not down.ok and "gone" in down.message


def test_connection_check_never_shows_secrets():
    conn = ConnectionSettings("sf", "snowflake://bob:${SF_PASSWORD}@acct/db/sch", {"max_attempts": 1, "timeout_s": 5})
    check = check_connection(conn, {"SF_PASSWORD": "hunter2-very-secret"})
    assert not check.ok
    assert "hunter2-very-secret" not in check.message and "hunter2-very-secret" not in check.url


def test_missing_driver_names_the_install_command(monkeypatch):
    import sys

    cls = connector_class("awsathena")
    monkeypatch.setitem(sys.modules, "pyathena", None)  # as if not installed
    c = cls(ConnectionSettings("a", "awsathena+rest://@athena.eu-west-1.amazonaws.com:443/db"))
    with pytest.raises(MissingDependency, match=r'pip install "valuetrack\[athena\]"'):
        c.engine


def test_preview_quotes_and_binds(duck):
    out = duck.preview("exposures", ["customer_id", "arm"], limit=5, timestamp="scored_at", arm="arm")
    assert len(out["rows"]) == 2 and out["arms"] == ["holdout", "model"]
    assert str(out["date_range"][0]).startswith("2025-01-01")
    for bad in ('exposures; DROP TABLE exposures', 'x"'):
        with pytest.raises(UnsafeSQL):
            duck.preview(bad, ["customer_id"])
    with pytest.raises(UnsafeSQL):
        duck.preview("exposures", ["customer_id, (SELECT 1)"])


def test_query_tag_names_valuetrack_and_the_model(duck):
    assert duck.query_tag("churn-x", "ab") == "valuetrack:churn-x:ab"
    assert isinstance(duck, Connector)
