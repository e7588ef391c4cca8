"""Aggregates cache: refreshes, A/B sufficient statistics, crossovers, series, health.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_F = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "refreshes",
        sa.Column("id", sa.Integer, sa.Sequence("refreshes_id_seq"), primary_key=True),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("since_day", sa.Date, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("cost", sa.JSON, nullable=True),
        sa.Column("rows", sa.Integer, nullable=True),
        sa.Column("mature_through", sa.Date, nullable=True),
        sa.Column("bin_edges", sa.JSON, nullable=True),
        sa.Column("max_exposure_ts", sa.DateTime, nullable=True),
        sa.Column("max_outcome_ts", sa.DateTime, nullable=True),
    )
    op.create_index("ix_refreshes_model", "refreshes", ["model_name", "id"])
    op.create_table(
        "ab_aggregates",
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("arm", sa.String(200), primary_key=True),
        sa.Column("segment", sa.String(200), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("n_units", sa.BigInteger, nullable=False),
        sa.Column("sum_y", _F, nullable=True),
        sa.Column("sum_y2", _F, nullable=True),
        sa.Column("sum_x", _F, nullable=True),
        sa.Column("sum_x2", _F, nullable=True),
        sa.Column("sum_xy", _F, nullable=True),
        sa.Column("mature", sa.Boolean, nullable=False),
        sa.Column("refresh_id", sa.Integer, nullable=False),
    )
    op.create_table(
        "ab_crossovers",
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("segment", sa.String(200), primary_key=True),
        sa.Column("n_crossover", sa.BigInteger, nullable=False),
        sa.Column("refresh_id", sa.Integer, nullable=False),
    )
    op.create_table(
        "series_points",
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("series", sa.String(128), primary_key=True),
        sa.Column("value", _F, nullable=True),
        sa.Column("refresh_id", sa.Integer, nullable=False),
    )
    op.create_table(
        "health_daily",
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("arm", sa.String(200), primary_key=True),
        sa.Column("n_exposures", sa.BigInteger, nullable=False),
        sa.Column("n_units", sa.BigInteger, nullable=False),
        sa.Column("refresh_id", sa.Integer, nullable=False),
    )
    op.create_table(
        "health_histogram",
        sa.Column("model_name", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("bin", sa.Integer, primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("refresh_id", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for name in ("health_histogram", "health_daily", "series_points", "ab_crossovers", "ab_aggregates"):
        op.drop_table(name)
    op.drop_index("ix_refreshes_model", table_name="refreshes")
    op.drop_table("refreshes")
