"""A classifier's decisions aggregate: per model × day × score bin × decision, with labels.

Revision ID: 0011
Revises: 0010
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decision_aggregates",
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("bin", sa.Integer, primary_key=True),
        sa.Column("decision", sa.Integer, primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("sum_s", sa.Float(precision=53), nullable=False),
        sa.Column("sum_s2", sa.Float(precision=53), nullable=False),
        sa.Column("n_labelled", sa.BigInteger, nullable=False),
        sa.Column("n_positive", sa.BigInteger, nullable=False),
        sa.Column("sum_s_labelled", sa.Float(precision=53), nullable=False),
        sa.Column("sum_s2_labelled", sa.Float(precision=53), nullable=False),
        sa.Column("refresh_id", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("decision_aggregates")
