"""SQL injection payloads (tests/reliability/sqli_payloads.txt, from public lists) tried everywhere a
user's text reaches SQL: table names, column names, where-filters, custom SQL, arm/model values.
Each is refused, or bound/quoted so that running the compiled query against a real DuckDB file
neither fails with a syntax error nor changes anything. The connector only runs read-only queries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from tests.reliability.cases import AS_OF, SQLI_PAYLOADS, WAREHOUSE_MANIFEST, build_warehouse
from valuetrack.config import ConnectionSettings
from valuetrack.connectors import get_connector
from valuetrack.errors import UnsafeSQL, ValidationError, WarehouseError
from valuetrack.queries import ab_aggregate
from valuetrack.registry.manifest import parse_manifest
from valuetrack.registry.spec import ModelSpec
from valuetrack.sqlsafety import check_identifier, check_predicate, check_select

PAYLOADS = SQLI_PAYLOADS
BASE = parse_manifest(WAREHOUSE_MANIFEST)[0].spec.to_dict()


def test_at_least_50_payloads() -> None:
    assert len(PAYLOADS) >= 50 and len(set(PAYLOADS)) == len(PAYLOADS)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("wh")
    path = folder / "w.duckdb"
    build_warehouse(path)
    connector = get_connector(ConnectionSettings("wh", f"duckdb:///{path}", {"max_attempts": 1}))
    yield connector, path
    connector.dispose()


def _fingerprint(connector: Any, path: Path) -> tuple:
    """Every table's name and content hash, and the files next to the warehouse."""
    with connector.engine.connect() as c:
        tables = sorted(r[0] for r in c.exec_driver_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"))
        digest = {}
        for t in tables:
            rows = c.exec_driver_sql(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall()
            digest[t] = hashlib.sha256(repr(rows).encode()).hexdigest()
    files = sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".wal"))
    return tables, digest, files, sorted(Path("/tmp").glob("leak*"))


def _spec(mutate: Any) -> ModelSpec:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    data["attribution"] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE["attribution"].items()}
    mutate(data)
    return ModelSpec.from_dict(data)


def _run_ab(connector: Any, spec: ModelSpec) -> Any:
    q = ab_aggregate(spec, cohort_start=dt.date(2025, 1, 1), cohort_end=AS_OF, as_of=AS_OF, dialect_ops=connector.ops)
    return connector.run(q, model=spec.name, purpose="ab")


def _no_syntax_injection(exc: BaseException) -> None:
    text = str(exc).lower()
    assert "syntax" not in text and "parser error" not in text, text


SLOTS = ("table", "column", "where", "custom_sql", "arm_value", "model_value")


@pytest.mark.parametrize("slot", SLOTS)
def test_payloads_are_refused_or_harmless(warehouse: Any, slot: str) -> None:
    connector, path = warehouse
    before = _fingerprint(connector, path)
    refused = harmless = 0
    base_sql = ""
    for payload in PAYLOADS:
        try:
            if slot == "table":
                check_identifier(payload, qualified=True)
                spec = _spec(lambda d: d["attribution"]["exposures"].__setitem__("table", payload))
            elif slot == "column":
                check_identifier(payload)
                spec = _spec(lambda d: d["attribution"]["outcomes"].__setitem__("value", payload))
            elif slot == "where":
                check_predicate(payload)
                spec = _spec(lambda d: d["attribution"]["outcomes"].__setitem__("where", payload))
            elif slot == "custom_sql":
                check_select(payload)
                spec = None
            elif slot == "arm_value":
                spec = _spec(lambda d: d["attribution"]["exposures"].__setitem__("treatment", payload))
            else:
                spec = _spec(lambda d: d["attribution"]["exposures"].__setitem__("model_value", payload))
        except (UnsafeSQL, ValidationError) as exc:
            assert exc.problems and str(exc), payload
            refused += 1
            continue
        # accepted: it must be bound or quoted, so the query runs (or fails on a missing table or
        # column name, never on syntax) and nothing in the warehouse changes
        try:
            if spec is None:
                connector.run(sa.text(payload), model="sqli", purpose="custom")
            else:
                sql = connector.compile(ab_aggregate(spec, cohort_start=dt.date(2025, 1, 1), cohort_end=AS_OF,
                                                     as_of=AS_OF, dialect_ops=connector.ops))
                if slot in ("arm_value", "model_value"):
                    # bound: the statement's text is the same whatever the value
                    base_sql = base_sql or sql
                    assert sql == base_sql
                    if len(payload) >= 4:
                        assert payload not in sql
                    if PAYLOADS.index(payload) % 5:  # run a sample of them on the warehouse
                        harmless += 1
                        continue
                _run_ab(connector, spec)
        except WarehouseError as exc:
            if slot != "custom_sql":  # custom SQL is the user's whole query: its own syntax may be wrong
                _no_syntax_injection(exc)
        harmless += 1
        assert _fingerprint(connector, path) == before, f"{slot}: {payload!r} changed the warehouse"
    assert refused + harmless == len(PAYLOADS)
    if slot in ("table", "column"):
        assert harmless == 0, "an injection payload passed as a plain name"
    if slot in ("arm_value", "model_value"):
        assert harmless == len(PAYLOADS)  # values are data: all accepted, all bound
    if slot == "where":
        assert refused >= len(PAYLOADS) - 10
    assert _fingerprint(connector, path) == before


