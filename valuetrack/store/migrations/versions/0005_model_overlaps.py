"""Units shared between models (latest refresh).

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_overlaps",
        sa.Column("model_a", sa.String(64), primary_key=True),
        sa.Column("model_b", sa.String(64), primary_key=True),
        sa.Column("shared_units", sa.BigInteger, nullable=False),
        sa.Column("shared_kpi", sa.Boolean, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_overlaps")
