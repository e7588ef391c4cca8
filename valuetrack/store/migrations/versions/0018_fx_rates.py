"""Exchange rates read from a warehouse table ([fx] table in valuetrack.toml).

Revision ID: 0018
Revises: 0017
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fx_rates",
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("rate", sa.Float, nullable=False),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fx_rates")
