"""A model's billed cost per day and currency, from its [cost_source] (valuetrack.queries.billed_cost_query).

Revision ID: 0014
Revises: 0013
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billed_costs",
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("currency", sa.String(8), primary_key=True),
        sa.Column("amount", sa.Float(precision=53), nullable=False),
        sa.Column("refresh_id", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("billed_costs")
