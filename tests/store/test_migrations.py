"""The Alembic migrations build exactly the schema the code declares, upgrade is idempotent,
and downgrade/upgrade round-trips."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pathlib import Path

from sqlalchemy import create_engine

from valuetrack.store import db
from valuetrack.store.schema import metadata


def test_migrations_match_declared_schema(tmp_path) -> None:
    engine = db.open_engine(f"sqlite:///{tmp_path / 'app.db'}")
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == []
    db.migrate(engine)  # second run is a no-op
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == db.head_revision()


def test_downgrade_to_base_and_back(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = create_engine(url)
    db.migrate(engine)
    cfg = db._alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    db.migrate(engine)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == db.head_revision()


def test_upgrading_a_database_that_holds_models_and_their_audit(tmp_path) -> None:
    """An app database from an earlier version, with a model and its audit row (a foreign key to
    ``models``), upgrades to head with its rows intact."""
    import datetime as dt

    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    cfg = db._alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0011")
        now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        conn.execute(sa.text(
            "INSERT INTO models (id, name, display_name, owner, team, status, connection, kpi_name, method, spec, "
            "revision, created_at, created_by, updated_at, updated_by) VALUES (1, 'm-one', 'M', 'o', 't', 'active', "
            "'demo', 'k', 'ab', '{}', 1, :now, 'me', :now, 'me')"), {"now": now})
        conn.execute(sa.text("INSERT INTO audit_log (id, at, actor, action, model_name, to_revision, changes) "
                             "VALUES (1, :now, 'me', 'create', 'm-one', 1, '{}')"), {"now": now})
    engine.dispose()
    upgraded = db.open_engine(url)  # foreign keys on, as every app connection has them
    with upgraded.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == db.head_revision()
        assert conn.execute(sa.text("SELECT name FROM models")).scalars().all() == ["m-one"]
        assert conn.execute(sa.text("SELECT model_name FROM audit_log")).scalars().all() == ["m-one"]


def test_upgrading_fills_the_ab_totals_from_the_stored_rows(tmp_path) -> None:
    """Migration 0023 stores each model's A/B rows summed over segments per day and arm (D61): what
    a valuation reads from then on, equal to the rows summed (sums exact in binary here), NULL
    where every row's sum is NULL, mature only when every row is."""
    import datetime as dt

    import sqlalchemy as sa

    from valuetrack.store.aggregates import AggregateStore

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    cfg = db._alembic_config()
    rows = [  # (model, day, arm, segment, n, n_units, sum_y, sum_x, mature), not in key order
        ("m-b", "2026-01-02", "control", "eu", 3, 3, 1.5, None, 1),
        ("m-a", "2026-01-02", "model", "us", 4, 4, 2.25, 1.0, 0),
        ("m-a", "2026-01-01", "model", "us", 2, 2, 0.5, None, 1),
        ("m-a", "2026-01-01", "model", "eu", 5, 4, 1.75, None, 1),
        ("m-a", "2026-01-02", "model", "eu", 1, 1, 0.25, 3.0, 1),
        ("m-a", "2026-01-01", "control", "eu", 6, 6, 3.0, 2.0, 1),
    ]
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0022")
        conn.execute(sa.text(
            "INSERT INTO ab_aggregates (model_name, day, arm, segment, n, n_units, sum_y, sum_y2, sum_x, sum_x2, sum_xy, "
            "mature, refresh_id) VALUES (:m, :d, :a, :s, :n, :u, :y, :y, :x, :x, :x, :mature, 1)"),
            [dict(zip(("m", "d", "a", "s", "n", "u", "y", "x", "mature"), r)) for r in rows])
    engine.dispose()
    store = AggregateStore(db.open_engine(url))  # upgraded to head
    a = store.read_ab_by_day("m-a")
    assert [(d.isoformat(), arm) for d, arm in zip(a["day"], a["arm"])] == [
        ("2026-01-01", "control"), ("2026-01-01", "model"), ("2026-01-02", "model")]
    assert a["n"].tolist() == [6, 7, 5] and a["n_units"].tolist() == [6, 6, 5]
    assert a["sum_y"].tolist() == [3.0, 2.25, 2.5] and a["sum_y2"].tolist() == a["sum_y"].tolist()
    assert a["sum_x"].tolist()[0] == 2.0 and a["sum_x"].isna().tolist() == [False, True, False]
    assert a["sum_x"].tolist()[2] == 4.0 and a["mature"].tolist() == [True, True, False]
    assert set(a["segment"]) == {""} and a["day"].tolist()[0] == dt.date(2026, 1, 1)
    b = store.read_ab_by_day("m-b", before=dt.date(2026, 1, 2))
    assert len(b) == 0 and len(store.read_ab_by_day("m-b")) == 1


def test_the_head_revision_is_the_newest_numbered_migration() -> None:
    """store.db finds the head without importing Alembic, from the files' numbers: each file's
    revision is its number and revises the number before (what Alembic itself reads), and the
    newest one is Alembic's head."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db._alembic_config())
    revisions = {r.revision: r for r in script.walk_revisions()}
    for path in (db.MIGRATIONS / "versions").glob("*.py"):
        number = path.name[:4]
        assert revisions[number].path == str(path) or Path(revisions[number].path).name == path.name
        assert revisions[number].down_revision == (None if number == "0001" else f"{int(number) - 1:04d}")
    assert db.head_revision() == script.get_current_head()
