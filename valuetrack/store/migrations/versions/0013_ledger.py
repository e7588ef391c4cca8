"""The valuation ledger: one portfolio-wide valuation per as-of (docs/architecture.md).

Revision ID: 0013
Revises: 0012
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _asof_fk() -> sa.Column:
    return sa.Column("asof_id", sa.Integer, sa.ForeignKey("ledger_asofs.id", ondelete="CASCADE"), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "ledger_asofs",
        sa.Column("id", sa.Integer, sa.Sequence("ledger_asofs_id_seq"), primary_key=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("valued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("alpha", sa.Float(precision=53), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("library_version", sa.String(32), nullable=False),
        sa.Column("refresh_id", sa.Integer, nullable=True),
        sa.Column("registry_version", sa.Integer, nullable=True),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("periods", sa.JSON, nullable=False),
    )
    op.create_index("ix_ledger_asofs_as_of", "ledger_asofs", ["as_of", "id"])
    op.create_table(
        "ledger_models",
        _asof_fk(),
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("registry_revision", sa.Integer, nullable=False),
        sa.Column("refresh_id", sa.Integer, nullable=True),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("net", sa.Float(precision=53), nullable=True),
        sa.Column("figures", sa.JSON, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_table(
        "ledger_monthly",
        _asof_fk(),
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("live", sa.Boolean, nullable=False),
        sa.Column("net", sa.Float(precision=53), nullable=True),
        sa.Column("figures", sa.JSON, nullable=False),
    )
    op.create_table(
        "ledger_timeline",
        _asof_fk(),
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("series", sa.JSON, nullable=False),
    )
    op.create_table(
        "ledger_flags",
        _asof_fk(),
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(32), primary_key=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("raised_on", sa.Date, nullable=False),
        sa.Column("cleared_on", sa.Date, nullable=True),
        sa.Column("p_value", sa.Float(precision=53), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
    )
    op.create_index("ix_ledger_flags_model", "ledger_flags", ["model_name", "asof_id"])
    if op.get_bind().dialect.supports_sequences:  # the code inserts nextval() there (see 0006)
        op.execute(sa.schema.CreateSequence(sa.Sequence("ledger_asofs_id_seq")))


def downgrade() -> None:
    if op.get_bind().dialect.supports_sequences:
        op.execute(sa.schema.DropSequence(sa.Sequence("ledger_asofs_id_seq"), if_exists=True))
    for table in ("ledger_flags", "ledger_timeline", "ledger_monthly", "ledger_models"):
        op.drop_table(table)
    op.drop_index("ix_ledger_asofs_as_of", table_name="ledger_asofs")
    op.drop_table("ledger_asofs")
