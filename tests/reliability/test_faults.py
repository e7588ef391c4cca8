"""Injected faults: the warehouse refuses connections, drops mid-result, returns a partial day; the
app database is locked past its busy timeout or the disk is full during a write. Each ends in a
clear error (retried where that makes sense) with the last good results intact and marked stale.
(tests/connectors/test_connectors_base.py already covers a slow query's timeout, throttling retries
and a down DuckDB; this file adds what is missing.)"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.reliability.cases import AS_OF, TRACEBACK, WAREHOUSE_MANIFEST, build_warehouse, run_cli
from tests.reliability.conftest import db_rows, file_digest
from valuetrack.config import ConnectionSettings
from valuetrack.connectors.base import Connector
from valuetrack.connectors.duckdb import DuckDBConnector
from valuetrack.errors import ValuetrackError, WarehouseError
from valuetrack.store import db as store_db
from valuetrack.store.aggregates import AggregateStore
from valuetrack.store.db import dispose_all, open_engine


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the with-block ends: connecting is refused


def test_connection_refused_is_retried_then_a_clear_error() -> None:
    c = Connector(ConnectionSettings("pg", f"postgresql+psycopg://u:pw-s3cret@127.0.0.1:{_closed_port()}/x",
                                     {"max_attempts": 3, "retry_base_s": 0.01}))
    slept: list[float] = []
    c._sleep = slept.append
    with pytest.raises(WarehouseError) as err:
        c.run(sa.select(sa.literal(1)), model="m-1", purpose="ab")
    msg = err.value.message
    assert "unreachable or refused the connection" in msg and "failed after 3 attempts" in msg, msg
    assert len(slept) == 2 and "pw-s3cret" not in msg


class _DropsMidResult(DuckDBConnector):
    """The first ``drops`` attempts stream some rows, then the connection is reset."""

    drops = 1

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.attempts = 0
        self._sleep = lambda s: None

    def _run_once(self, engine: Any, selectable: Any, ctx: Any) -> pd.DataFrame:
        self.attempts += 1
        if self.attempts <= self.drops:
            with engine.connect() as conn:
                result = conn.execute(selectable)
                result.fetchmany(3)  # a few rows arrive, then the connection goes
            raise sa.exc.OperationalError("fetch", {}, ConnectionResetError("Connection reset by peer"))
        return super()._run_once(engine, selectable, ctx)


@pytest.fixture
def wh_workspace(workspace: Path) -> Path:
    build_warehouse(workspace / "sample_data" / "demo.duckdb")
    (workspace / "m.toml").write_text(WAREHOUSE_MANIFEST)
    assert run_cli("models", "register", "--file", workspace / "m.toml").code == 0
    first = run_cli("refresh", "--as-of", str(AS_OF))
    assert first.code == 0, first.out + first.err
    return workspace


def test_drop_mid_result_is_retried_and_completes(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    build_warehouse(path)
    c = _DropsMidResult(ConnectionSettings("wh", f"duckdb:///{path}", {"max_attempts": 3}))
    res = c.run(sa.text("SELECT * FROM outcomes"), model="m-1", purpose="ab")
    assert res.attempts == 2 and len(res.frame) == 600  # the whole result, never the partial one
    c.dispose()


def test_persistent_drop_keeps_the_last_good_aggregates_marked_stale(wh_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import valuetrack.connectors as connectors

    db = f"sqlite:///{wh_workspace / 'valuetrack.db'}"
    dispose_all()
    before = db_rows(db)["ab_aggregates"]
    assert before
    drop = type("AlwaysDrops", (_DropsMidResult,), {"drops": 99})
    monkeypatch.setattr(connectors, "connector_class", lambda dialect: drop)
    run = run_cli("refresh", "--as-of", str(AS_OF + dt.timedelta(days=1)), "--full")
    assert run.code == 1 and not TRACEBACK.search(run.err + run.out)
    assert "failed after 4 attempts" in run.out and "Connection reset by peer" in run.out, run.out
    assert "keep their previous figures, shown as stale" in run.out
    dispose_all()
    assert db_rows(db)["ab_aggregates"] == before  # intact
    status = AggregateStore(open_engine(db)).status("churn-save-offers")
    assert status.stale and "the last refresh failed" in status.reason and status.last_ok is not None


def test_partial_last_day_is_not_read_and_immature_days_are_reread(workspace: Path) -> None:
    """Days still loading (the as-of day, a partly loaded day before it) are stored as immature, so no
    effect leans on them, and are read again by the next refresh, which then sees the late rows."""
    wh = workspace / "sample_data" / "demo.duckdb"
    exp = ("SELECT i AS customer_id, TIMESTAMP '{d} 08:00:00' + INTERVAL (i % 5) HOUR AS scored_at, "
           "'churn-save-offers' AS model_id, CASE WHEN i % 10 = 0 THEN 'holdout' ELSE 'model' END AS arm, "
           "0.5 AS score, 'fr' AS country FROM range({n}) t(i)")
    out = "CREATE TABLE outcomes AS SELECT customer_id, scored_at + INTERVAL 1 HOUR AS event_at, 2.0 AS value, 'purchase' AS event_type FROM exposures"
    last = AS_OF - dt.timedelta(days=1)
    # the last full day is only partly loaded (50 rows), and the as-of day has started (rows to skip)
    build_warehouse(wh, exposures_sql=f"CREATE TABLE exposures AS {exp.format(d=last, n=50)} UNION ALL "
                                      f"{exp.format(d=AS_OF, n=30).replace('i AS customer_id', '1000 + i AS customer_id')}",
                    outcomes_sql=out)
    (workspace / "m.toml").write_text(WAREHOUSE_MANIFEST)
    assert run_cli("models", "register", "--file", workspace / "m.toml").code == 0
    assert run_cli("refresh", "--as-of", str(AS_OF)).code == 0
    dispose_all()
    engine = open_engine(f"sqlite:///{workspace / 'valuetrack.db'}")
    ab = AggregateStore(engine).read_ab("churn-save-offers")
    # the as-of day is read as far as it is loaded; like the partly loaded day before it, it is immature
    assert set(ab["day"]) == {last, AS_OF} and not ab["mature"].any()
    assert int(ab[ab["day"] == last]["n_units"].sum()) == 50
    # the rest of the day lands late; the next refresh re-reads the immature days
    build_warehouse(wh, exposures_sql=f"CREATE TABLE exposures AS {exp.format(d=last, n=400)}", outcomes_sql=out)
    assert run_cli("refresh", "--as-of", str(AS_OF)).code == 0
    ab = AggregateStore(engine).read_ab("churn-save-offers")
    assert set(ab["day"]) == {last} and int(ab["n_units"].sum()) == 400


# ------------------------------------------------------------------------------------------------
# the app database: locked past the busy timeout, and full


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    dispose_all()
    monkeypatch.setattr(store_db, "SQLITE_BUSY_TIMEOUT_MS", 300)
    yield
    dispose_all()


def _lock(path: Path, seconds: float) -> threading.Thread:
    ready = threading.Event()

    def hold() -> None:
        con = sqlite3.connect(str(path), isolation_level=None)
        con.execute("BEGIN EXCLUSIVE")
        ready.set()
        time.sleep(seconds)
        con.execute("ROLLBACK")
        con.close()

    t = threading.Thread(target=hold)
    t.start()
    ready.wait(5)
    return t


def test_locked_app_database_gives_a_clear_error_and_writes_nothing(wh_workspace: Path, short_busy_timeout: None) -> None:
    db = wh_workspace / "valuetrack.db"
    rows, digest = db_rows(f"sqlite:///{db}"), file_digest(db)
    (wh_workspace / "m2.toml").write_text(WAREHOUSE_MANIFEST.replace("4000.0", "4500.0"))
    holder = _lock(db, 2.0)
    try:
        reg = run_cli("models", "register", "--file", wh_workspace / "m2.toml")
        ref = run_cli("refresh", "--as-of", str(AS_OF))
        ret = run_cli("models", "retire", "churn-save-offers", "--json")
    finally:
        holder.join()
    for run in (reg, ref, ret):
        assert run.code == 1 and not TRACEBACK.search(run.err + run.out), run.err
        assert re.search(r"(busy or unavailable|cannot open the app database).*database is locked.*try again", run.err), run.err
    dispose_all()
    assert db_rows(f"sqlite:///{db}") == rows and file_digest(db) == digest


def test_a_short_lock_is_waited_out(wh_workspace: Path, short_busy_timeout: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_db, "SQLITE_BUSY_TIMEOUT_MS", 5000)
    db = wh_workspace / "valuetrack.db"
    (wh_workspace / "m2.toml").write_text(WAREHOUSE_MANIFEST.replace("4000.0", "4500.0"))
    holder = _lock(db, 0.5)
    try:
        run = run_cli("models", "register", "--file", wh_workspace / "m2.toml")
    finally:
        holder.join()
    assert run.code == 0 and "1 updated" in run.out, run.err


def _full_disk(monkeypatch: pytest.MonkeyPatch, spare_pages: int) -> None:
    """Every new app-database connection may grow the file by ``spare_pages`` pages only: a full disk."""
    original = store_db._create

    def create(url: str) -> Any:
        engine = original(url)

        @sa.event.listens_for(engine, "connect")
        def _cap(dbapi_conn: Any, _rec: Any) -> None:
            pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
            dbapi_conn.execute(f"PRAGMA max_page_count = {pages + spare_pages}")

        return engine

    dispose_all()
    monkeypatch.setattr(store_db, "_create", create)


def test_disk_full_during_refresh_keeps_the_last_good_aggregates(wh_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = wh_workspace / "valuetrack.db"
    before = db_rows(f"sqlite:///{db}")
    # more data than the few spare pages can hold
    build_warehouse(wh_workspace / "sample_data" / "demo.duckdb",
                    exposures_sql="CREATE TABLE exposures AS SELECT i AS customer_id, TIMESTAMP '2025-06-28 12:00:00' - "
                                  "INTERVAL (i % 400) DAY AS scored_at, 'churn-save-offers' AS model_id, CASE WHEN i % 2 = 0 "
                                  "THEN 'holdout' ELSE 'model' END AS arm, 0.5 AS score, 'c' || (i % 40) AS country FROM range(40000) t(i)",
                    outcomes_sql="CREATE TABLE outcomes AS SELECT 1 AS customer_id, TIMESTAMP '2025-06-01' AS event_at, 1.0 AS value, 'purchase' AS event_type")
    _full_disk(monkeypatch, spare_pages=3)
    run = run_cli("refresh", "--as-of", str(AS_OF), "--full")
    assert run.code == 1 and not TRACEBACK.search(run.err + run.out), run.err
    assert "full" in run.out, run.out
    monkeypatch.undo()
    dispose_all()
    after = db_rows(f"sqlite:///{db}")
    assert after["ab_aggregates"] == before["ab_aggregates"] and after["models"] == before["models"]
    status = AggregateStore(open_engine(f"sqlite:///{db}")).status("churn-save-offers")
    assert status.stale and "full" in status.reason


def test_disk_full_during_registration_writes_nothing(wh_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = wh_workspace / "valuetrack.db"
    rows = db_rows(f"sqlite:///{db}")
    many = "\n".join(WAREHOUSE_MANIFEST.replace('name = "churn-save-offers"', f'name = "bulk-{i:03d}"')
                     .replace('display_name = "Churn save offers v3"', f'display_name = "{"x" * 190}"') for i in range(200))
    (wh_workspace / "many.toml").write_text(many)
    _full_disk(monkeypatch, spare_pages=2)
    run = run_cli("models", "register", "--file", wh_workspace / "many.toml")
    assert run.code == 1 and not TRACEBACK.search(run.err), run.err
    assert "could not save the change (database or disk is full); nothing was written" in run.err, run.err
    monkeypatch.undo()
    dispose_all()
    assert db_rows(f"sqlite:///{db}") == rows


import re  # noqa: E402  (used by the lock test's message check)

_ = ValuetrackError


def test_kill_9_mid_refresh_then_the_stuck_row_is_marked_abandoned(wh_workspace: Path) -> None:
    """A refresh killed with SIGKILL mid-way leaves its row `running`; the next refresh marks it
    `abandoned`, saying when and why, and the model's status reports it instead of `running` forever."""
    import os
    import signal
    import subprocess
    import sys

    db = wh_workspace / "valuetrack.db"
    script = ("import time, valuetrack.refresh_pull as rp\n"
              "def slow(*a, **k):\n    print('pulling', flush=True); time.sleep(120)\n"
              "rp.pull_model = slow\n"
              f"from valuetrack.cli import main\nmain(['refresh', '--as-of', '{AS_OF}'])\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=wh_workspace, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "VALUETRACK_CONFIG": str(wh_workspace / "valuetrack.toml"),
                                 "PYTHONPATH": str(Path(__file__).resolve().parents[2])})  # this checkout's package
    try:
        assert proc.stdout.readline().strip() == "pulling"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as c:
        stuck = c.execute(sa.text("SELECT id, status, runner FROM refreshes ORDER BY id DESC LIMIT 1")).one()
    engine.dispose()
    assert stuck.status == "running" and stuck.runner.startswith(f"{proc.pid}@")
    run = run_cli("refresh", "--as-of", str(AS_OF))
    assert run.code == 0, run.err
    dispose_all()
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as c:
        row = c.execute(sa.text("SELECT status, finished_at, error FROM refreshes WHERE id = :i"), {"i": stuck.id}).one()
        running = c.execute(sa.text("SELECT count(*) FROM refreshes WHERE status = 'running'")).scalar()
    engine.dispose()
    assert row.status == "abandoned" and row.finished_at is not None and running == 0
    assert f"its process {proc.pid} ended without finishing" in row.error and "marked at" in row.error


