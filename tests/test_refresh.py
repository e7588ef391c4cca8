"""`valuetrack refresh`: incremental pulls, stored results with provenance, and a failing warehouse
that leaves the last good figures in place, marked stale."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

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


def test_an_edit_of_what_the_queries_read_rereads_the_history(workspace: Path, cli) -> None:
    """D66: a model whose outcome window (or any input of its queries) is edited after a refresh has
    its whole history read again by the next refresh, so that its figures equal those of a model
    registered with the new definition from the start, not a mix of final cohorts read one way and
    new ones the other; an edit of money alone keeps the refresh incremental."""
    import dataclasses

    from valuetrack.actions import save

    assert cli("demo", "--scale", "0.05", "--as-of", "2026-03-01").code == 0
    assert cli("refresh", "--as-of", "2026-03-01").code == 0
    ctx = open_context()
    old = ctx.registry.get("homepage-recs")
    a = old.spec.attribution
    assert a.window_days != 7
    week = dataclasses.replace(a, window_days=7)
    # the same model's rows, read with a 7-day outcome window from its first refresh on
    save(ctx, old.spec.replace(name="recs-week", display_name="Recs, 7-day window", attribution=dataclasses.replace(
        week, exposures=dataclasses.replace(a.exposures, model_value="homepage-recs"))))
    save(ctx, old.spec.replace(attribution=week), expected_revision=old.revision)

    def refreshed(model: str, as_of: str) -> dict:
        out = cli("refresh", "--as-of", as_of, "--model", model, "--json", schema="refresh")
        assert out.code == 0, out.err
        return out.json["refreshed"][0]

    assert refreshed("recs-week", "2026-03-02")["since_day"] is None  # its first refresh
    assert refreshed("homepage-recs", "2026-03-02")["since_day"] is None  # the whole history again
    models = {m["model"]: m for m in cli("value", "--as-of", "2026-03-02", "--json", schema="value").json["models"]}
    edited, fresh = models["homepage-recs"], models["recs-week"]
    assert edited["gross"] == fresh["gross"] and edited["gross_se"] == fresh["gross_se"]
    assert edited["treated_units"] == fresh["treated_units"]

    # the next refresh is incremental again, and so is one after an edit of money only
    assert refreshed("homepage-recs", "2026-03-03")["since_day"] is not None
    now = ctx.registry.get("homepage-recs")
    save(ctx, now.spec.replace(monthly_cost=now.spec.monthly_cost + 100), expected_revision=now.revision)
    assert refreshed("homepage-recs", "2026-03-04")["since_day"] is not None


def test_a_model_refreshed_alone_enters_the_overlap_deduction(workspace: Path, cli) -> None:
    """A copy of a model (the same exposures, units and KPI), registered and refreshed alone with
    `refresh --model`: the portfolio deducts the value the two count twice at once, as a refresh of
    every model does, rather than adding the copy's value to the total until the next full refresh."""
    from tests.manifests import copy_of_the_most_valuable

    assert cli("demo", "--scale", "0.05", "--as-of", "2026-03-01").code == 0
    assert cli("refresh", "--as-of", "2026-03-01").code == 0
    before = cli("value", "--as-of", "2026-03-01", "--json", schema="value").json
    copy_of_the_most_valuable(before["models"])  # it claims the same value again
    assert cli("refresh", "--as-of", "2026-03-01", "--model", "the-copy").code == 0
    alone = cli("value", "--as-of", "2026-03-01", "--json", schema="value").json
    copy = {m["model"]: m for m in alone["models"]}["the-copy"]
    assert copy["gross"] > 0
    assert alone["totals"]["double_counted"] >= before["totals"]["double_counted"] + 0.9 * copy["gross"]
    assert cli("refresh", "--as-of", "2026-03-01").code == 0
    every = cli("value", "--as-of", "2026-03-01", "--json", schema="value").json
    assert alone["totals"]["double_counted"] == pytest.approx(every["totals"]["double_counted"], rel=1e-9)
    assert alone["totals"]["net"] == pytest.approx(every["totals"]["net"], rel=1e-9)


def test_refresh_model_repeated_refreshes_each_named_model(workspace: Path, cli) -> None:
    """`--model A --model B` refreshes both (it refreshed only the last one named); an unknown name
    among them fails before any refresh starts."""
    assert cli("demo", "--scale", "0.05", "--as-of", "2026-03-01").code == 0
    out = cli("refresh", "--as-of", "2026-03-01", "--model", "homepage-recs", "--model", "dynamic-pricing",
              "--model", "homepage-recs", "--json", schema="refresh")
    assert out.code == 0, out.err
    assert [r["model"] for r in out.json["refreshed"]] == ["homepage-recs", "dynamic-pricing"]
    assert {r["status"] for r in out.json["refreshed"]} == {"ok"}
    ctx = open_context()
    before = len(AggregateStore(ctx.engine).refreshes("cart-abandon-reminder"))
    bad = cli("refresh", "--as-of", "2026-03-01", "--model", "cart-abandon-reminder", "--model", "no-such-model")
    assert bad.code != 0 and "no-such-model" in bad.err
    assert len(AggregateStore(ctx.engine).refreshes("cart-abandon-reminder")) == before
