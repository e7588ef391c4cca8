"""The model page: every demo model renders; its figures equal `valuetrack value --json` to the cent."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pages.conftest import app, assert_clean, html_tables, svg_charts
from valuetrack.formatting import money_column, money_compact, p_value, pct


@pytest.mark.parametrize("name", ["homepage-recs", "dynamic-pricing", "signup-risk-gate"])
def test_model_matches_the_cli_to_the_cent(in_demo: Path, value_json: dict, name: str) -> None:
    at = app("pages/model.py", model=name).run()
    assert_clean(at)
    m = next(x for x in value_json["models"] if x["model"] == name)
    cur = m["currency"]
    assert at.title[0].value == m["display_name"]
    metrics = {x.label: x.value for x in at.metric}
    assert metrics["Net value to date"] == money_compact(m["net"], cur)  # tiles: compact
    assert metrics["Gross value"] == money_compact(m["gross"], cur)
    assert metrics["ROI (running costs)"] == pct(m["roi"])
    # the figures table: the CLI's numbers, one precision for the column, both cost views labelled
    table = next(t for t in html_tables(at) if t["id"] == "figures")
    figures = {r["cells"][0]: r["cells"][1] for r in table["rows"]}
    want = money_column([m["gross"], m["cost"], m["net"], *m["ci_net"], m["amortisation"], m["net_fully_loaded"]], cur)
    assert [figures[k] for k in ("Gross value", "Running costs", "Net value (running costs)",
                                 "Net value (running costs), 95% low", "Net value (running costs), 95% high",
                                 "One-off costs amortised", "Net value (fully loaded)")] == want
    assert len({len(v.rpartition(".")[2]) if "." in v else 0 for v in figures.values()}) == 1
    # the Value section's charts are SVG (D51): uplift or counterfactual, cumulative, monthly; no plotly
    labels = [c.get("aria-label") for c in svg_charts(at)]
    assert len(labels) == 3 and labels[1:] == [f"Cumulative net value ({cur})", f"Net value by month ({cur})"], labels
    assert not at.get("plotly_chart")
    # one section at a time, the one in the address: the registry entry is in its own
    registry = app("pages/model.py", model=name, section="Registry & audit log").run()
    assert_clean(registry)
    assert registry.get("code")[0].value.startswith("# valuetrack model manifest")
    assert not registry.get("plotly_chart") and not at.get("code")  # the Value section's charts are not drawn there


def test_one_off_costs_show_in_the_fully_loaded_view(in_demo: Path, value_json: dict) -> None:
    """fraud-screen's one-off cost is not only under Payback: the fully loaded tiles deduct it,
    amortised, and the tiles say which view each figure is (issue 16)."""
    m = next(x for x in value_json["models"] if x["model"] == "fraud-screen")
    cur = m["currency"]
    assert m["amortisation"] > 0
    assert m["net_fully_loaded"] == pytest.approx(m["gross"] - m["cost"] - m["amortisation"], abs=0.01)
    at = app("pages/model.py", model="fraud-screen").run()
    assert_clean(at)
    tiles = {x.label: x for x in at.metric}
    assert tiles["Net value (fully loaded)"].value == money_compact(m["net_fully_loaded"], cur)
    assert tiles["ROI (fully loaded)"].value == pct(m["roi_fully_loaded"])
    assert tiles["One-off costs amortised"].value == money_compact(m["amortisation"], cur)
    assert "cost since launch" not in tiles["Net value to date"].help
    assert "running costs" in tiles["Net value to date"].help and "One-off costs are not included" in tiles["Net value to date"].help
    # the Costs section's chart: the monthly cost as steps, changing on the day it changed (scale 0.1:
    # 900 a month from the launch, 1,200 from 17 December 2025), one-off costs as dated markers
    import json

    costs = app("pages/model.py", model="fraud-screen", section="Costs").run()
    assert_clean(costs)
    spec = next(json.loads(c.proto.spec) for c in costs.get("plotly_chart") if "monthly cost in effect" in c.proto.spec)
    step = next(t for t in spec["data"] if t.get("name") == "monthly cost in effect")
    assert step["line"]["shape"] == "hv"
    assert [x[:10] for x in step["x"]][:2] == ["2025-02-20", "2025-12-17"], step["x"]
    assert step["y"][:3] == [900.0, 1200.0, 1200.0], step["y"]
    assert any(str(t.get("name", "")).startswith("one-off cost") for t in spec["data"])


def test_every_demo_model_renders(in_demo: Path, value_json: dict) -> None:
    at = app("pages/model.py").run()
    for m in value_json["models"]:
        at.selectbox(key="model").set_value(m["model"]).run()
        assert_clean(at)
        assert at.title[0].value == m["display_name"]
        assert at.query_params["model"] == m["model"]


def test_unknown_model_falls_back_with_a_message(in_demo: Path) -> None:
    at = app("pages/model.py", model="nope").run()
    assert_clean(at)
    assert "No model named 'nope'" in at.warning[0].value


def test_a_classifier_shows_its_decisions_beside_the_causal_value(in_demo: Path, value_json: dict) -> None:
    m = next(x for x in value_json["models"] if x["model"] == "fraud-screen")
    d, cur = m["decisions"], m["currency"]
    at = app("pages/model.py", model="fraud-screen", section="Decisions").run()
    assert_clean(at)
    assert [t.label for t in at.tabs][-1] == "Decisions"
    metrics = {x.label: x.value for x in at.metric}
    assert metrics["Decisions' value"] == money_compact(d["total"], cur)
    assert metrics["Realised (labelled)"] == money_compact(d["realised"], cur)
    assert metrics["Estimate, labels pending"] == money_compact(d["estimate"], cur)
    assert metrics["Gross value"] == money_compact(m["gross"], cur)  # the causal figure is unchanged by the decisions
    assert any("never added to it" in c.value for c in at.caption)
    # the monthly check: a table of formatted money (one precision per column) and p-values, whole
    # (it was a scrolling frame of raw numbers)
    checks = next(t for t in html_tables(at) if t["id"] == "decision-checks")
    rows = [r["cells"] for r in checks["rows"]]
    newest_first = d["checks"][::-1]
    assert [r[0] for r in rows] == [c["month"] for c in newest_first]
    assert [r[2] for r in rows] == money_column([c["estimated"] for c in newest_first], cur)
    assert [r[4] for r in rows] == money_column([c["gap"] for c in newest_first], cur)
    assert [r[5] for r in rows] == [p_value(c["p_value"]) for c in newest_first]
    # a model without [decisions] has no such tab
    other = app("pages/model.py", model="homepage-recs").run()
    assert "Decisions" not in [t.label for t in other.tabs]


def test_guardrails_section_shows_the_ledgers_figures(in_demo: Path, value_json: dict) -> None:
    """coupon-targeting's guardrails: each harm with its interval against its tolerance, breached as the
    flag says, and whether its money is in net value or already inside the KPI; none elsewhere."""
    from valuetrack.formatting import kpi_amount, money

    m = next(x for x in value_json["models"] if x["model"] == "coupon-targeting")
    at = app("pages/model.py", model="coupon-targeting").run()
    assert_clean(at)
    table = next(t for t in html_tables(at) if t["id"] == "guardrails")
    rows = {r["cells"][0]: r["cells"] for r in table["rows"]}
    assert set(rows) == {"refund_rate", "refund_amount"}
    named = {g["name"] for f in value_json["flags"] if f["model"] == "coupon-targeting" and f["type"] == "guardrail_breach"
             for g in f["evidence"]["guardrails"] if g["breached"]}
    for g in m["guardrails"]:
        cells = rows[g["name"]]
        assert cells[2].startswith(kpi_amount(g["harm_per_unit"], g["unit"]))
        assert cells[3] == kpi_amount(g["tolerance"], g["unit"])
        assert cells[4] == ("breached" if g["name"] in named else "not breached")
    assert rows["refund_rate"][5] == f"{money(m['guardrails'][0]['value'], m['currency'])}, in net value"
    assert rows["refund_amount"][5].endswith("inside the KPI: not added")
    other = app("pages/model.py", model="homepage-recs").run()
    assert not [t for t in html_tables(other) if t["id"] == "guardrails"]


def test_the_method_section_shows_the_uplift_per_segment(in_demo: Path) -> None:
    """homepage-recs breaks its results down by country (attribution.exposures.segment): the Method
    section's table has one row per segment, with the units and the p-value of its ledger record."""
    from valuetrack import ledger
    from valuetrack.context import open_context
    from valuetrack.formatting import p_value

    segments = ledger.model(open_context(), "homepage-recs").detail["segments"]
    assert len(segments) >= 2 and all(s["effect_abs"] is not None for s in segments)
    at = app("pages/model.py", model="homepage-recs", section="Method & diagnostics").run()
    assert_clean(at)
    table = next(t for t in html_tables(at) if t["id"] == "segments")
    assert [r["cells"][0] for r in table["rows"]] == [s["segment"] for s in segments]
    assert [r["cells"][6] for r in table["rows"]] == [p_value(s["p_value"]) for s in segments]
