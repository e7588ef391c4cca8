"""On the demo company (scale 1): `valuetrack refresh && valuetrack flags --json` flags exactly the
models the generator made worthless, negative, too costly or broken, with the right reason, and
none of the valuable ones; `value --json` recovers the generated effects."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from valuetrack.demo import GROUND_TRUTH

AS_OF = "2026-06-15"


@pytest.fixture(scope="module")
def demo(demo_builder) -> Path:
    return demo_builder(1.0, AS_OF)


@pytest.fixture
def in_demo(demo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(demo)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    return demo


def test_flags_match_the_ground_truth(in_demo: Path, cli) -> None:
    result = cli("flags", "--as-of", AS_OF, "--json", schema="flags")
    assert result.code == 0
    raised: dict[str, set[str]] = {}
    for flag in result.json["flags"]:
        raised.setdefault(flag["model"], set()).add(flag["type"])
        assert flag["reason"] and flag["action"]
    for name, truth in GROUND_TRUTH.items():
        got = raised.get(name, set())
        assert set(truth.flags) <= got <= set(truth.flags) | set(truth.may_also_flag), (name, truth.verdict, got)
    valuable = {n for n, t in GROUND_TRUTH.items() if not t.flags}
    assert valuable and not (valuable & set(raised))
    assert cli("flags", "--as-of", AS_OF, "--fail-on-flags").code == 3


def test_value_recovers_generated_effects(in_demo: Path, cli) -> None:
    out = cli("value", "--as-of", AS_OF, "--json", schema="value").json
    by_name = {m["model"]: m for m in out["models"]}
    assert set(by_name) == set(GROUND_TRUTH)
    for name, truth in GROUND_TRUTH.items():
        m = by_name[name]
        if truth.method != "ab" or "untrustworthy" in truth.flags:
            continue
        # the generated per-unit effect lies within 4 standard errors of the estimate
        assert abs(m["effect_abs"] - truth.effect_abs) <= 4 * m["effect_se"], (name, m["effect_abs"], truth.effect_abs)
        assert (m["gross"] > 0) == (truth.gross_per_month > 0) or abs(truth.gross_per_month) < 1e-9 or "unproven" in truth.flags


def test_months_add_up_to_the_to_date_figure(in_demo: Path, cli) -> None:
    to_date = {m["model"]: m for m in cli("value", "--as-of", AS_OF, "--json", schema="value").json["models"]}
    name = "homepage-recs"
    start = dt.date.fromisoformat(to_date[name]["period_start"])
    month = dt.date(start.year, start.month, 1)
    gross = cost = 0.0
    while month < dt.date.fromisoformat(AS_OF):
        m = {x["model"]: x for x in cli("value", "--as-of", AS_OF, "--month", month.strftime("%Y-%m"), "--json",
                                         schema="value").json["models"]}[name]
        gross += m["gross"] or 0.0
        cost += m["cost"]
        month = (month + dt.timedelta(days=32)).replace(day=1)
    assert gross == pytest.approx(to_date[name]["gross"], rel=1e-9)
    assert cost == pytest.approx(to_date[name]["cost"], rel=1e-9)


def test_overlapping_models_are_found(in_demo: Path, cli) -> None:
    overlaps = cli("value", "--as-of", AS_OF, "--json", schema="value").json["overlaps"]
    pairs = {(o["model_a"], o["model_b"]): o for o in overlaps}
    shared = pairs[("homepage-recs", "search-ranking-v4")]  # the generator makes these two share customers
    assert shared["shared_kpi"] and shared["shared_units"] > 0 and 0 < shared["share_a"] < 1


def test_the_demo_designs_beyond_one_holdout(in_demo: Path, cli) -> None:
    """checkout-ranking's challenger v2 is promoted; search-suggest's ramp is stratified by step."""
    by_name = {m["model"]: m for m in cli("value", "--as-of", AS_OF, "--json", schema="value").json["models"]}
    duel = by_name["checkout-ranking"]["design"]["challenger"]
    assert duel["recommendation"] == "promote", duel
    ramp = by_name["search-suggest"]["design"]["ramp"]
    assert [p["treatment_share"] for p in ramp["periods"]] == [0.1, 0.5, 0.9]
    assert abs(sum(p["weight"] for p in ramp["periods"]) - 1) < 1e-9


def test_fraud_screens_cost_rise_mid_life_to_the_cent(in_demo: Path, cli) -> None:
    """The demo's fraud-screen costs 9,000 a month until 16 December 2025 and 12,000 from the 17th
    (180 days before the as-of date; GROUND_TRUTH.cost_changes). December = 16/31 × 9,000 +
    15/31 × 12,000 = 324,000 / 31 = 10,451.61; each month also pays 0.50 per 1,000 predictions."""
    truth = GROUND_TRUTH["fraud-screen"]
    assert truth.cost_changes == ((180, 12000.0),)
    assert dt.date.fromisoformat(AS_OF) - dt.timedelta(days=180) == dt.date(2025, 12, 17)
    fixed = {}
    for month in ("2025-11", "2025-12", "2026-01"):
        m = next(x for x in cli("value", "--as-of", AS_OF, "--month", month, "--json", schema="value").json["models"]
                 if x["model"] == "fraud-screen")
        fixed[month] = round(m["cost"] - 0.5 * m["predictions"] / 1000, 2)
    assert fixed == {"2025-11": 9000.00, "2025-12": 10451.61, "2026-01": 12000.00}
    # the one-off build cost is amortised in the fully loaded view: 90,000 over 36 months from the
    # launch, 2025-02-20 .. 2028-02-19 = 1,095 days; to 14 June 2026 = 480 days → 39,452.05
    m = next(x for x in cli("value", "--as-of", AS_OF, "--json", schema="value").json["models"] if x["model"] == "fraud-screen")
    assert round(m["amortisation"], 2) == round(90000 * 480 / 1095, 2) == 39452.05
    assert m["net_fully_loaded"] == pytest.approx(m["net"] - m["amortisation"], abs=1e-6)
