"""Id sequences on PostgreSQL: ``op.create_table`` does not emit the ``Sequence`` of an id column,
but the code inserts ``nextval('<table>_id_seq')`` on dialects with sequences. SQLite has none.

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("models", "audit_log", "refreshes", "report_snapshots", "value_results")


def upgrade() -> None:
    conn = op.get_bind()
    if not conn.dialect.supports_sequences:
        return
    for table in TABLES:
        name = f"{table}_id_seq"
        if conn.dialect.has_sequence(conn, name):
            continue
        op.execute(sa.schema.CreateSequence(sa.Sequence(name)))
        top = conn.execute(sa.text(f'SELECT max(id) FROM "{table}"')).scalar()  # noqa: S608 - fixed names
        if top:
            conn.execute(sa.text("SELECT setval(:name, :top)"), {"name": name, "top": int(top)})


def downgrade() -> None:
    conn = op.get_bind()
    if not conn.dialect.supports_sequences:
        return
    for table in TABLES:
        op.execute(sa.schema.DropSequence(sa.Sequence(f"{table}_id_seq"), if_exists=True))
