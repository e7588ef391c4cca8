"""``valuetrack export --to-warehouse``: the ledger's values written back to a warehouse table, for BI
tools to join with everything else (docs/writeback.md).

One row per model × period (the value to date, each calendar month, each day) for one as-of date.
Money is DECIMAL(18, 2) in the reporting currency, rounded half up to the cent; rates are floats.
A run replaces the rows of its as-of date and leaves other as-of dates alone, so it can be re-run.
The write goes through the connection's connector, which refuses to write unless the connection
names the table in ``write_tables`` (docs/writeback.md); every other query stays read-only.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from valuetrack.context import Context

DEFAULT_TABLE = "valuetrack_values"
MONEY = sa.Numeric(18, 2)
CENT = decimal.Decimal("0.01")


def columns() -> list[sa.Column]:
    """The table's stable schema (docs/writeback.md lists the same columns)."""
    return [
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),  # to_date | month | day
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("gross", MONEY),
        sa.Column("cost", MONEY),
        sa.Column("net", MONEY),
        sa.Column("net_lo", MONEY),
        sa.Column("net_hi", MONEY),
        sa.Column("roi", sa.Float),
        sa.Column("prob_positive", sa.Float),
        sa.Column("provisional", sa.Boolean),
        sa.Column("flags", sa.String(200)),  # to_date rows: the model's flags, comma-separated; else NULL
        sa.Column("state", sa.String(8), nullable=False),  # ok | error
        sa.Column("method", sa.String(16)),
        sa.Column("written_at", sa.DateTime, nullable=False),
    ]


def cents(value: float | None) -> decimal.Decimal | None:
    """Money as stored: the float rounded half up to the cent."""
    if value is None:
        return None
    return decimal.Decimal(repr(float(value))).quantize(CENT, rounding=decimal.ROUND_HALF_UP)


@dataclass(frozen=True)
class WriteResult:
    """What an export wrote.

    Attributes:
        connection: the connection written to.
        table: the table (as configured, maybe schema-qualified).
        as_of: the as-of date whose rows were replaced.
        rows: rows written, by period kind.
        replaced: rows of the same as-of date deleted first.
    """

    connection: str
    table: str
    as_of: dt.date
    rows: dict[str, int]
    replaced: int

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def describe(self) -> str:
        total = sum(self.rows.values())
        parts = ", ".join(f"{n} {k}" for k, n in self.rows.items())
        return (f"Wrote {total} rows ({parts}) as of {self.as_of} to {self.table} on connection {self.connection!r}"
                + (f", replacing {self.replaced}." if self.replaced else "."))


def value_rows(ctx: Context, as_of: dt.date | None = None) -> tuple[dt.date, list[dict[str, Any]]]:
    """The rows of the newest valuation on or before ``as_of`` (and that valuation's date).

    To-date and monthly figures and flags are read from the ledger, exactly as ``value --json``
    shows them. The ledger keeps no money per day, so day rows are valued here from the same stored
    aggregates and effect estimate (each day's share of its month).
    """
    from valuetrack import ledger
    from valuetrack.value.portfolio import ModelValuation

    pv = ledger.portfolio(ctx, as_of=as_of)
    flags: dict[str, list[str]] = {}
    for f in pv.flags:
        flags.setdefault(f.model, []).append(f.type)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    rows = []

    def row(v: Any, period: str) -> dict[str, Any]:
        lo, hi = v.ci_net if v.ci_net else (None, None)
        return {"as_of": pv.as_of, "model": v.model, "period": period, "period_start": v.period_start,
                "period_end": v.period_end, "currency": v.currency, "gross": cents(v.gross), "cost": cents(v.cost),
                "net": cents(v.net), "net_lo": cents(lo), "net_hi": cents(hi), "roi": v.roi,
                "prob_positive": v.prob_positive, "provisional": bool(v.provisional),
                "flags": ",".join(flags.get(v.model, [])) if period == "to_date" else None,
                "state": v.state, "method": v.method, "written_at": now}

    for v in pv.models:
        rows.append(row(v, "to_date"))
        if v.state != "ok":
            continue
        rows += [row(m, "month") for m in ledger.model(ctx, v.model, as_of=pv.as_of, exact=True).months]
        valuation = ModelValuation.load(ctx, ctx.registry.get(v.model), pv.as_of, alpha=pv.alpha)
        day = valuation.live_from
        while day is not None and day <= valuation.last_day:
            rows.append(row(valuation.period(day, day), "day"))
            day += dt.timedelta(days=1)
    return pv.as_of, rows


def export_to_warehouse(ctx: Context, connection: str, *, table: str = DEFAULT_TABLE,
                        as_of: dt.date | None = None) -> WriteResult:
    """Write the newest valuation on or before ``as_of`` to ``table`` on ``connection`` (replacing the
    rows of that valuation's as-of date)."""
    from valuetrack.connectors import get_connector

    ctx.require_edit("write values to a warehouse")
    connector = get_connector(ctx.settings.connection(connection), ctx.settings.secrets())
    connector.check_write(table)  # refuse before any other work
    as_of, rows = value_rows(ctx, as_of)
    try:
        replaced = connector.replace_rows(table, columns(), rows, key={"as_of": as_of})
    finally:
        connector.dispose()
    counts = {k: sum(1 for r in rows if r["period"] == k) for k in ("to_date", "month", "day")}
    return WriteResult(connection, table, as_of, counts, replaced)
