"""The worst problem first, on every surface (docs/decisions.md D42): with flags of every type in the
flag-rule table (valuetrack.value.flags.RULES) stored in the ledger, the portfolio page's "Needs
attention", the flags page, `valuetrack flags` and the report (HTML, PDF, XLSX) list them by the
rule's severity, then by the money at stake; "Needs attention" never hides a flag more severe than
one it shows; a flagged model's figures are dimmed and hatched with the reason on hover."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.pages.conftest import AS_OF, app, assert_clean, html_tables, run_cli, shown
from valuetrack.formatting import money
from valuetrack.value.flags import RULES

SEVERITY = {r.type: r.severity for r in RULES}
LABEL = {r.type: r.label for r in RULES}


def _inject(models: list[str]) -> list[dict[str, Any]]:
    """Replace the newest valuation's flags with flags of every rule type (plus a second flag of the
    mildest type and a second flag on one model), with money at stake chosen so that neither the
    models' names nor the stakes alone give the severity order. Returns them in the expected order."""
    from valuetrack.context import open_context
    from valuetrack.store.schema import ledger_flags

    by_severity = sorted(RULES, key=lambda r: r.severity)  # mildest first: it gets the first names
    wanted = []
    for i, r in enumerate(by_severity):  # the mildest flag on the first model and with the most at stake
        wanted.append({"model": models[i], "type": r.type, "at_stake": 1_000_000.0 - 1_000.0 * i})
    mild, worst = by_severity[0].type, by_severity[-1].type
    wanted.append({"model": models[len(RULES)], "type": mild, "at_stake": 5_000_000.0})  # same type, more at stake
    wanted.append({"model": models[0], "type": worst, "at_stake": 12.5})  # a second flag on the first model
    ctx = open_context()
    asof_id = ctx.ledger.asof()["id"]
    as_of = ctx.ledger.asof()["as_of"]
    with ctx.engine.begin() as conn:
        conn.execute(ledger_flags.delete().where(ledger_flags.c.asof_id == asof_id))
        conn.execute(ledger_flags.insert(), [
            {"asof_id": asof_id, "model_name": w["model"], "type": w["type"], "as_of": as_of, "status": "raised",
             "raised_on": as_of, "cleared_on": None, "p_value": None,
             "reason": f"Reason <b>{w['type']}</b> of {w['model']} [x](https://evil.example)",
             "action": f"Act on {w['type']} of {w['model']}.", "evidence": {}, "at_stake": w["at_stake"]}
            for w in wanted])
    # expected, by hand from the rule table: severity (higher first), then money at stake (more first)
    return sorted(wanted, key=lambda w: (-SEVERITY[w["type"]], -w["at_stake"]))


@pytest.fixture
def every_flag(demo_copy: Path) -> dict[str, Any]:
    code, out = run_cli("value", "--as-of", AS_OF, "--json")
    value = json.loads(out)
    models = sorted(m["model"] for m in value["models"] if m["state"] == "ok")
    assert len(models) > len(RULES) + 1
    expected = _inject(models)
    names = {m["model"]: m["display_name"] for m in value["models"]}
    return {"expected": expected, "names": names, "value": value}


def _pairs(flags: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(f["model"], f["type"]) for f in flags]


def test_every_surface_lists_flags_worst_first(every_flag: dict[str, Any], tmp_path: Path) -> None:
    expected, names = every_flag["expected"], every_flag["names"]
    want = _pairs(expected)
    assert {t for _, t in want} == set(SEVERITY)  # every row of the rule table

    # the CLI: JSON and text
    code, out = run_cli("flags", "--as-of", AS_OF, "--json")
    assert code == 0
    got = json.loads(out)["flags"]
    assert _pairs(got) == want
    assert [f["at_stake"] for f in got] == [w["at_stake"] for w in expected]
    code, text = run_cli("flags", "--as-of", AS_OF)
    lines = [ln for ln in text.splitlines() if ln.startswith("- ")]
    assert [tuple(re.match(r"- (\S+): (\w+)", ln).groups()) for ln in lines] == want
    assert f"{money(expected[0]['at_stake'], 'USD')} at stake" in lines[0]

    # the portfolio page: "Needs attention" shows the worst five, and hides none more severe
    at = app().run()
    assert_clean(at)
    rows = [m.value for m in at.markdown if " at stake · net " in m.value]
    from valuetrack.ui.views import ATTENTION

    assert len(rows) == ATTENTION < len(want)
    assert [re.search(r"\*\*(.+?)\*\*", r).group(1) for r in rows] == [LABEL[t] for _, t in want[:ATTENTION]]
    links = [shown(p.proto.label) for p in at.get("page_link") if shown(p.proto.label) in names.values()]
    assert links[:ATTENTION] == [names[m] for m, _ in want[:ATTENTION]]
    hidden_types = [t for _, t in want[ATTENTION:]]
    assert min(SEVERITY[t] for _, t in want[:ATTENTION]) >= max(SEVERITY[t] for t in hidden_types)
    more = [shown(p.proto.label) for p in at.get("page_link") if "more flag" in p.proto.label]
    assert more == [f"{len(hidden_types)} more flags, none more severe than those above: all flags"]

    # the flags page: one card per flag, all of them, in the same order
    at = app("pages/flags.py").run()
    assert_clean(at)
    heads = [shown(m.value) for m in at.markdown if m.value.startswith("### ")]
    assert heads == [f"### {_icon(t)} {LABEL[t]} · {names[m]}" for m, t in want]
    # its count tiles in the same order: the most severe kind first
    tiles = [shown(m.label) for m in at.metric]
    assert tiles == [f"{_icon(t)} {LABEL[t]}" for t in sorted(LABEL, key=lambda t: -SEVERITY[t])]

    # the report: HTML, PDF and XLSX
    month = "2026-05"
    for fmt in ("html", "pdf", "xlsx"):
        code, out = run_cli("report", "--month", month, "--format", fmt, "--out", tmp_path / f"r.{fmt}", "--json")
        assert code == 0, out
    table = next(t for t in _report_tables((tmp_path / "r.html").read_text()) if t["head"][:3] == ["Model", "Flag", "At stake"])
    from valuetrack.reports.render import FLAG_LABELS as SHORT, MAX_SUMMARY_FLAGS

    assert [(r[0], r[1]) for r in table["rows"]] == [(names[m], SHORT[t]) for m, t in want[:MAX_SUMMARY_FLAGS]]
    assert [r[2] for r in table["rows"]] == [money(w["at_stake"], "USD", cents=True) for w in expected[:MAX_SUMMARY_FLAGS]]
    # the report's table of all models: a flagged model's figures are faded, the reasons in a title
    html = (tmp_path / "r.html").read_text()
    faded = re.findall(r'<td class="num strong flagged" title="([^"]*)">', html)
    assert len(faded) == len({m for m, _ in want})
    assert all("Reason &lt;b&gt;" in t and "<b>" not in t for t in faded)
    pdf = " ".join(subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], check=True, capture_output=True,
                                  text=True).stdout.split())
    section = pdf[pdf.index("Flagged models and recommended action"):]
    where = [section.index(money(w["at_stake"], "USD", cents=True)) for w in expected[:MAX_SUMMARY_FLAGS]]
    assert where == sorted(where)
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO((tmp_path / "r.xlsx").read_bytes()))["Flags"]
    assert [(r[0], r[1], r[2]) for r in sheet.iter_rows(min_row=2, values_only=True)] == \
        [(m, SHORT[t], w["at_stake"]) for (m, t), w in zip(want, expected)]


