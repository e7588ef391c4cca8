"""Reads read the ledger, and only the ledger.

- No valuation on read: with every entry point of the valuation made to raise, every page, every
  CLI read command and every report export still works (and shows the stored figures).
- One number everywhere: for every demo model, the figures of the model page, of the portfolio
  table, of `value --json` and of the CSV report come from one ledger record; money agrees to the
  cent, p-values exactly.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.pages.conftest import AS_OF, app, assert_clean, html_tables, portfolio_table, run_cli, svg_charts
from valuetrack.formatting import money, money_column, money_compact

SVG = "{http://www.w3.org/2000/svg}"

MONTH = "2026-05"


class ValuedOnRead(AssertionError):
    """Raised by the valuation's entry points under test: a read tried to value something."""


@pytest.fixture
def no_valuation(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a, **_k):  # noqa: ANN002, ANN003, ANN202
        raise ValuedOnRead("a read called the valuation")

    import valuetrack.valuation as valuation
    import valuetrack.value.portfolio as portfolio

    for target, name in ((valuation, "revalue"), (valuation, "build_record"), (portfolio, "value_portfolio"),
                         (portfolio, "estimate_effect")):
        monkeypatch.setattr(target, name, boom)
    monkeypatch.setattr(portfolio.ModelValuation, "load", classmethod(boom))


def _cli(*args: str) -> dict:
    code, out = run_cli(*args)
    assert code in (0, 3), (args, out)
    return json.loads(out) if "--json" in args else {}


def test_no_page_cli_read_or_report_export_values_anything(demo_copy: Path, no_valuation: None, tmp_path: Path) -> None:
    value = _cli("value", "--as-of", AS_OF, "--json")
    names = [m["model"] for m in value["models"]]
    assert len(names) >= 10 and all(m["net"] is not None for m in value["models"] if m["state"] == "ok")
    _cli("value", "--month", MONTH, "--as-of", AS_OF, "--json")
    _cli("value", "--json")
    _cli("flags", "--as-of", AS_OF, "--json")
    for name in names:
        shown = _cli("models", "show", name, "--json")
        assert shown["valuation"]["figures"]["net"] == next(m["net"] for m in value["models"] if m["model"] == name)
    for fmt in ("csv", "html", "pdf", "xlsx"):
        out = tmp_path / f"r.{fmt}"
        assert run_cli("report", "--month", MONTH, "--format", fmt, "--out", str(out), "--as-of", AS_OF)[0] == 0
        assert out.stat().st_size > 0
    for page in ("pages/portfolio.py", "pages/flags.py", "pages/reports.py"):
        assert_clean(app(page).run(timeout=120))
    at = app("pages/model.py").run(timeout=120)
    for name in names:
        at.selectbox(key="model").set_value(name).run(timeout=120)
        assert_clean(at)
    for section in [t.label for t in app("pages/model.py", model="fraud-screen").run(timeout=120).tabs]:
        # every section of the model page (one is drawn at a time), for a model that has them all
        assert_clean(app("pages/model.py", model="fraud-screen", section=section).run(timeout=120))


def test_one_number_everywhere(demo_copy: Path, tmp_path: Path) -> None:
    from valuetrack import ledger
    from valuetrack.context import open_context

    value = _cli("value", "--as-of", AS_OF, "--json")
    month = _cli("value", "--month", MONTH, "--as-of", AS_OF, "--json")
    out = tmp_path / "r.csv"
    assert run_cli("report", "--month", MONTH, "--format", "csv", "--out", str(out), "--as-of", AS_OF)[0] == 0
    report: dict[tuple[str, str], str] = {(r["model"], r["metric"]): r["value"]
                                          for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))}
    ctx = open_context()
    table = portfolio_table(app().run(timeout=120))
    cur = value["currency"]
    at = app("pages/model.py").run(timeout=120)
    for cli_row in value["models"]:
        name = cli_row["model"]
        record = ledger.model(ctx, name)
        stored = record.value
        assert record.asof["as_of"].isoformat() == value["as_of"]
        # value --json is the ledger record, exactly (money and p-values alike)
        for key in ("gross", "cost", "net", "roi", "prob_positive", "p_value", "srm_p_value", "effect_abs",
                    "effect_rel"):
            assert cli_row[key] == getattr(stored, key), (name, key)
        assert cli_row["ci_net"] == (list(stored.ci_net) if stored.ci_net else None)
        assert cli_row["payback_date"] == (stored.payback_date.isoformat() if stored.payback_date else None)
        # the portfolio table
        assert table[name]["Net value (USD)"] == money(stored.net, cur, cents=False), name
        # the model page: tiles, the figures table, the diagnostics' p-values
        at.selectbox(key="model").set_value(name).run(timeout=120)
        assert_clean(at)
        if stored.state != "ok":
            continue
        metrics = {x.label: x.value for x in at.metric}
        assert metrics["Net value to date"] == money_compact(stored.net, cur), name
        payback = metrics["Payback"]
        if stored.payback_date:  # the tile and the chart's marker: one date
            assert payback == f"{stored.payback_date:%b %Y}"
            marker = [g for svg in svg_charts(at) for g in svg.iter(f"{SVG}g") if g.get("data-payback")]
            assert [g.get("data-payback") for g in marker] == [stored.payback_date.isoformat()], name
            assert marker[0].find(f"{SVG}title").text.endswith(payback), name
        figures = next(t for t in html_tables(at) if t["id"] == "figures")
        rows = {r["cells"][0]: r["cells"][1] for r in figures["rows"]}
        assert rows["Net value (running costs)"] == money_column(
            [stored.gross, stored.cost, stored.net, *stored.ci_net, stored.amortisation, stored.net_fully_loaded], cur)[2]
        # the month: `value --month` and the CSV report, to the cent, from the same stored month
        m = next(x for x in month["models"] if x["model"] == name)
        if (name, "net") in report:
            assert round(float(report[(name, "net")]), 2) == round(m["net"], 2), name
            assert round(float(report[(name, "cost")]), 2) == round(m["cost"], 2), name
            if m["p_value"] is not None and (name, "p_value") in report:
                assert float(report[(name, "p_value")]) == m["p_value"], name
    assert round(float(report[("(portfolio)", "net")]), 2) == round(month["totals"]["net"], 2)


def test_both_srm_tests_are_named_by_the_cohorts_they_cover(in_demo: Path) -> None:
    health = app("pages/model.py", model="upsell-propensity", section="Health & risk").run(timeout=120)
    assert_clean(health)
    assert "SRM, all cohorts" in " ".join(m.value for m in health.markdown)
    at = app("pages/model.py", model="upsell-propensity", section="Method & diagnostics").run(timeout=120)
    assert_clean(at)
    diagnostics = next(t for t in html_tables(at) if t["id"] == "diagnostics")
    assert any(r["cells"][0] == "SRM p-value, mature cohorts" for r in diagnostics["rows"])
