"""`valuetrack refresh`: incremental pulls, stored results with provenance, and a failing warehouse
that leaves the last good figures in place, marked stale."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from valuetrack import __version__
from valuetrack.context import open_context
from valuetrack.store.aggregates import AggregateStore
from valuetrack import ledger


def test_refresh_is_incremental_and_stores_results_with_provenance(workspace: Path, cli) -> None:
    assert cli("demo", "--scale", "0.05", "--as-of", "2026-03-01").code == 0
    first = cli("refresh", "--as-of", "2026-03-01", "--json", schema="refresh").json["refreshed"]
    assert {r["status"] for r in first} == {"ok"} and all(r["since_day"] is None for r in first)
    second = cli("refresh", "--as-of", "2026-03-01", "--model", "homepage-recs", "--json", schema="refresh").json
    ctx = open_context()
    a = ctx.registry.get("homepage-recs").spec.attribution
    # cohorts up to as_of − window − lag were final: the second pull starts the day after
    expected = dt.date(2026, 3, 1) - dt.timedelta(days=a.window_days + a.outcome_lag_days - 1)
    assert second["refreshed"][0]["since_day"] == expected.isoformat()

    # each refresh ended in one portfolio-wide valuation in the ledger, with provenance
    valuations = ledger.history(ctx)
    assert [v["reason"] for v in valuations] == ["refresh", "refresh"]
    assert valuations[0]["library_version"] == __version__ and valuations[0]["as_of"] == dt.date(2026, 3, 1)
    record = ledger.model(ctx, "homepage-recs")
    assert record.value.registry_revision == 1 and record.state == "ok" and len(record.input_hash) == 64
    last_ok = AggregateStore(ctx.engine).status("homepage-recs").last_ok
    assert record.refresh_id == last_ok["id"]
    assert last_ok["started_by"] == "tester@example.com"  # every refresh records who ran it
    now = {m["model"]: m for m in cli("value", "--as-of", "2026-03-01", "--json", schema="value").json["models"]}
    assert record.value.net == now["homepage-recs"]["net"]


def test_failing_warehouse_keeps_last_good_figures_and_marks_them_stale(workspace: Path, cli) -> None:
    cli("demo", "--scale", "0.05", "--as-of", "2026-03-01")
    cli("refresh", "--as-of", "2026-03-01")
    before = {m["model"]: m["net"] for m in cli("value", "--as-of", "2026-03-01", "--json", schema="value").json["models"]}
    cfg = workspace / "valuetrack.toml"
    cfg.write_text(cfg.read_text().replace("duckdb:///sample_data/demo.duckdb", "duckdb:///missing-folder/demo.duckdb"))
    failed = cli("refresh", "--as-of", "2026-03-02", "--json", schema="refresh")
    assert failed.code == 1
    assert {r["status"] for r in failed.json["refreshed"]} == {"failed"}
    assert all(r["error"] for r in failed.json["refreshed"])
    after = {m["model"]: m["net"] for m in cli("value", "--as-of", "2026-03-01", "--json", schema="value").json["models"]}
    assert after == before
    status = AggregateStore(open_context().engine).status("homepage-recs")
    assert status.stale and "last refresh failed" in status.reason
