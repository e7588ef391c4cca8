"""The model page: every demo model renders; its figures equal `valuetrack value --json` to the cent."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pages.conftest import app, assert_clean
from valuetrack.formatting import money
from valuetrack.ui import views


@pytest.mark.parametrize("name", ["homepage-recs", "dynamic-pricing", "signup-risk-gate"])
def test_model_matches_the_cli_to_the_cent(in_demo: Path, value_json: dict, name: str) -> None:
    at = app("pages/model.py", model=name).run()
    assert_clean(at)
    m = next(x for x in value_json["models"] if x["model"] == name)
    cur = m["currency"]
    assert at.title[0].value == m["display_name"]
    metrics = {x.label: x.value for x in at.metric}
    assert metrics["Net value to date"] == money(m["net"], cur)
    assert metrics["Gross value"] == money(m["gross"], cur)
    assert metrics["ROI"] == views.pct(m["roi"])
    figures = next(d.value for d in at.dataframe if "figure" in d.value.columns).set_index("figure")[cur]
    assert figures["Gross value"] == views.cents(m["gross"])
    assert figures["Cost"] == views.cents(m["cost"])
    assert figures["Net value"] == views.cents(m["net"])
    assert figures["Net value, 95% low"] == views.cents(m["ci_net"][0])
    assert figures["Net value, 95% high"] == views.cents(m["ci_net"][1])
    charts = at.get("plotly_chart")
    assert len(charts) >= 3  # uplift or counterfactual, cumulative, monthly (+ volume)
    assert at.get("code")[0].value.startswith("# valuetrack model manifest")  # the registry entry


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
    at = app("pages/model.py", model="fraud-screen").run()
    assert_clean(at)
    assert [t.label for t in at.tabs][-1] == "Decisions"
    metrics = {x.label: x.value for x in at.metric}
    assert metrics["Decisions' value"] == views.money_compact(d["total"], cur)
    assert metrics["Realised (labelled)"] == views.money_compact(d["realised"], cur)
    assert metrics["Estimate, labels pending"] == views.money_compact(d["estimate"], cur)
    assert metrics["Gross value"] == money(m["gross"], cur)  # the causal figure is unchanged by the decisions
    assert any("never added to it" in c.value for c in at.caption)
    checks = next(x.value for x in at.dataframe if "Gap" in x.value.columns)
    assert list(checks["Month"]) == [c["month"] for c in d["checks"]][::-1]
    # a model without [decisions] has no such tab
    other = app("pages/model.py", model="homepage-recs").run()
    assert "Decisions" not in [t.label for t in other.tabs]
