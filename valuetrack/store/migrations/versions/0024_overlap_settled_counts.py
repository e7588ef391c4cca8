"""Each KPI group's units per membership mask over the exposures before its settled day
(docs/decisions.md D64): the next refresh advances them with the units served since, instead of
counting every unit again. Empty here: the first refresh after the upgrade counts every group
from its whole history, as before, and stores them.

Revision ID: 0024
Revises: 0023
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "overlap_settled_counts",
        sa.Column("group_key", sa.String(64), primary_key=True),
        sa.Column("settled_day", sa.Date, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("overlap_settled_counts")
