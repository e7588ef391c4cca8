"""`valuetrack demo` builds the warehouse and registers the demo models; a second run changes nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from valuetrack.demo import GROUND_TRUTH


def test_demo_is_idempotent(workspace: Path, cli) -> None:
    as_of = "2026-06-15"
    first = cli("demo", "--scale", "0.05", "--as-of", as_of, "--json", schema="demo")
    assert first.code == 0 and first.json["rebuilt"] is True
    assert first.json["created"] == len(GROUND_TRUTH) >= 8
    second = cli("demo", "--scale", "0.05", "--as-of", as_of, "--json", schema="demo")
    assert second.json["rebuilt"] is False
    assert (second.json["created"], second.json["updated"], second.json["unchanged"]) == (0, 0, len(GROUND_TRUTH))
    listing = cli("models", "list", "--json", schema="models_list").json["models"]
    assert {m["name"] for m in listing} == set(GROUND_TRUTH) and all(m["revision"] == 1 for m in listing)
    with duckdb.connect(str(workspace / "sample_data" / "demo.duckdb"), read_only=True) as con:
        last = con.execute("select max(scored_at)::date from exposures").fetchone()[0]
    assert last == dt.date(2026, 6, 14)  # data runs to the day before as_of
