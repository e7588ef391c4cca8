"""The Alembic migrations build exactly the schema the code declares, upgrade is idempotent,
and downgrade/upgrade round-trips."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
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
