"""Units shared between models, as the latest refresh found them (the valuation reads them).

What each valuation concluded lives in the ledger (valuetrack.store.ledger); the older
``value_results`` table is kept, no longer written, so an upgraded app database loses nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from valuetrack.store.schema import model_overlaps


class OverlapStore:
    """Units shared between models, as found by the latest refresh (replaced as a whole)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def replace(self, rows: Iterable[Any], as_of: dt.date) -> None:
        """Store Overlap objects, replacing the previous set in one transaction."""
        now = dt.datetime.now(dt.timezone.utc)
        values = [{"model_a": o.model_a, "model_b": o.model_b, "shared_units": int(o.shared_units),
                   "shared_kpi": bool(o.shared_kpi), "as_of": as_of, "computed_at": now} for o in rows]
        with self.engine.begin() as conn:
            conn.execute(model_overlaps.delete())
            if values:
                conn.execute(model_overlaps.insert(), values)

    def read(self) -> list[Any]:
        from valuetrack.value.overlap import Overlap

        t = model_overlaps
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.model_a, t.c.model_b, t.c.shared_units, t.c.shared_kpi)
                                .order_by(t.c.model_a, t.c.model_b)).all()
        return [Overlap(r.model_a, r.model_b, int(r.shared_units), bool(r.shared_kpi)) for r in rows]
