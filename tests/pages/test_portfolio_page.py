"""The portfolio page: empty states, and the numbers equal `valuetrack value --json` to the cent."""

from __future__ import annotations

from pathlib import Path

from tests.pages.conftest import AS_OF, app, assert_clean, html_tables, portfolio_table
from valuetrack.formatting import interval, money, money_column, money_compact, pct


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
    assert metrics["Net value to date"] == money_compact(t["net"], cur)  # a tile: compact
    assert metrics["Models"] == str(t["models"])
    assert metrics["Flagged"] == str(t["flagged"])
    html = [el.proto.body for el in at.get("html")]
    captions = " ".join([c.value for c in at.caption] + html)  # the tiles' captions carry their exact figure
    assert f"95% interval {interval(t['ci_net'], cur, compact=True)}" in captions
    assert f"title='Net value to date: {t['net']!r}'" in captions  # full precision, as the ledger stored it
    recon = next(tb for tb in html_tables(at) if tb["id"] == "reconciliation")
    r = t["reconciliation"]
    assert [row["cells"][1] for row in recon["rows"]] == [
        money(v, cur, cents=True) for v in (r["rows"], r["overlap"], r["no_estimate_cost"], r["total"])]
    assert r["total"] == t["net"] and abs(r["rows"] + r["overlap"] + r["no_estimate_cost"] - r["total"]) < 0.005
    # both cost views, in the same words as the JSON's cost_views: the tile is on running costs, and
    # its caption gives the fully loaded figure (one-off costs amortised)
    assert f"fully loaded {money_compact(t['net_fully_loaded'], cur)}" in captions
    assert t["net_fully_loaded"] < t["net"]
    help_ = next(m.proto.help for m in at.metric if m.label == "Net value to date")
    assert value_json["cost_views"]["running"]["label"] in help_ and "cost since launch" not in help_
    assert value_json["cost_views"]["fully_loaded"]["definition"] in help_

    table = portfolio_table(at)
    assert len(table) == len(value_json["models"])
    models = value_json["models"]
    # the table: the CLI's figures, one precision per column (whole units: the demo's amounts are large)
    nets = dict(zip([m["model"] for m in models], money_column([m["net"] for m in models], cur)))
    ends = money_column([e for m in models for e in (m["ci_net"] or [])], cur)
    assert not any(e.endswith(tuple(f".{d:02d}" for d in range(100))) for e in ends)
    for m in models:
        row = table[m["model"]]
        assert row["Net value (USD)"] == nets[m["model"]] == money(m["net"], cur, cents=False), m["model"]
        if m["ci_net"]:
            assert row["95% interval"] == f"{money(m['ci_net'][0], cur, cents=False)} to {money(m['ci_net'][1], cur, cents=False)}"
        assert row["ROI"] == pct(m["roi"])
        assert row["P(net > 0)"] == pct(m["prob_positive"])
        assert row["Team"] == m["team"]
    flagged = {f["model"] for f in value_json["flags"]}
    assert {n for n, row in table.items() if row["Flag"] != "—"} == flagged
    text = " ".join(c for row in table.values() for c in row.values())
    for raw in ("None", "nan", "True", "False"):
        assert raw not in text
    # the value-by-model chart is there too: a session's first run leaves the charts to the next, which
    # the browser asks for at once (D45)
    assert not at.get("plotly_chart")
    assert at.run().get("plotly_chart")


def test_filters_sort_and_month(in_demo: Path, value_json: dict) -> None:
    at = app().run()
    growth = {m["model"] for m in value_json["models"] if m["team"] == "growth"}
    at.multiselect(key="teams").set_value(["growth"]).run()
    assert_clean(at)
    assert set(portfolio_table(at)) == growth
    at.multiselect(key="teams").set_value([]).run()
    at.selectbox(key="sort").set_value("name").run()
    names = [row["Model"] for row in portfolio_table(at).values()]
    assert names == sorted(names)
    months = at.selectbox(key="period").options
    at.selectbox(key="period").set_value(months[2]).run()
    assert_clean(at)
    assert any(row["Net value (USD)"] != "—" for row in portfolio_table(at).values())


def test_every_model_links_to_its_page(in_demo: Path, value_json: dict) -> None:
    at = app().run()
    body = "".join(el.proto.body for el in at.get("html"))
    for m in value_json["models"]:
        assert f"href='model?model={m['model']}'" in body
    name = value_json["models"][0]["model"]
    at.selectbox(key="open-model").set_value(name).run()
    assert_clean(at)
    assert any(getattr(el, "proto", None) is not None and getattr(el.proto, "query_string", "") == f"model={name}"
               for el in at.get("page_link"))


def test_portfolio_shows_the_stored_value_at_risk(in_demo: Path, cli) -> None:
    """The value at risk section shows what `value --var --json` reads from the store."""
    var = cli("value", "--as-of", AS_OF, "--var", "--json", schema="value").json["var"]
    at = app().run()
    assert_clean(at)
    cur = var["currency"]
    metrics = [(m.label, m.value) for m in at.metric]
    for h in ("12m", "1m"):
        r = var["horizons"][h]
        assert ("5% value at risk", money_compact(r["var"], cur)) in metrics
        assert ("Expected shortfall", money_compact(r["es"], cur)) in metrics
        assert ("Expected net value", money_compact(r["expected"], cur)) in metrics
    assert any("common demand factor" in c.value for c in at.caption)


def test_no_value_at_risk_says_why(workspace: Path, cli, manifest: Path) -> None:
    assert cli("models", "register", "--file", manifest).code == 0
    assert cli("revalue", "--as-of", "2025-06-01").code == 0  # valued, but no aggregates pulled yet
    at = app().run()
    assert_clean(at)
    assert any("there is no value at risk to simulate" in c.value for c in at.caption)
