"""Units per membership pattern of the models sharing units and a KPI (overlap counted once).

Revision ID: 0017
Revises: 0016
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_overlap_patterns",
        sa.Column("group_no", sa.Integer, primary_key=True),
        sa.Column("row_no", sa.Integer, primary_key=True),
        sa.Column("group_models", sa.JSON, nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("units", sa.BigInteger, nullable=False),
        sa.Column("pairwise", sa.Boolean, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_overlap_patterns")
