"""The money at stake on each flag (docs/decisions.md D42): computed once by the valuation, stored
with the flag, and read by every list that orders flags worst first.

Revision ID: 0015
Revises: 0014
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_flags") as batch:
        batch.add_column(sa.Column("at_stake", sa.Float(precision=53), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_flags") as batch:
        batch.drop_column("at_stake")
