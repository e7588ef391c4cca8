"""Guardrails end to end on the demo company (scale 1): coupon-targeting's refund-rate guardrail is
breached and flagged, the guardrails' true harms are recovered, the guardrail that enters net value
is inside the model's gross to the cent while the one inside the KPI is not, and each guardrail's
query is recorded with its cost in the refresh."""

from __future__ import annotations

from pathlib import Path

import pytest

from valuetrack.demo import GROUND_TRUTH

AS_OF = "2026-06-15"
NAME = "coupon-targeting"


@pytest.fixture(scope="module")
def demo(demo_builder) -> Path:
    return demo_builder(1.0, AS_OF)


@pytest.fixture
def in_demo(demo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(demo)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    return demo


def test_breached_guardrail_is_flagged_and_named(in_demo: Path, cli) -> None:
    flags = cli("flags", "--as-of", AS_OF, "--json", schema="flags").json["flags"]
    mine = [f for f in flags if f["model"] == NAME]
    assert [f["type"] for f in mine] == ["guardrail_breach"]
    by_name = {g["name"]: g for g in mine[0]["evidence"]["guardrails"]}
    truth = {g.name: g for g in GROUND_TRUTH[NAME].guardrails}
    assert {n: g["breached"] for n, g in by_name.items()} == {n: t.breached for n, t in truth.items()} == \
        {"refund_rate": True, "refund_amount": False}
    assert "refund_rate rises by" in mine[0]["reason"] and "points per treated unit" in mine[0]["reason"]
    # no other model has guardrails, so no other model can breach one
    assert {f["model"] for f in flags if f["type"] == "guardrail_breach"} == {NAME}


def test_guardrail_harms_recover_the_truth_and_money_enters_net_once(in_demo: Path, cli) -> None:
    model = {m["model"]: m for m in cli("value", "--as-of", AS_OF, "--json", schema="value").json["models"]}[NAME]
    got = {g["name"]: g for g in model["guardrails"]}
    for t in GROUND_TRUTH[NAME].guardrails:
        g = got[t.name]
        assert abs(g["harm_per_unit"] - t.harm_per_unit) <= 4 * g["effect_se"], (t.name, g["harm_per_unit"], t)
        assert (g["in_main_kpi"], g["in_net"]) == (t.in_main_kpi, not t.in_main_kpi)
    units = model["treated_units"]
    rate, amount = got["refund_rate"], got["refund_amount"]
    # the guardrail's money is −harm × value per unit × treated units ...
    assert rate["value"] == pytest.approx(-rate["harm_per_unit"] * 12.0 * units, rel=1e-12)
    assert amount["value"] == pytest.approx(-amount["harm_per_unit"] * 0.3 * units, rel=1e-12)
    # ... gross = the KPI's value + the refund-rate guardrail's (the refund amounts are inside net revenue)
    kpi_gross = model["effect_abs"] * units * 0.3
    assert model["gross"] == pytest.approx(kpi_gross + rate["value"], abs=0.005)
    assert model["net"] == pytest.approx(model["gross"] - model["cost"], abs=0.005)
    # the interval is never narrower than the KPI's alone: standard errors add (no covariance stored)
    assert model["gross_se"] == pytest.approx(model["effect_se"] * units * 0.3 + rate["value_se"], rel=1e-9)


def test_each_guardrail_query_is_recorded_with_its_cost(in_demo: Path) -> None:
    from valuetrack.context import open_context

    ctx = open_context(cwd=in_demo)
    cost = ctx.aggregates.refreshes(NAME, limit=1)["cost"].iloc[0]
    purposes = [q["purpose"] for q in cost["queries"]]
    assert {"ab", "guardrail-refund_rate", "guardrail-refund_amount"} <= set(purposes)
    assert cost["total"]["queries"] == len(purposes)
    stored = ctx.aggregates.read_guardrails(NAME)
    assert set(stored["guardrail"]) == {"refund_rate", "refund_amount"} and stored["n"].sum() > 0
