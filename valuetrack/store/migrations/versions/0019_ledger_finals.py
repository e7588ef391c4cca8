"""Final months stay final: ``ledger_finals`` pins each final month to the valuation its final
report read (version 1), and records each restatement a person applies (version 2, ...) with who,
when, why and by how much (docs/decisions.md D34).

Revision ID: 0019
Revises: 0018
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_finals",
        sa.Column("id", sa.Integer, sa.Sequence("ledger_finals_id_seq"), primary_key=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("asof_id", sa.Integer, sa.ForeignKey("ledger_asofs.id"), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("alpha", sa.Float(precision=53), nullable=False),
        sa.Column("snapshot_id", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("net_before", sa.Float(precision=53), nullable=True),
        sa.Column("net_after", sa.Float(precision=53), nullable=True),
        sa.Column("delta", sa.Float(precision=53), nullable=True),
        sa.Column("differences", sa.JSON, nullable=True),
        sa.UniqueConstraint("month", "version", name="uq_ledger_finals_month_version"),
    )
    if op.get_bind().dialect.supports_sequences:  # the code inserts nextval() there (see 0006)
        op.execute(sa.schema.CreateSequence(sa.Sequence("ledger_finals_id_seq")))


def downgrade() -> None:
    if op.get_bind().dialect.supports_sequences:
        op.execute(sa.schema.DropSequence(sa.Sequence("ledger_finals_id_seq"), if_exists=True))
    op.drop_table("ledger_finals")
