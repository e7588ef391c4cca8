"""The kept segment sums' table (``segment_sums_kept``, D68) on SQLite and PostgreSQL: written in the
ledger's transaction, it holds exactly the sums the newest valuation used, read back unchanged."""

from __future__ import annotations

import datetime as dt

from valuetrack.store.db import open_engine
from valuetrack.store.ledger import LedgerRecord, LedgerStore


def test_the_newest_valuation_replaces_the_kept_segment_sums(store_url: str) -> None:
    store = LedgerStore(open_engine(store_url))  # migrated to the newest revision, 0026 included

    def record(sums: dict, token: tuple | None = None) -> LedgerRecord:
        return LedgerRecord(
            as_of=dt.date(2026, 3, 1), reason="revalue", actor="tester", alpha=0.05, currency="USD",
            library_version="test", refresh_id=None, registry_version=None, input_hash="0" * 64,
            token=store.token() if token is None else token, periods={}, segment_sums=sums)

    rows = [{"segment": "DE", "arm": "control", "n": 2**40 + 1, "n_units": 7, "sum_y": 0.1 + 0.2,
             "sum_y2": 1e300, "sum_x": None, "sum_x2": None, "sum_xy": None},
            {"segment": "Ünïcode ' \" <b>", "arm": "treatment", "n": 3, "n_units": 3, "sum_y": -2.5e-17,
             "sum_y2": 4.0, "sum_x": 1.0, "sum_x2": 1.0, "sum_xy": 1.0}]
    a = {"through": dt.date(2026, 2, 1), "windows": "[]", "sums": rows}
    b = {"through": dt.date(2026, 1, 15), "windows": '[["2026-01-02", "2026-01-03"]]', "sums": rows[:1]}
    assert store.write(record({"a": a, "b": b})) is not None
    assert store.kept_segment_sums("a") == a and store.kept_segment_sums("b") == b  # floats bit for bit

    # the next valuation keeps a's sums through a later day; b no longer has a segment: its entry goes
    a2 = {**a, "through": dt.date(2026, 2, 2)}
    assert store.write(record({"a": a2})) is not None
    assert store.kept_segment_sums("a") == a2
    assert store.kept_segment_sums("b") is None and store.kept_segment_sums("nobody") is None

    # a valuation whose inputs changed meanwhile writes nothing, kept sums included
    assert store.write(record({}, token=(-1,))) is None
    assert store.kept_segment_sums("a") == a2
