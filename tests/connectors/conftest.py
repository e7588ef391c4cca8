"""Fixtures: the same tables in DuckDB, Snowflake (fakesnow), BigQuery (local-bigquery) and
Athena (moto + DuckDB mirror), each behind a ready SQLAlchemy ``Engine``.

See docs/testing-standins.md. A stand-in that cannot start FAILS the tests that need it (always
in CI; locally too unless VALUETRACK_STANDINS=skip is set): it never skips silently.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

# tests/ is not a package: make the sibling helper importable under any --import-mode
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import standins  # noqa: E402

WAREHOUSES = ("duckdb", "snowflake", "bigquery", "athena")
STANDIN_FIXTURES = {
    "snowflake_standin", "bigquery_standin", "athena_standin",
    "snowflake_engine", "bigquery_engine", "athena_engine", "athena",
    "warehouse_engine",
}


# one instance of each server per session; the subprocess ones are launched side by side as
# soon as the first is needed, which saves their start-up times running one after the other
_SERVERS: dict[str, Any] = {}
_NEEDED: set[str] = set()


def _server(name: str) -> Any:
    if name not in _SERVERS:
        _SERVERS[name] = {
            "snowflake": standins.SnowflakeStandin,
            "bigquery": standins.BigQueryStandin,
            "athena": standins.AthenaStandin,
        }[name]()
    return _SERVERS[name]


def _launch_needed() -> None:
    for name in sorted(_NEEDED & {"snowflake", "bigquery"}):
        with _suppress():  # a launch error is raised again, with its message, by start()
            _server(name).launch()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for server in _SERVERS.values():
        with _suppress():
            server.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "warehouse_engine" in names:
            _NEEDED.update(("snowflake", "bigquery", "athena"))
        _NEEDED.update(w for w in ("snowflake", "bigquery", "athena") if names & {f"{w}_standin", f"{w}_engine"})
        if "athena" in names:
            _NEEDED.add("athena")
        if names & STANDIN_FIXTURES:
            item.add_marker(pytest.mark.standin)
        if names & {"bigquery_engine", "bigquery_standin", "warehouse_engine"}:
            # sqlalchemy-bigquery falls back to REST when google-cloud-bigquery-storage is
            # absent, which is what we want against the emulator
            item.add_marker(pytest.mark.filterwarnings("ignore:Cannot create BigQuery Storage client:UserWarning"))


def _start(name: str, standin: Any) -> Any:
    _launch_needed()
    try:
        return standin.start()
    except Exception as exc:  # noqa: BLE001 - every cause gets the same clear message
        with _suppress():
            standin.stop()
        message = standins.unavailable_message(name, exc)
        if standins.may_skip():
            pytest.skip(message)  # only with VALUETRACK_STANDINS=skip set by hand; never under CI
        pytest.fail(message, pytrace=False)


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


# -- servers (one per test session) -----------------------------------------------------------


@pytest.fixture(scope="session")
def snowflake_standin() -> Iterator[standins.SnowflakeStandin]:
    """fakesnow server subprocess (started once per session)."""
    standin = _start("Snowflake (fakesnow)", _server("snowflake"))
    yield standin
    standin.stop()


@pytest.fixture(scope="session")
def bigquery_standin() -> Iterator[standins.BigQueryStandin]:
    """local-bigquery emulator subprocess from .venvs/bigquery (started once per session)."""
    standin = _start("BigQuery (local-bigquery)", _server("bigquery"))
    yield standin
    standin.stop()


@pytest.fixture(scope="session")
def athena_standin() -> Iterator[standins.AthenaStandin]:
    """moto server (S3 + Athena) in a thread (started once per session)."""
    standin = _start("Athena (moto)", _server("athena"))
    yield standin
    standin.stop()


# -- data -------------------------------------------------------------------------------------


def _utc(*args: int) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime(*args, tzinfo=dt.timezone.utc))


@pytest.fixture
def warehouse_tables() -> dict[str, pd.DataFrame]:
    """Small exposures/outcomes tables (override this fixture to load other data).

    Columns cover every kind the loaders handle, each with a NULL: int, float, str, bool, date,
    UTC timestamp. Names are lower-case so one ``sa.Table`` fits all four warehouses.
    """
    exposures = pd.DataFrame(
        {
            "customer_id": pd.array([1, 2, 3, 4, 5, 6, 7, 8], dtype="Int64"),
            "model_id": ["churn", "churn", "churn", "churn", "churn", "churn", "upsell", "churn"],
            "arm": ["model", "holdout", "model", "model", "holdout", "model", "model", "holdout"],
            "scored_at": pd.Series(
                [
                    _utc(2025, 3, 1, 8, 0), _utc(2025, 3, 1, 23, 59, 59), _utc(2025, 3, 2, 0, 0, 1),
                    _utc(2025, 3, 2, 12, 30), _utc(2025, 3, 2, 13, 0), _utc(2025, 3, 3, 9, 15),
                    _utc(2025, 3, 1, 10, 0), pd.NaT,
                ],
                dtype="datetime64[us, UTC]",
            ),
            "score": [0.91, 0.12, None, 0.55, 0.33, 0.78, 0.5, 0.2],
            "country": ["FR", "FR", "Côte d'Ivoire", None, "FR", "Côte d'Ivoire", "DE", "FR"],
        }
    )
    outcomes = pd.DataFrame(
        {
            "customer_id": pd.array([1, 1, 2, 3, 4, 5, 6, 6, 7, 9], dtype="Int64"),
            "event_at": pd.Series(
                [
                    _utc(2025, 3, 2, 10, 0), _utc(2025, 3, 5, 10, 0), _utc(2025, 3, 3, 0, 0),
                    _utc(2025, 3, 4, 18, 0), _utc(2025, 3, 3, 7, 0), _utc(2025, 3, 9, 1, 0),
                    _utc(2025, 3, 4, 2, 0), _utc(2025, 3, 4, 3, 0), _utc(2025, 3, 2, 5, 0), None,
                ],
                dtype="datetime64[us, UTC]",
            ),
            "event_day": [
                dt.date(2025, 3, 2), dt.date(2025, 3, 5), dt.date(2025, 3, 3), dt.date(2025, 3, 4),
                dt.date(2025, 3, 3), dt.date(2025, 3, 9), dt.date(2025, 3, 4), dt.date(2025, 3, 4),
                dt.date(2025, 3, 2), None,
            ],
            "event_type": ["purchase", "purchase", "purchase", "visit", "purchase", "purchase",
                           "purchase", "purchase", "purchase", "purchase"],
            "revenue": [10.5, 4.25, 7.0, None, None, 12.0, 3.5, 1.25, 99.0, 5.0],
            "is_refund": pd.array([False, False, True, False, None, False, False, True, False, False], dtype="boolean"),
        }
    )
    return {"exposures": exposures, "outcomes": outcomes}


# -- engines (one fresh database per test) ----------------------------------------------------


@pytest.fixture
def duckdb_engine(tmp_path: Path, warehouse_tables: dict[str, pd.DataFrame]) -> Iterator[sa.Engine]:
    """duckdb-engine on a DuckDB file in tmp_path holding ``warehouse_tables`` (session TZ UTC)."""
    engine = standins.make_duckdb_engine(tmp_path / "warehouse.duckdb", warehouse_tables)
    yield engine
    engine.dispose()


@pytest.fixture
def snowflake_engine(snowflake_standin: standins.SnowflakeStandin, warehouse_tables: dict[str, pd.DataFrame]) -> Iterator[sa.Engine]:
    """snowflake-sqlalchemy + the real connector on a fresh fakesnow database."""
    engine = snowflake_standin.engine(warehouse_tables)
    yield engine
    engine.dispose()


@pytest.fixture
def bigquery_engine(bigquery_standin: standins.BigQueryStandin, warehouse_tables: dict[str, pd.DataFrame]) -> Iterator[sa.Engine]:
    """sqlalchemy-bigquery (user_supplied_client) on a fresh dataset of the emulator."""
    engine = bigquery_standin.engine(warehouse_tables)
    yield engine
    engine.dispose()


@dataclass
class AthenaHandle:
    """The Athena engine of a test with its mirror and manual result queueing."""

    standin: standins.AthenaStandin
    engine: sa.Engine

    def queue_result_for(self, statement: Any, parameters: dict[str, Any] | None = None) -> dict:
        """Queue the result of ``statement`` (SQL text or Core selectable) in moto. Only needed
        on an engine made with ``auto_queue=False``; ``athena_engine`` queues automatically."""
        return self.standin.queue_result_for(self.engine, statement, parameters)

    @property
    def mirror(self) -> Any:
        return self.standin.mirror(self.engine)

    def load(self, tables: dict[str, pd.DataFrame]) -> None:
        self.standin.load(self.engine, tables)


@pytest.fixture
def athena(athena_standin: standins.AthenaStandin, warehouse_tables: dict[str, pd.DataFrame]) -> Iterator[AthenaHandle]:
    """pyathena (awsathena+rest) against moto; results of every statement are computed on a
    DuckDB mirror of ``warehouse_tables`` and queued in moto automatically."""
    engine = athena_standin.engine(warehouse_tables)
    yield AthenaHandle(athena_standin, engine)
    athena_standin.dispose(engine)


@pytest.fixture
def athena_engine(athena: AthenaHandle) -> sa.Engine:
    """The Engine of the ``athena`` fixture."""
    return athena.engine


@pytest.fixture(params=WAREHOUSES)
def warehouse_engine(request: pytest.FixtureRequest) -> sa.Engine:
    """Each of the four engines in turn: a test written once runs on all."""
    return request.getfixturevalue(f"{request.param}_engine")
