"""Alembic environment: run with the connection valuetrack.store.db hands over."""

from __future__ import annotations

from alembic import context

from valuetrack.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via `alembic` on the command line
    raise RuntimeError("run migrations through valuetrack.store.db.open_engine()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
