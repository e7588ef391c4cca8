"""Value results with provenance, one row per model and refresh.

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "value_results",
        sa.Column("id", sa.Integer, sa.Sequence("value_results_id_seq"), primary_key=True),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("registry_revision", sa.Integer, nullable=False),
        sa.Column("library_version", sa.String(32), nullable=False),
        sa.Column("refresh_id", sa.Integer, nullable=True),
        sa.Column("net", sa.Float(precision=53), nullable=True),
        sa.Column("result", sa.JSON, nullable=False),
    )
    op.create_index("ix_value_results_model", "value_results", ["model_name", "id"])


def downgrade() -> None:
    op.drop_index("ix_value_results_model", table_name="value_results")
    op.drop_table("value_results")
