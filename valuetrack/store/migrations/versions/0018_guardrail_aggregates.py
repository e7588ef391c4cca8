"""Guardrail KPIs: per model × guardrail × cohort day × arm sufficient statistics.

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
        "guardrail_aggregates",
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("guardrail", sa.String(40), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("arm", sa.String(200), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("n_units", sa.BigInteger, nullable=False),
        sa.Column("sum_y", sa.Float(precision=53), nullable=True),
        sa.Column("sum_y2", sa.Float(precision=53), nullable=True),
        sa.Column("sum_x", sa.Float(precision=53), nullable=True),
        sa.Column("sum_x2", sa.Float(precision=53), nullable=True),
        sa.Column("sum_xy", sa.Float(precision=53), nullable=True),
        sa.Column("mature", sa.Boolean, nullable=False),
        sa.Column("definition", sa.String(64), nullable=False),
        sa.Column("refresh_id", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("guardrail_aggregates")
