"""The valuation ledger's tables: written once per valuation (one transaction, the whole portfolio),
read by everything that shows a figure. Rows never leave as ORM objects: writes take plain dicts,
reads return mappings. Knows nothing of how the figures are computed (valuetrack.valuation does).

Each valuation is an *as-of* row (``ledger_asofs``) with its models, months, flags and timelines.
Readers take the newest as-of (by as-of date, then id); ids follow commit order because writes are
serialised (SQLite's write lock, a PostgreSQL advisory lock). A write is refused (returns None)
when the registry or the aggregates changed while the figures were computed: the change's own
valuation, which started after it, writes the newer figures, so the ledger never goes back in time.
Daily timelines are kept for the newest as-of and the last as-of of each calendar month only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
from base64 import b64decode, b64encode
from dataclasses import dataclass, field
from math import isfinite
from typing import Any, Collection, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from valuetrack.jsonsafe import clean, num
from valuetrack.store.db import data_version_of
from valuetrack.store.schema import (fit_cache, ledger_asofs, ledger_finals, ledger_flags, ledger_models,
                                     ledger_monthly, ledger_timeline, segment_sums_kept)

_WRITE_LOCK = 7_346_121  # PostgreSQL advisory lock serialising ledger writes (any constant)


@dataclass
class LedgerRecord:
    """Everything one valuation writes (plain data; ``LedgerStore.write`` stores it).

    Attributes:
        as_of: the as-of date of every figure.
        reason: what triggered it: "refresh", "edit" or "revalue".
        actor: who triggered it.
        alpha: 1 − interval level.
        currency: the reporting currency.
        library_version: valuetrack version that computed it.
        refresh_id: the newest refresh whose aggregates it read.
        registry_version: the newest audit-log entry it saw.
        input_hash: sha256 over every model's input hash.
        token: the app database's data version when the inputs were read (stale-write check).
        periods: {"to-date" | "YYYY-MM": {"start", "end", "totals", "overlaps"}}.
        models: rows of ledger_models (without asof_id).
        monthly: rows of ledger_monthly (without asof_id).
        timeline: rows of ledger_timeline (without asof_id).
        flags: the flags raised at this look: model_name, type, p_value, reason, action, evidence,
            at_stake.
        fits: the kept structural fits this valuation used, per model: {key: payload, or None when
            the stored entry is still right} (D52); they replace the ``fit_cache`` rows.
        segment_sums: per A/B model with a segment, the sums its breakdown used, to keep:
            {"through", "windows", "sums"} (D68); they replace the ``segment_sums_kept`` rows.
    """

    as_of: dt.date
    reason: str
    actor: str
    alpha: float
    currency: str
    library_version: str
    refresh_id: int | None
    registry_version: int | None
    input_hash: str
    token: tuple
    periods: dict[str, Any]
    models: list[dict[str, Any]] = field(default_factory=list)
    monthly: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
    fits: dict[str, dict[str, bytes | None]] = field(default_factory=dict)
    segment_sums: dict[str, dict[str, Any]] = field(default_factory=dict)


def jsonable(value: Any) -> Any:
    """JSON-safe copy for the ledger's JSON columns (NaN → None, dates → ISO, numpy → Python): what
    a JSON round trip of ``valuetrack.jsonsafe.clean(value)`` gives, built in one pass (a valuation
    converts millions of values). The common exact types are tried first; the rest follow
    :func:`~valuetrack.jsonsafe.clean`'s branches in its order."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if isfinite(value) else None
    if kind is dict:
        return {str(k): v if type(v) in _SAFE_LEAVES else jsonable(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [v if type(v) in _SAFE_LEAVES else jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return num(value)
    if isinstance(value, pd.Timestamp):
        return clean(value)
    return jsonable(_default(value))


_SAFE_LEAVES = (str, int, bool, type(None))  # exact types a JSON round trip keeps as they are (not float: NaN)


def _default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if hasattr(value, "item"):
        return clean(value.item())
    if hasattr(value, "tolist"):
        return clean(value.tolist())
    return str(value)


def series_columns(frame: pd.DataFrame | None) -> dict[str, Any]:
    """A chart series (a frame) as the ledger stores it in ``ledger_timeline``: {column: values}.

    The long daily columns are packed (D55), each as little-endian bytes in base64: floats
    ``{"f8": ...}``, integers ``{"i8": ...}``, booleans ``{"b1": ...}``, days ``{"day0": ISO, "i4":
    ...}`` (offsets from the first day) and text ``{"levels": [...], "i4": ...}`` (codes into its
    distinct values). Any other column is its JSON values, as every column was before packing.
    :meth:`LedgerStore.timeline` unpacks both into the same JSON values: NaN and ±inf → None, days →
    ISO text. Packing the 200-model benchmark's 25 MB of series takes milliseconds, where encoding
    their numbers as JSON text took most of the ledger write."""
    if frame is None or not len(frame):
        return {}
    out: dict[str, Any] = {}
    for c in frame.columns:
        col = frame[c]
        kind = col.dtype.kind if isinstance(col.dtype, np.dtype) else "O"
        values = col.to_numpy()
        if kind == "f":
            out[str(c)] = {"f8": _b64(values, "<f8")}
        elif kind == "i":
            out[str(c)] = {"i8": _b64(values, "<i8")}
        elif kind == "b":
            out[str(c)] = {"b1": _b64(values, "u1")}
        elif kind == "M" and not np.isnat(values).any() and (values == values.astype("datetime64[D]")).all():
            days = values.astype("datetime64[D]").astype(np.int64)
            out[str(c)] = _days(days + _EPOCH)
        elif kind == "O" and len(kinds := set(map(type, values))) == 1 and kinds <= {str, dt.date}:
            if kinds == {str}:
                codes, levels = pd.factorize(values)
                out[str(c)] = {"levels": levels.tolist(), "i4": _b64(codes, "<i4")}
            else:
                ordinal = {d: d.toordinal() for d in set(values)}
                out[str(c)] = _days(np.array([ordinal[d] for d in values], dtype=np.int64))
        else:
            out[str(c)] = jsonable(col.tolist())
    return out


_EPOCH = dt.date(1970, 1, 1).toordinal()


def _b64(values: np.ndarray, dtype: str) -> str:
    return b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")


def _days(ordinals: np.ndarray) -> dict[str, str]:
    first = int(ordinals.min())
    return {"day0": dt.date.fromordinal(first).isoformat(), "i4": _b64(ordinals - first, "<i4")}


def series_values(series: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    """A stored ``ledger_timeline`` series with its packed columns unpacked: {part: {column: JSON
    values}}, as :func:`series_columns` describes (rows written before packing are already so)."""
    return {part: {c: v if type(v) is list else _unpack(v) for c, v in columns.items()}
            for part, columns in series.items()}


def _unpack(column: Mapping[str, Any]) -> list[Any]:
    if "f8" in column:
        values = np.frombuffer(b64decode(column["f8"]), "<f8")
        finite = np.isfinite(values)
        out = values.tolist()
        return out if finite.all() else [x if ok else None for x, ok in zip(out, finite.tolist())]
    if "i8" in column:
        return np.frombuffer(b64decode(column["i8"]), "<i8").tolist()
    if "b1" in column:
        return np.frombuffer(b64decode(column["b1"]), "u1").astype(bool).tolist()
    codes = np.frombuffer(b64decode(column["i4"]), "<i4").tolist()
    if "levels" in column:
        levels = column["levels"]
        return [levels[i] for i in codes]
    first = dt.date.fromisoformat(column["day0"]).toordinal()
    text = {i: dt.date.fromordinal(first + i).isoformat() for i in set(codes)}
    return [text[i] for i in codes]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a while, back on after (if it was on).

    A valuation's record is shaped and written while every model's valuation is alive (millions of
    objects): the tens of thousands of small dicts and lists the record and the write allocate
    make the collector walk all of them, for nothing, two or three times (0.15-0.2 s each on the
    200-model benchmark); with it paused they are freed by reference counting once written and
    never reach an old generation. Nothing in a record forms a reference cycle."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class LedgerStore:
    """Writes and reads of the ledger tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- write ------------------------------------------------------------------------------------

    def token(self) -> tuple:
        """The app database's data version now (take it before reading a valuation's inputs)."""
        with self.engine.connect() as conn:
            return data_version_of(conn)

    def write(self, record: LedgerRecord) -> int | None:
        """Store a valuation in one transaction; its as-of id, or None when the inputs changed since
        ``record.token`` was taken (a newer valuation is due; nothing is written)."""
        with collector_paused(), self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK})")
            if data_version_of(conn) != tuple(record.token):
                return None
            asof_id = conn.execute(ledger_asofs.insert().values(
                as_of=record.as_of, valued_at=dt.datetime.now(dt.timezone.utc), reason=record.reason,
                actor=record.actor, alpha=record.alpha, currency=record.currency,
                library_version=record.library_version, refresh_id=record.refresh_id,
                registry_version=record.registry_version, input_hash=record.input_hash,
                periods=jsonable(record.periods))).inserted_primary_key[0]
            for table, rows in ((ledger_models, record.models), (ledger_monthly, record.monthly),
                                (ledger_timeline, record.timeline)):
                if rows:
                    conn.execute(table.insert(), [{**r, "asof_id": asof_id} for r in rows])
            flags = self._flag_rows(conn, asof_id, record.as_of, record.flags,
                                    {m["model_name"] for m in record.models if m["state"] != "ok"})
            if flags:
                conn.execute(ledger_flags.insert(), flags)
            self._prune_timelines(conn, asof_id)
            self._replace_fits(conn, record.fits)
            self._replace_segment_sums(conn, record.segment_sums)
        return int(asof_id)

    @staticmethod
    def _replace_segment_sums(conn: Connection, kept: Mapping[str, Mapping[str, Any]]) -> None:
        """Make ``segment_sums_kept`` hold exactly the sums this valuation's segment breakdowns used
        (their inputs are current: this transaction checked the data version)."""
        t = segment_sums_kept
        conn.execute(t.delete())
        now = dt.datetime.now(dt.timezone.utc)
        rows = [{"model_name": m, "through": k["through"], "windows": k["windows"], "sums": k["sums"],
                 "written_at": now} for m, k in kept.items()]
        if rows:
            conn.execute(t.insert(), rows)

    def kept_segment_sums(self, name: str) -> dict[str, Any] | None:
        """The segment sums kept for a model ({"through", "windows", "sums"}; D68), or None."""
        t = segment_sums_kept
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.c.through, t.c.windows, t.c.sums).where(t.c.model_name == name)).first()
        return None if row is None else {"through": row.through, "windows": row.windows, "sums": row.sums}

    @staticmethod
    def _replace_fits(conn: Connection, fits: Mapping[str, Mapping[str, bytes | None]]) -> None:
        """Make ``fit_cache`` hold exactly the entries this valuation used: the others go, the new
        and changed ones are written, the unchanged ones stay as they are."""
        t = fit_cache
        stored = set(conn.execute(sa.select(t.c.model_name, t.c.key)).tuples())
        used = {(m, k): p for m, entries in fits.items() for k, p in entries.items()}
        gone = [{"m": m, "k": k} for m, k in stored if (m, k) not in used or used[(m, k)] is not None]
        if gone:
            conn.execute(t.delete().where(t.c.model_name == sa.bindparam("m"), t.c.key == sa.bindparam("k")), gone)
        now = dt.datetime.now(dt.timezone.utc)
        rows = [{"model_name": m, "key": k, "payload": p, "written_at": now} for (m, k), p in used.items()
                if p is not None]
        if rows:
            conn.execute(t.insert(), rows)

    def fits(self, name: str) -> dict[str, bytes]:
        """The kept structural fits of a model (key → payload; valuetrack.attribution.timeseries.FitCache)."""
        t = fit_cache
        with self.engine.connect() as conn:
            return {k: bytes(p) for k, p in conn.execute(sa.select(t.c.key, t.c.payload).where(t.c.model_name == name))}

    def _flag_rows(self, conn: Connection, asof_id: int, as_of: dt.date, flags: Iterable[Mapping[str, Any]],
                   unvalued: Collection[str] = ()) -> list[dict[str, Any]]:
        """This look's flags, each with the day it was raised (carried from the previous look while
        it stays raised), plus a "cleared" row for each flag raised at the previous look and not now.
        A model this look could not value (``unvalued``: its refresh failed, or its valuation) was
        not tested again: its flags stay raised as the previous look left them, never cleared."""
        previous = self._previous_asof(conn, as_of, asof_id)
        before: dict[tuple[str, str], Any] = {}
        if previous is not None:
            t = ledger_flags
            for row in conn.execute(sa.select(t).where(t.c.asof_id == previous, t.c.status == "raised")).mappings():
                before[(row["model_name"], row["type"])] = row
        rows, now = [], set()
        for f in flags:
            key = (f["model_name"], f["type"])
            now.add(key)
            raised_on = before[key]["raised_on"] if key in before else as_of
            rows.append({"asof_id": asof_id, "model_name": key[0], "type": key[1], "as_of": as_of, "status": "raised",
                         "raised_on": raised_on, "cleared_on": None, "p_value": f.get("p_value"),
                         "reason": f["reason"], "action": f["action"], "evidence": jsonable(f.get("evidence") or {}),
                         "at_stake": f.get("at_stake")})
        for key, row in before.items():
            if key not in now and key[0] in unvalued:  # not looked at again: carried as it was
                rows.append({**{k: row[k] for k in ("model_name", "type", "raised_on", "p_value", "reason", "action",
                                                     "evidence", "at_stake")},
                             "asof_id": asof_id, "as_of": as_of, "status": "raised", "cleared_on": None})
            elif key not in now:
                rows.append({"asof_id": asof_id, "model_name": key[0], "type": key[1], "as_of": as_of,
                             "status": "cleared", "raised_on": row["raised_on"], "cleared_on": as_of,
                             "p_value": None, "reason": row["reason"], "action": row["action"],
                             "evidence": row["evidence"], "at_stake": row.get("at_stake")})
        return rows

    @staticmethod
    def _previous_asof(conn: Connection, as_of: dt.date, asof_id: int) -> int | None:
        t = ledger_asofs
        return conn.execute(sa.select(t.c.id).where(t.c.as_of <= as_of, t.c.id != asof_id)
                            .order_by(t.c.as_of.desc(), t.c.id.desc()).limit(1)).scalar()

    @staticmethod
    def _prune_timelines(conn: Connection, newest: int) -> None:
        """Keep daily timelines for the newest as-of and the last as-of of each calendar month."""
        t = ledger_asofs
        keep = {newest}
        months: dict[str, tuple[dt.date, int]] = {}
        for as_of, asof_id in conn.execute(sa.select(t.c.as_of, t.c.id)):
            key = f"{as_of:%Y-%m}"
            if key not in months or (as_of, asof_id) > months[key]:
                months[key] = (as_of, asof_id)
        keep |= {i for _, i in months.values()}
        conn.execute(ledger_timeline.delete().where(ledger_timeline.c.asof_id.not_in(keep)))

    # -- read -------------------------------------------------------------------------------------

    def asof(self, as_of: dt.date | None = None, *, exact: bool = False,
             alpha: float | None = None) -> dict[str, Any] | None:
        """The newest as-of row: overall (``as_of`` None), on or before ``as_of``, or (``exact``) on it;
        of the given ``alpha`` only, if given."""
        t = ledger_asofs
        query = sa.select(t)
        if alpha is not None:
            query = query.where(t.c.alpha == alpha)
        if as_of is not None:
            query = query.where(t.c.as_of == as_of if exact else t.c.as_of <= as_of)
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(t.c.as_of.desc(), t.c.id.desc()).limit(1)).mappings().first()
        return dict(row) if row else None

    def first_month(self) -> str | None:
        """The first month (YYYY-MM) of the newest as-of's monthly rows, or None without any."""
        t = ledger_asofs
        newest = sa.select(t.c.id).order_by(t.c.as_of.desc(), t.c.id.desc()).limit(1).scalar_subquery()
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.min(ledger_monthly.c.month))
                                .where(ledger_monthly.c.asof_id == newest)).scalar()

    def asof_by_id(self, asof_id: int) -> dict[str, Any] | None:
        """One as-of row by its id (a final month's pinned valuation)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(ledger_asofs).where(ledger_asofs.c.id == asof_id)).mappings().first()
        return dict(row) if row else None

    def finals(self, month: str | None = None) -> list[dict[str, Any]]:
        """The versions of final months (``ledger_finals``), oldest first; of one ``month`` if given."""
        t = ledger_finals
        query = sa.select(t)
        if month is not None:
            query = query.where(t.c.month == month)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(t.c.month, t.c.version)).mappings()]

    def final(self, month: str) -> dict[str, Any] | None:
        """The month's current final version (the newest), or None while no final report was issued."""
        t = ledger_finals
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.month == month).order_by(t.c.version.desc()).limit(1)).mappings().first()
        return dict(row) if row else None

    def asofs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest valuations (without their periods), newest first."""
        t = ledger_asofs
        cols = [c for c in t.c if c.name != "periods"]
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(*cols).order_by(t.c.as_of.desc(), t.c.id.desc())
                                                  .limit(limit)).mappings()]

    def models(self, asof_id: int, name: str | None = None, *, detail: bool = True) -> list[dict[str, Any]]:
        """The valuation's model rows (``detail=False``: without the diagnostics, for portfolio reads)."""
        t = ledger_models
        cols = list(t.c) if detail else [c for c in t.c if c.name != "detail"]
        query = sa.select(*cols).where(t.c.asof_id == asof_id)
        if name is not None:
            query = query.where(t.c.model_name == name)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(t.c.model_name)).mappings()]

    def monthly(self, asof_id: int, *, month: str | None = None, name: str | None = None,
                live: bool | None = None) -> list[dict[str, Any]]:
        t = ledger_monthly
        query = sa.select(t).where(t.c.asof_id == asof_id)
        if live is not None:
            query = query.where(t.c.live == live)
        if month is not None:
            query = query.where(t.c.month == month)
        if name is not None:
            query = query.where(t.c.model_name == name)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(t.c.model_name, t.c.month)).mappings()]

    def monthly_nets(self, asof_id: int) -> dict[str, list[float | None]]:
        """Net value per live month of every model, oldest first (one query, no JSON decoded)."""
        t = ledger_monthly
        out: dict[str, list[float | None]] = {}
        with self.engine.connect() as conn:
            for name, net in conn.execute(sa.select(t.c.model_name, t.c.net)
                                          .where(t.c.asof_id == asof_id, t.c.live)
                                          .order_by(t.c.model_name, t.c.month)):
                out.setdefault(name, []).append(net)
        return out

    def monthly_net_rows(self, asof_id: int, *, month: str | None = None) -> list[tuple[str, str, float | None]]:
        """(model, month, net value) of every live month of the valuation, oldest first (no JSON decoded)."""
        t = ledger_monthly
        query = sa.select(t.c.model_name, t.c.month, t.c.net).where(t.c.asof_id == asof_id, t.c.live)
        if month is not None:
            query = query.where(t.c.month == month)
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query.order_by(t.c.model_name, t.c.month))]

    def timeline(self, asof_id: int, name: str) -> dict[str, Any] | None:
        """A model's daily chart series in the valuation: {"timeline", "cumulative", "daily": {column:
        JSON values}} (unpacked: :func:`series_values`), or None when this as-of's are not kept."""
        t = ledger_timeline
        with self.engine.connect() as conn:
            series = conn.execute(sa.select(t.c.series).where(t.c.asof_id == asof_id, t.c.model_name == name)).scalar()
        return None if series is None else series_values(series)

    def flags(self, asof_id: int, *, status: str = "raised") -> list[dict[str, Any]]:
        t = ledger_flags
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(t).where(t.c.asof_id == asof_id, t.c.status == status))
                    .mappings()]

    def last_good(self, name: str, as_of: dt.date | None = None) -> dict[str, Any] | None:
        """The model's figures to date in its newest valuation that succeeded (state "ok"), as of
        ``as_of`` or earlier: what a record in error carries, marked "last valued"."""
        m, a = ledger_models, ledger_asofs
        query = (sa.select(m.c.figures).join(a, a.c.id == m.c.asof_id)
                 .where(m.c.model_name == name, m.c.state == "ok").order_by(a.c.as_of.desc(), a.c.id.desc()).limit(1))
        if as_of is not None:
            query = query.where(a.c.as_of <= as_of)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def flag_history(self, name: str) -> list[dict[str, Any]]:
        """Every look at the model's flags (raised and cleared rows), oldest first."""
        t = ledger_flags
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(t).where(t.c.model_name == name)
                                                  .order_by(t.c.as_of, t.c.asof_id, t.c.type)).mappings()]
