"""Notes on a model: annotations, excluded windows and overrides (docs/decisions.md D36, D37).

Revision ID: 0016
Revises: 0015
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.supports_sequences:  # create_table does not emit the id's Sequence (see 0006)
        op.execute(sa.schema.CreateSequence(sa.Sequence("model_notes_id_seq")))
    op.create_table(
        "model_notes",
        sa.Column("id", sa.Integer, sa.Sequence("model_notes_id_seq"), primary_key=True),
        sa.Column("model_name", sa.String(64), sa.ForeignKey("models.name"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("category", sa.String(16), nullable=True),
        sa.Column("start_day", sa.Date, nullable=True),
        sa.Column("end_day", sa.Date, nullable=True),
        sa.Column("amount", sa.Float(precision=53), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.String(200), nullable=True),
        sa.Column("withdrawn_reason", sa.Text, nullable=True),
    )
    op.create_index("ix_model_notes_model", "model_notes", ["model_name", "id"])


def downgrade() -> None:
    op.drop_index("ix_model_notes_model", table_name="model_notes")
    op.drop_table("model_notes")
    if op.get_bind().dialect.supports_sequences:
        op.execute(sa.schema.DropSequence(sa.Sequence("model_notes_id_seq"), if_exists=True))