def test_flagged_figures_are_dimmed_with_the_reason_on_hover(every_flag: dict[str, Any]) -> None:
    expected, names = every_flag["expected"], every_flag["names"]
    flagged = {w["model"] for w in expected}
    at = app().run()
    assert_clean(at)
    body = next(el.proto.body for el in at.get("html") if "portfolio-table" in el.proto.body)
    for row in re.findall(r"<tr data-model='([^']+)'(.*?)</tr>", body, re.S):
        model, cells = row
        dim = re.findall(r"<td class='[^']*flagged'", cells)
        if model in flagged:
            assert len(dim) == 5, model  # net, interval, ROI, P(net > 0), the monthly bars
            titles = re.findall(r" title='([^']*)'", cells)
            assert len(titles) == 6  # the five faded cells and the flag's own cell
            for title in titles:
                for w in expected:
                    if w["model"] == model:  # each flag's label and reason, escaped (no live tag)
                        assert f"{LABEL[w['type']]}: Reason &lt;b&gt;{w['type']}&lt;/b&gt; of {model}" in title
            assert "<b>" not in cells
        else:
            assert not dim and "Reason" not in cells, model
    # the chart: flagged bars grey, faded and hatched, the reason in the hover
    import plotly.io as pio

    figs = [pio.from_json(c.proto.spec) for c in at.run().get("plotly_chart")]  # the charts: the second run (D45)
    bar = next(f.data[0] for f in figs if f.data and f.data[0].type == "bar")  # value by model
    for name, shape, opacity in zip(bar.y, bar.marker.pattern.shape, bar.marker.opacity):
        is_flagged = any(names[m] == name for m in flagged)
        assert (shape == "/") == is_flagged and (opacity < 1) == is_flagged, name
    # the model page: the tiles sit in the flagged container, each tile's help gives the reasons
    model = expected[0]["model"]
    at = app("pages/model.py", model=model).run()
    assert_clean(at)
    tiles = {m.label: shown(m.proto.help) for m in at.metric[:5]}  # net, ROI, P(net > 0), gross, payback
    assert "Net value to date" in tiles and "P(net value > 0)" in tiles
    for label in tiles:
        for w in expected:
            if w["model"] == model:
                assert f"{LABEL[w['type']]}**: Reason <b>{w['type']}</b> of {model}" in tiles[label], label
    assert any("Flagged (" in c.value for c in at.caption)


def _icon(kind: str) -> str:
    return next(r.icon for r in RULES if r.type == kind)


def _report_tables(html: str) -> list[dict[str, Any]]:
    from html.parser import HTMLParser

    class Parser(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tables: list[dict[str, Any]] = []
            self.cell: list[str] | None = None
            self.row: list[str] | None = None

        def handle_starttag(self, tag: str, attrs: list) -> None:
            if tag == "table":
                self.tables.append({"head": [], "rows": []})
            elif tag == "tr":
                self.row = []
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag: str) -> None:
            if tag in ("td", "th") and self.cell is not None and self.row is not None:
                self.row.append(" ".join("".join(self.cell).split()))
                self.cell = None
            elif tag == "tr" and self.row is not None and self.tables:
                t = self.tables[-1]
                (t["rows"] if t["head"] else t["head"]).extend([self.row] if t["head"] else self.row)
                self.row = None

        def handle_data(self, data: str) -> None:
            if self.cell is not None:
                self.cell.append(data)

    p = Parser()
    p.feed(html)
    return p.tables
