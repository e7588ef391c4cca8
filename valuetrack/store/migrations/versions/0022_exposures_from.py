"""The first day from which a model's stored daily exposure counts are complete (docs/decisions.md
D53): NULL on every refresh stored before, so that each model's next refresh reads its daily
exposure counts over the whole history (a first refresh read only their last 90 days, and the cost
per 1,000 predictions of the earlier months was charged on none). Nothing stored is changed.

Revision ID: 0022
Revises: 0021
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("refreshes") as batch:
        batch.add_column(sa.Column("exposures_from", sa.Date, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refreshes") as batch:
        batch.drop_column("exposures_from")
