"""The A/B rows summed over segments per model × cohort day × arm (docs/decisions.md D61): what a
valuation reads, stored when the rows are written instead of summed at every read. Filled here from
the stored rows by the same statement a refresh's save runs (the database's SUM over a model's rows
in its primary key's order: the same sums, bit for bit, as the read summed before).

Revision ID: 0023
Revises: 0022
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

SUMS = ("n", "n_units", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")


def upgrade() -> None:
    op.create_table(
        "ab_day_totals",
        sa.Column("model_name", sa.String(64), primary_key=True),
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
    )
    bind = op.get_bind()
    # model by model, each summed in its primary key's order as a refresh's save sums its days
    fill = sa.text(
        f"INSERT INTO ab_day_totals (model_name, day, arm, {', '.join(SUMS)}, mature) "
        f"SELECT model_name, day, arm, {', '.join(f'SUM({k})' for k in SUMS)}, MIN(CAST(mature AS INTEGER)) = 1 "
        "FROM ab_aggregates WHERE model_name = :model GROUP BY model_name, day, arm")
    for (model,) in bind.execute(sa.text("SELECT DISTINCT model_name FROM ab_aggregates")).all():
        bind.execute(fill, {"model": model})


def downgrade() -> None:
    op.drop_table("ab_day_totals")
