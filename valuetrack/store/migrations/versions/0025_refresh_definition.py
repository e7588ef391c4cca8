"""The digest of a model's queries each refresh read with (docs/decisions.md D66): a model whose
definition changed since (its exposures, outcomes, windows, time zone, series...) has its whole
history read again by its next refresh. NULL on every refresh stored before: those models go on
incrementally, and record their digest from their next refresh on. Nothing stored is changed.

Revision ID: 0025
Revises: 0024
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("refreshes") as batch:
        batch.add_column(sa.Column("definition", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refreshes") as batch:
        batch.drop_column("definition")