def test_arm_values_are_data_not_sql(warehouse: Any) -> None:
    """A payload as the treatment label matches no rows; the real arms still give their counts."""
    connector, _ = warehouse
    frame = _run_ab(connector, _spec(lambda d: d["attribution"]["exposures"].__setitem__(
        "treatment", "model' OR '1'='1"))).frame
    assert set(frame["arm"].dropna()) <= {"holdout", "model' OR '1'='1"}
    assert "model" not in set(frame["arm"].dropna())


WRITES = [
    sa.text("DROP TABLE exposures"),
    sa.text("DELETE FROM outcomes"),
    sa.text("SELECT 1; DROP TABLE exposures"),
    sa.text("INSERT INTO outcomes SELECT * FROM outcomes"),
    sa.text("CREATE TABLE pwned AS SELECT 1"),
    sa.text("COPY outcomes TO '/tmp/leak.csv'"),
    sa.text("ATTACH '/tmp/leak.duckdb' AS leak"),
    sa.text("PRAGMA enable_profiling"),
    sa.text("SELECT * FROM read_csv('/etc/passwd')"),
    sa.text("WITH x AS (DELETE FROM outcomes RETURNING *) SELECT * FROM x"),
    sa.table("outcomes", sa.column("value")).delete(),
    sa.table("outcomes", sa.column("value")).update().values(value=0),
    sa.table("outcomes", sa.column("value")).insert().values(value=1),
]


@pytest.mark.parametrize("stmt", WRITES, ids=lambda s: str(s)[:40])
def test_connector_runs_read_only_statements_only(warehouse: Any, stmt: Any) -> None:
    connector, path = warehouse
    before = _fingerprint(connector, path)
    with pytest.raises(UnsafeSQL):
        connector.run(stmt, model="sqli", purpose="custom")
    assert _fingerprint(connector, path) == before


def test_read_only_selects_still_run(warehouse: Any) -> None:
    connector, _ = warehouse
    assert connector.run(sa.text("WITH t AS (SELECT count(*) AS n FROM outcomes) SELECT n FROM t"),
                         model="sqli", purpose="custom").frame["n"].tolist() == [600]
    union = sa.union_all(sa.select(sa.literal(1).label("x")), sa.select(sa.literal(2).label("x")))
    assert sorted(connector.run(union, model="sqli", purpose="custom").frame["x"]) == [1, 2]


def test_duckdb_read_only_option_refuses_writes_at_the_engine(tmp_path: Path) -> None:
    """Belt and braces: with read_only = true the DuckDB file itself refuses writes."""
    path = tmp_path / "ro.duckdb"
    build_warehouse(path)
    ro = get_connector(ConnectionSettings("ro", f"duckdb:///{path}", {"read_only": True}))
    try:
        with pytest.raises(Exception, match="read-only"):
            with ro.engine.begin() as c:
                c.exec_driver_sql("DELETE FROM outcomes")
        assert ro.run(sa.text("SELECT count(*) AS n FROM outcomes"), model="ro", purpose="custom").frame["n"][0] == 600
    finally:
        ro.dispose()
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM outcomes").fetchone()[0] == 600
