"""Units shared between models, as the latest refresh found them (the valuation reads them), and
the portfolio's value at risk as each valuation computed it.

What each valuation concluded lives in the ledger (valuetrack.store.ledger); the older
``value_results`` table is kept, no longer written, so an upgraded app database loses nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from valuetrack import __version__
from valuetrack.store.ledger import jsonable
from valuetrack.store.schema import model_overlap_patterns, model_overlaps, overlap_settled_counts, portfolio_var


class OverlapStore:
    """Units shared between models, as found by the latest refresh (replaced as a whole): per pair,
    and per membership pattern of each KPI group (valuetrack.value.overlap)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def replace(self, rows: Iterable[Any], as_of: dt.date, patterns: Iterable[Any] = (),
                settled: Iterable[Any] = ()) -> None:
        """Store Overlap objects (pairs), Pattern objects and SettledCounts (the groups' counts to
        advance next time, D64), replacing the previous sets in one transaction."""
        now = dt.datetime.now(dt.timezone.utc)
        kept = [{"group_key": c.key, "settled_day": c.settled, "computed_at": now,
                 "counts": [[str(mask), int(units)] for mask, units in sorted(c.counts.items())]} for c in settled]
        values = [{"model_a": o.model_a, "model_b": o.model_b, "shared_units": int(o.shared_units),
                   "shared_kpi": bool(o.shared_kpi), "as_of": as_of, "computed_at": now} for o in rows]
        groups: dict[tuple[str, ...], int] = {}
        per_group: dict[int, int] = {}
        counts: list[dict[str, Any]] = []
        for p in patterns:
            g = groups.setdefault(tuple(p.group), len(groups))
            per_group[g] = per_group.get(g, -1) + 1
            counts.append({"group_no": g, "row_no": per_group[g],
                           "group_models": list(p.group), "models": list(p.models), "units": int(p.units),
                           "pairwise": bool(p.pairwise), "as_of": as_of, "computed_at": now})
        with self.engine.begin() as conn:
            conn.execute(model_overlaps.delete())
            conn.execute(model_overlap_patterns.delete())
            conn.execute(overlap_settled_counts.delete())
            if kept:
                conn.execute(overlap_settled_counts.insert(), kept)
            if values:
                conn.execute(model_overlaps.insert(), values)
            if counts:
                conn.execute(model_overlap_patterns.insert(), counts)

    def read(self) -> list[dict[str, Any]]:
        """The stored pairs as dicts (model_a, model_b, shared_units, shared_kpi): the Overlap fields."""
        t = model_overlaps
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.model_a, t.c.model_b, t.c.shared_units, t.c.shared_kpi)
                                .order_by(t.c.model_a, t.c.model_b)).all()
        return [{"model_a": r.model_a, "model_b": r.model_b, "shared_units": int(r.shared_units),
                 "shared_kpi": bool(r.shared_kpi)} for r in rows]

    def settled_counts(self) -> dict[str, tuple[dt.date, dict[int, int]]]:
        """The stored counts to advance (D64): per group key, its settled day and units per mask."""
        t = overlap_settled_counts
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.group_key, t.c.settled_day, t.c.counts)).all()
        return {r.group_key: (r.settled_day, {int(m): int(n) for m, n in r.counts}) for r in rows}

    def patterns(self) -> list[dict[str, Any]]:
        """The stored patterns as dicts (group, models, units, pairwise): the Pattern fields."""
        t = model_overlap_patterns
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.group_no, t.c.row_no)).all()
        return [{"group": list(r.group_models), "models": list(r.models), "units": int(r.units),
                 "pairwise": bool(r.pairwise)} for r in rows]


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
                "result": jsonable(result)})

    def latest(self, as_of: dt.date | None = None) -> dict[str, Any] | None:
        """The newest stored result at or before ``as_of`` (any date when None), or None."""
        t = portfolio_var
        query = sa.select(t.c.result).order_by(t.c.as_of.desc(), t.c.id.desc()).limit(1)
        if as_of is not None:
            query = query.where(t.c.as_of <= as_of)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return row[0] if row else None


class FxRateStore:
    """Exchange rates read from the warehouse table of ``[fx]`` by the latest refresh (valuetrack/fx.py)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def replace(self, frame: Any, currencies: Iterable[str]) -> int:
        """Replace the stored rates of ``currencies`` by the rows of ``frame`` (date, currency, rate),
        in one transaction; returns the rows written."""
        from valuetrack.store.schema import fx_rates

        now = dt.datetime.now(dt.timezone.utc)
        rows = [{"currency": str(r.currency), "day": r.date, "rate": float(r.rate), "pulled_at": now}
                for r in frame.itertuples(index=False)]
        with self.engine.begin() as conn:
            conn.execute(fx_rates.delete().where(fx_rates.c.currency.in_(sorted(set(currencies)))))
            if rows:
                conn.execute(fx_rates.insert(), rows)
        return len(rows)

    def read(self) -> Any:
        """Every stored rate as a frame of date, currency, rate."""
        import pandas as pd

        from valuetrack.store.schema import fx_rates as t

        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.day, t.c.currency, t.c.rate).order_by(t.c.currency, t.c.day)).all()
        return pd.DataFrame([{"date": r.day, "currency": r.currency, "rate": r.rate} for r in rows],
                            columns=["date", "currency", "rate"])