def test_a_refresh_still_running_elsewhere_is_left_alone_until_it_is_old(wh_workspace: Path) -> None:
    store = AggregateStore(open_engine(f"sqlite:///{wh_workspace / 'valuetrack.db'}"))
    rid = store.start_refresh("churn-save-offers", as_of=AS_OF)
    with store.engine.begin() as c:  # the same refresh, as run by a live process on another machine
        c.execute(sa.text("UPDATE refreshes SET runner = '123@other-host' WHERE id = :i"), {"i": rid})
    assert store.mark_abandoned() == 0
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=7)
    assert store.mark_abandoned(now=later) == 1
    assert store.status("churn-save-offers").last_attempt["status"] == "abandoned"
    assert "still running 6 h after it began" in store.status("churn-save-offers").reason


def test_a_read_only_app_database_says_so(wh_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not "busy … try again": no retry helps a database this process may not write. (The tests run
    as root, for whom file modes do not make a file read-only; SQLite's query_only gives the same
    "attempt to write a readonly database" error a read-only file or mount does.)"""
    db = wh_workspace / "valuetrack.db"
    original = store_db._create

    def read_only(url: str) -> Any:
        engine = original(url)
        sa.event.listens_for(engine, "connect")(lambda dbapi_conn, _rec: dbapi_conn.execute("PRAGMA query_only = ON"))
        return engine

    dispose_all()
    monkeypatch.setattr(store_db, "_create", read_only)
    rows = db_rows(f"sqlite:///{db}")
    (wh_workspace / "m2.toml").write_text(WAREHOUSE_MANIFEST.replace("4000.0", "4500.0"))
    for argv in (["models", "register", "--file", wh_workspace / "m2.toml"], ["refresh", "--as-of", str(AS_OF)],
                 ["models", "retire", "churn-save-offers"], ["models", "list"]):
        # (SQLite transactions begin with BEGIN IMMEDIATE, so even reads need a writable file)
        run = run_cli(*argv, "--json")
        assert run.code == 1 and not TRACEBACK.search(run.err), run.err
        assert "the app database is read-only" in run.err and "try again" not in run.err, run.err
    dispose_all()
    assert db_rows(f"sqlite:///{db}") == rows
