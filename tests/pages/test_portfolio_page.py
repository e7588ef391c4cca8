"""The portfolio page: empty states, and the numbers equal `valuetrack value --json` to the cent."""

from __future__ import annotations

from pathlib import Path

from tests.pages.conftest import app, assert_clean
from valuetrack.formatting import money
from valuetrack.ui import views


def test_empty_registry_tells_the_user_what_to_do(workspace: Path) -> None:
    at = app().run()
    assert_clean(at)
    assert "valuetrack demo" in at.info[0].value


def test_registered_but_never_refreshed_offers_a_refresh(workspace: Path, cli, manifest: Path) -> None:
    assert cli("models", "register", "--file", manifest).code == 0
    at = app().run()
    assert_clean(at)
    # figures come only from the ledger, which the first refresh fills: no page values anything
    assert any("Nothing has been valued yet" in i.value for i in at.info)
    assert any(b.label == "Refresh 2 models" for b in at.button)
    assert not at.metric and not at.dataframe


def test_portfolio_matches_the_cli_to_the_cent(in_demo: Path, value_json: dict) -> None:
    at = app().run()
    assert_clean(at)
    cur = value_json["currency"]
    t = value_json["totals"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Net value to date"] == money(t["net"], cur)
    assert metrics["Models"] == str(t["models"])
    assert metrics["Flagged"] == str(t["flagged"])
    captions = " ".join(c.value for c in at.caption)
    assert f"95% interval {money(t['ci_net'][0], cur)} to {money(t['ci_net'][1], cur)}" in captions

    table = at.dataframe[0].value.set_index("model")
    assert len(table) == len(value_json["models"])
    for m in value_json["models"]:
        row = table.loc[m["model"]]
        for col, want in (("net", m["net"]), ("net_lo", m["ci_net"][0] if m["ci_net"] else None),
                          ("net_hi", m["ci_net"][1] if m["ci_net"] else None)):
            assert row[col] == views.cents(want), (m["model"], col, row[col], want)
        assert row["roi"] == m["roi"] or (row["roi"] != row["roi"] and m["roi"] is None)
        assert row["p_positive"] == m["prob_positive"]
    flagged = {f["model"] for f in value_json["flags"]}
    assert {n for n, f in table["flag"].items() if f} == flagged
    # the value-by-model chart is there too
    assert at.get("plotly_chart")


def test_filters_and_month(in_demo: Path, value_json: dict) -> None:
    at = app().run()
    at.multiselect(key="teams").set_value(["growth"]).run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert set(table["team"]) == {"growth"}
    months = at.selectbox(key="period").options
    at.selectbox(key="period").set_value(months[2]).run()
    assert_clean(at)
    assert at.dataframe[0].value["net"].notna().any()


def test_selecting_a_row_opens_the_model(in_demo: Path) -> None:
    at = app().run()
    name = at.dataframe[0].value.iloc[0]["model"]
    at.selectbox(key="open-model").set_value(name).run()
    assert_clean(at)
    assert any(getattr(el, "proto", None) is not None and getattr(el.proto, "query_string", "") == f"model={name}"
               for el in at.get("page_link"))
