"""Rows of a SQLAlchemy result as plain tuples, without building a Row object per row where that
changes nothing (the warehouse pulls and the app database's aggregate reads fetch many rows)."""

from __future__ import annotations

from typing import Any


def plain_rows(result: Any) -> list[tuple]:
    """Fetch all rows of ``result`` as tuples: straight from the DB-API cursor when SQLAlchemy would
    hand back the driver's values unchanged (no result processor on any column), else through
    SQLAlchemy's rows. Closes the result."""
    processors = getattr(getattr(result, "_metadata", None), "_processors", None)
    if processors is not None and not any(processors) and getattr(result, "cursor", None) is not None:
        rows = result.cursor.fetchall()
        result.close()
        return rows
    return [tuple(r) for r in result.fetchall()]
