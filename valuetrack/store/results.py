"""Stored value results: what each refresh concluded for each model, with the inputs it came from
(as-of date, method, registry revision, library version, the refresh whose aggregates it used),
so any number can be traced and recomputed."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Iterable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from valuetrack import __version__
from valuetrack.store.schema import model_overlaps, portfolio_var, value_results


class ResultStore:
    """Append-only history of value results."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, values: Iterable[Any], refresh_ids: dict[str, int | None]) -> int:
        """Store ModelValue objects (to date) in one transaction; returns the number stored."""
        now = dt.datetime.now(dt.timezone.utc)
        rows = [{
            "model_name": v.model, "as_of": v.as_of, "computed_at": now, "method": v.method[:64],
            "registry_revision": v.registry_revision, "library_version": __version__,
            "refresh_id": refresh_ids.get(v.model), "net": v.net,
            "result": json.loads(json.dumps(v.to_dict(), default=_json_default)),
        } for v in values]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(value_results.insert(), rows)
        return len(rows)

    def history(self, model: str, limit: int = 100) -> pd.DataFrame:
        """The model's stored results, newest first: as_of, computed_at, method, net, provenance."""
        t = value_results
        query = (sa.select(t.c.id, t.c.as_of, t.c.computed_at, t.c.method, t.c.registry_revision,
                           t.c.library_version, t.c.refresh_id, t.c.net)
                 .where(t.c.model_name == model).order_by(t.c.id.desc()).limit(limit))
        with self.engine.connect() as conn:
            result = conn.execute(query)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def latest(self, model: str) -> dict[str, Any] | None:
        """The newest stored result of the model (the ModelValue dict), or None."""
        t = value_results
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.c.result).where(t.c.model_name == model)
                               .order_by(t.c.id.desc()).limit(1)).first()
        return row[0] if row else None


    def last_good(self, model: str, as_of: dt.date | None = None) -> dict[str, Any] | None:
        """The newest stored result of the model that was valued (state "ok"), as of ``as_of`` or
        earlier: the figures an error row carries, marked "last valued"."""
        t = value_results
        query = sa.select(t.c.result).where(t.c.model_name == model).order_by(t.c.id.desc()).limit(200)
        if as_of is not None:
            query = query.where(t.c.as_of <= as_of)
        with self.engine.connect() as conn:
            for (result,) in conn.execute(query):
                if result.get("state", "ok") == "ok":
                    return result
        return None


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


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


class VarStore:
    """The portfolio's value at risk as each refresh computed it (append-only; readers take the
    newest for an as-of date)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, result: dict[str, Any], as_of: dt.date) -> None:
        """Store a PortfolioVar dict (or an error record ``{"error": ...}``) for ``as_of``."""
        with self.engine.begin() as conn:
            conn.execute(portfolio_var.insert(), {
                "as_of": as_of, "computed_at": dt.datetime.now(dt.timezone.utc), "library_version": __version__,
                "result": json.loads(json.dumps(result, default=_json_default))})

    def latest(self, as_of: dt.date | None = None) -> dict[str, Any] | None:
        """The newest stored result at or before ``as_of`` (any date when None), or None."""
        t = portfolio_var
        query = sa.select(t.c.result).order_by(t.c.as_of.desc(), t.c.id.desc()).limit(1)
        if as_of is not None:
            query = query.where(t.c.as_of <= as_of)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return row[0] if row else None
