"""An intervention window's `end` ends the model's value and cost for every method (it ended only the
structural fit's attributed days), and retiring a model without exposures records the day it
stopped, where its cost stops (its cost ran on after retirement)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from valuetrack.actions import save
from valuetrack.context import open_context

AS_OF = "2026-11-01"


def _models(cli, *args: str) -> dict:
    out = cli("value", "--as-of", AS_OF, "--json", *args, schema="value")
    assert out.code == 0, out.err
    return {m["model"]: m for m in out.json["models"]}


@pytest.fixture
def demo(workspace: Path, cli) -> Path:
    assert cli("demo", "--scale", "0.05", "--as-of", AS_OF).code == 0
    assert cli("refresh", "--as-of", AS_OF).code == 0
    return workspace


def test_retiring_a_time_series_model_stops_its_cost_on_the_day_given(demo: Path, cli) -> None:
    monthly = open_context().registry.get("dynamic-pricing").spec.monthly_cost
    assert _models(cli, "--month", "2026-10")["dynamic-pricing"]["cost"] == pytest.approx(monthly)
    assert cli("models", "retire", "dynamic-pricing", "--on", "2026-09-15").code == 0
    spec = open_context().registry.get("dynamic-pricing").spec
    assert spec.status == "retired" and spec.interventions[-1].end == dt.date(2026, 9, 15)
    assert _models(cli, "--month", "2026-10")["dynamic-pricing"]["cost"] == 0
    assert _models(cli, "--month", "2026-09")["dynamic-pricing"]["cost"] == pytest.approx(monthly * 15 / 30)
    # a model with exposures keeps stopping on its last prediction: --on is refused (it was ignored,
    # silently), and retiring it sets no end
    refused = cli("models", "retire", "homepage-recs", "--on", "2026-06-30")
    assert refused.code == 1 and "does not apply to it" in refused.err
    assert open_context().registry.get("homepage-recs").spec.status == "active"
    assert cli("models", "retire", "homepage-recs").code == 0
    assert open_context().registry.get("homepage-recs").spec.interventions[-1].end is None


@pytest.mark.parametrize("method", ["its", "structural"])
def test_an_intervention_end_ends_the_value_and_the_cost(demo: Path, cli, method: str) -> None:
    ctx = open_context()
    spec = ctx.registry.get("dynamic-pricing").spec
    launch = spec.interventions[0]
    end = launch.start + dt.timedelta(days=40)
    attribution = dataclasses.replace(spec.attribution, method=method)
    save(ctx, spec.replace(name="open-window", display_name="Open window", attribution=attribution))
    save(ctx, spec.replace(name="closed-window", display_name="Closed window", attribution=attribution,
                           interventions=(dataclasses.replace(launch, end=end),)))
    assert cli("refresh", "--as-of", AS_OF).code == 0
    to_date = _models(cli)
    open_, closed = to_date["open-window"], to_date["closed-window"]
    assert closed["gross"] != open_["gross"]
    assert closed["cost"] < open_["cost"]
    after = _models(cli, "--month", "2026-10")  # the month after the window closed
    assert after["closed-window"]["cost"] == 0 and after["closed-window"]["gross"] in (0, None)
    assert after["open-window"]["cost"] > 0


def test_an_intervention_end_ends_a_panel_model_too(demo: Path, cli) -> None:
    assert cli("models", "register", "--file", "sample_data/demo_panel_example.toml").code == 0
    ctx = open_context()
    spec = ctx.registry.get("dynamic-pricing-panel").spec
    launch = spec.interventions[0]
    save(ctx, spec.replace(name="closed-panel", display_name="Closed panel",
                           interventions=(dataclasses.replace(launch, end=launch.start + dt.timedelta(days=40)),)))
    assert cli("refresh", "--as-of", AS_OF).code == 0
    to_date = _models(cli)
    assert to_date["closed-panel"]["gross"] != to_date["dynamic-pricing-panel"]["gross"]
    after = _models(cli, "--month", "2026-10")
    assert after["closed-panel"]["cost"] == 0 and after["closed-panel"]["gross"] in (0, None)
    assert after["dynamic-pricing-panel"]["cost"] > 0
