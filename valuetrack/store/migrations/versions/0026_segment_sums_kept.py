"""Kept segment sums: each A/B model's sums per segment × arm over its mature cohort days, so that
the next valuation's segment breakdown adds only the days that matured since (docs/decisions.md
D68). Empty after the upgrade: the first valuation sums every model's history once and keeps it.

Revision ID: 0026
Revises: 0025
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segment_sums_kept",
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("through", sa.Date, nullable=False),
        sa.Column("windows", sa.Text, nullable=False),
        sa.Column("sums", sa.JSON, nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("segment_sums_kept")
