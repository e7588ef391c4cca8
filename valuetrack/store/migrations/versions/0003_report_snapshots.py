"""Report snapshots: one immutable row per issued monthly report.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_snapshots",
        sa.Column("id", sa.Integer, sa.Sequence("report_snapshots_id_seq"), primary_key=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("inputs_hash", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("supersedes", sa.Integer, nullable=True),
        sa.Column("content", sa.JSON, nullable=False),
    )
    op.create_index("ix_report_snapshots_month", "report_snapshots", ["month", "id"])


def downgrade() -> None:
    op.drop_index("ix_report_snapshots_month", table_name="report_snapshots")
    op.drop_table("report_snapshots")
