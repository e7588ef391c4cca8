"""Tables of the app database (SQLAlchemy Core). Alembic migrations in ``migrations/`` create them;
these declarations are what the code queries. Keep the two in step: ``tests/store/test_migrations.py``
compares them.

Secrets never go in here: connections are referred to by name only.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Sequence,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

models = Table(
    "models",
    metadata,
    Column("id", Integer, Sequence("models_id_seq"), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("team", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("connection", String(100), nullable=False),
    Column("kpi_name", String(200), nullable=False),
    Column("method", String(16), nullable=False),
    # the whole manifest entry (every field), canonical JSON; the columns above are for filtering
    Column("spec", JSON, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(200), nullable=False),
    UniqueConstraint("name", name="uq_models_name"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, Sequence("audit_log_id_seq"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(32), nullable=False),
    Column("model_name", String(64), ForeignKey("models.name"), nullable=True),
    Column("from_revision", Integer, nullable=True),
    Column("to_revision", Integer, nullable=True),
    # {"field.path": [old, new], ...}
    Column("changes", JSON, nullable=False),
    Column("note", Text, nullable=True),
    Index("ix_audit_log_model", "model_name", "id"),
)
