"""Overrides and the CLI of notes on the demo company (issue 17, docs/decisions.md D37): the adjustment
is hand-computable from the stored months, months add up to the to-date figure, statistics and flags
do not move, reads never value, and bad input is refused with the field named."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

AS_OF = "2026-03-01"


@pytest.fixture
def valued(workspace: Path, cli) -> Path:
    assert cli("demo", "--scale", "0.05", "--as-of", AS_OF).code == 0
    assert cli("refresh", "--as-of", AS_OF).code == 0
    return workspace


def test_overrides_adjust_only_the_adjusted_figure(valued: Path, cli) -> None:
    from valuetrack import ledger
    from valuetrack.context import open_context

    before = cli("value", "--json", schema="value").json
    flags_before = cli("flags", "--json", schema="flags").json
    m0 = next(m for m in before["models"] if m["model"] == "homepage-recs")
    ctx = open_context()
    months = {f"{m.period_start:%Y-%m}": m for m in ledger.model(ctx, "homepage-recs").months}
    first = dt.date.fromisoformat(f"{sorted(months)[-2]}-01")  # a share from the start of the last full month

    r = cli("notes", "override", "homepage-recs", "--share", "0.6", "--from", first.isoformat(), "--reason",
            "finance: 60 % of the uplift since the price change", "--json", schema="notes_override")
    assert r.code == 0 and r.json["valued"]["reason"] == "edit"
    assert cli("notes", "override", "homepage-recs", "--amount", "-1000", "--on", f"{sorted(months)[1]}-15",
               "--reason", "refunds booked outside the KPI", "--json", schema="notes_override").code == 0
    after = cli("value", "--json", schema="value").json
    m1 = next(m for m in after["models"] if m["model"] == "homepage-recs")

    covered = sum(months[k].gross for k in months if k >= f"{first:%Y-%m}")
    assert m1["override_amount"] == pytest.approx(-0.4 * covered - 1000.0, abs=0.005)
    assert m1["net_adjusted"] == pytest.approx(m1["net"] + m1["override_amount"], abs=1e-9)
    share, amount = m1["overrides"]
    assert share["effect"] == pytest.approx(-0.4 * covered, abs=0.005) and amount["effect"] == -1000.0
    # statistics, intervals, flags and payback are those of the unadjusted estimate
    for k in ("net", "ci_net", "gross", "gross_se", "prob_positive", "expected_loss", "payback_date", "p_value"):
        assert m1[k] == m0[k], k
    assert cli("flags", "--json", schema="flags").json["flags"] == flags_before["flags"]
    # months add up to the to-date adjustment; totals carry it
    record = ledger.model(open_context(), "homepage-recs")
    assert sum(m.override_amount for m in record.months) == pytest.approx(m1["override_amount"], abs=1e-6)
    assert after["totals"]["override_amount"] == pytest.approx(m1["override_amount"], abs=1e-6)
    assert after["totals"]["net_adjusted"] == pytest.approx(after["totals"]["net"] + m1["override_amount"], abs=1e-6)
    assert after["totals"]["net"] == before["totals"]["net"]


def test_reads_never_value_and_bad_input_names_the_field(valued: Path, cli) -> None:
    from valuetrack import ledger
    from valuetrack.context import open_context

    n = len(ledger.history(open_context()))
    assert cli("notes", "list", "--json", schema="notes_list").json["notes"] == []
    assert cli("value", "--json", schema="value").code == 0 and cli("models", "show", "homepage-recs").code == 0
    assert len(ledger.history(open_context())) == n  # reads value nothing

    r = cli("notes", "exclude", "homepage-recs", "--from", "2026-02-10", "--to", "2026-02-01", "--reason", "x", "--json")
    assert r.code == 1 and "exclusion.to: 2026-02-01 is before exclusion.from 2026-02-10" in r.json["error"]["message"]
    assert cli("notes", "override", "homepage-recs", "--share", "0.5", "--amount", "3", "--reason", "x").code == 2
    assert cli("notes", "override", "homepage-recs", "--amount", "3", "--from", "2026-01-01", "--reason", "x").code == 2
    assert cli("notes", "override", "homepage-recs", "--share", "inf", "--reason", "x").code == 2
    assert cli("notes", "annotate", "homepage-recs", "--on", "2026-13-01", "--text", "x").code == 2
    r = cli("notes", "annotate", "nope", "--on", "2026-01-01", "--text", "x", "--json")
    assert r.code == 1 and r.json["error"]["code"] == "not_found"
    r = cli("notes", "withdraw", "99", "--reason", "x", "--json")
    assert r.code == 1 and "no note number 99" in r.json["error"]["message"]
    assert len(ledger.history(open_context())) == n
    assert cli("notes", "list", "--all", "--json", schema="notes_list").json["notes"] == []

    r = cli("notes", "annotate", "homepage-recs", "--on", "2026-02-01", "--text", "v2", "--category", "release",
            "--json", schema="notes_annotate")
    assert r.code == 0 and len(ledger.history(open_context())) == n + 1  # a change values once
    w = cli("notes", "withdraw", str(r.json["note"]["id"]), "--reason", "wrong day", "--json", schema="notes_withdraw")
    assert w.code == 0 and w.json["note"]["withdrawn_reason"] == "wrong day" and not w.json["note"]["active"]
    listed = cli("notes", "list", "homepage-recs", "--all", "--json", schema="notes_list").json["notes"]
    assert [(x["kind"], x["active"]) for x in listed] == [("annotation", False)]
    text = cli("notes", "list", "homepage-recs", "--all").out
    assert "withdrawn" in text and "wrong day" in text
