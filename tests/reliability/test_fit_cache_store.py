"""The kept structural fits' table (``fit_cache``, D52) on SQLite and PostgreSQL: written in the
ledger's transaction, it holds exactly the entries the newest valuation used, bytes unchanged."""

from __future__ import annotations

import datetime as dt

from valuetrack.store.db import open_engine
from valuetrack.store.ledger import LedgerRecord, LedgerStore


def test_the_newest_valuation_replaces_the_kept_fits(store_url: str) -> None:
    store = LedgerStore(open_engine(store_url))  # migrated to the newest revision, 0021 included

    def write(fits: dict) -> int | None:
        return store.write(LedgerRecord(
            as_of=dt.date(2026, 3, 1), reason="revalue", actor="tester", alpha=0.05, currency="USD",
            library_version="test", refresh_id=None, registry_version=None, input_hash="0" * 64,
            token=store.token(), periods={}, fits=fits))

    one, two = bytes(range(256)), b"\x00two\x00"
    assert write({"a": {"k1": one, "k2": two}, "b": {"k3": b"three"}}) is not None
    assert store.fits("a") == {"k1": one, "k2": two} and store.fits("b") == {"k3": b"three"}

    # the next valuation: k1 as stored (None: not rewritten), k2 with new states, k4 new; model b
    # is no longer structural, so its entry goes
    assert write({"a": {"k1": None, "k2": b"two, again", "k4": b"four"}}) is not None
    assert store.fits("a") == {"k1": one, "k2": b"two, again", "k4": b"four"}
    assert store.fits("b") == {} and store.fits("nobody") == {}

    # a valuation whose inputs changed meanwhile writes nothing, kept fits included
    stale = LedgerRecord(as_of=dt.date(2026, 3, 1), reason="revalue", actor="tester", alpha=0.05, currency="USD",
                         library_version="test", refresh_id=None, registry_version=None, input_hash="0" * 64,
                         token=(-1,), periods={}, fits={"a": {}})
    assert store.write(stale) is None
    assert store.fits("a") == {"k1": one, "k2": b"two, again", "k4": b"four"}
