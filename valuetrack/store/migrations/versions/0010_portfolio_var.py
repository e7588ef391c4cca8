"""The portfolio's value at risk, stored by each refresh.

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.supports_sequences:  # create_table does not emit the id's Sequence
        op.execute(sa.schema.CreateSequence(sa.Sequence("portfolio_var_id_seq")))
    op.create_table(
        "portfolio_var",
        sa.Column("id", sa.Integer, sa.Sequence("portfolio_var_id_seq"), primary_key=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("library_version", sa.String(32), nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
    )
    op.create_index("ix_portfolio_var_as_of", "portfolio_var", ["as_of", "id"])


def downgrade() -> None:
    op.drop_index("ix_portfolio_var_as_of", table_name="portfolio_var")
    op.drop_table("portfolio_var")
    if op.get_bind().dialect.supports_sequences:
        op.execute(sa.schema.DropSequence(sa.Sequence("portfolio_var_id_seq"), if_exists=True))
