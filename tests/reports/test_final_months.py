"""Final means final (issue 16, D34): once a month's report is final, a later registry change (here a
backdated registration) does not rewrite the month in `value --month` or in any report format; the
newer valuation's figures show as a pending restatement, which a person applies with a reason,
making version 2 with who, when, why and the per-model differences (PDF, CSV, XLSX, audit log)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from valuetrack.reports.render import money_exact

AS_OF = "2026-06-15"
MONTH = "2026-03"
COST = 5000.0  # the backdated model's monthly cost: no data, so March counts exactly this cost


@pytest.fixture(autouse=True, scope="module")
def _poppler() -> None:
    assert shutil.which("pdftotext"), "pdftotext not found: run `bash scripts/system-deps.sh` (make test does)"


@pytest.fixture
def ws(demo_builder, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = demo_builder(0.1, AS_OF)
    monkeypatch.chdir(root)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    return root


def backdated_manifest(cli, root: Path, *, launch: str = "2026-03-01") -> Path:
    """A model registered today that went live on ``launch``: a copy of churn-save-offers' entry under
    another name (its exposures filter matches no rows, so it has no estimate, only its cost)."""
    r = cli("models", "export", "--name", "churn-save-offers")
    assert r.code == 0
    text = r.out.replace('name = "churn-save-offers"', 'name = "legacy-scorer"')
    text = re.sub(r"^revision = \d+\n", "", text, flags=re.M)
    text = text.replace('display_name = "Churn save offers v3"', 'display_name = "Legacy scorer"')
    text = re.sub(r"monthly_cost = [\d.]+", f"monthly_cost = {COST}", text)
    text = re.sub(r"one_off_costs = [\d.]+", "one_off_costs = 0.0", text)
    text = re.sub(r"interventions = \[\n.*?\n\]", f'interventions = [\n    {{ start = {launch}, label = "launch" }},\n]',
                  text, flags=re.S)
    path = root / "legacy.toml"
    path.write_text(text)
    return path


def pdf_pages(path: Path) -> list[str]:
    """Each page's text, whitespace collapsed; laid out, so a table row reads as one line."""
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
    return [" ".join(p.split()) for p in out.split("\f")]


def value_month(cli, month: str = MONTH) -> dict:
    r = cli("value", "--month", month, "--json", schema="value")
    assert r.code == 0, r.err
    return r.json


def report(cli, fmt: str, out: Path, *extra: str, month: str = MONTH) -> dict:
    r = cli("report", "--month", month, "--format", fmt, "--out", out, *extra, "--json", schema="report")
    assert r.code == 0, r.out + r.err
    return r.json


def test_a_backdated_registration_leaves_a_final_month_as_issued_until_a_restatement_is_applied(ws: Path, cli) -> None:
    # 1. March's report is final: version 1
    issued = report(cli, "csv", ws / "march-v1.csv", "--as-of", AS_OF)
    assert issued["status"] == "final" and issued["final_version"] == 1 and issued["pending_restatement"] is None
    v1 = value_month(cli)
    assert v1["final"]["version"] == 1 and v1["final"]["snapshot_id"] == issued["snapshot_id"]
    assert v1["pending_restatement"] is None
    assert v1["totals"]["net"] == pytest.approx(issued["net"], abs=1e-9)
    v1_nets = {m["model"]: m["net"] for m in v1["models"]}

    # 2. a model registered today that went live on March 1st (valued again at once, as every edit is)
    assert cli("models", "register", "--file", backdated_manifest(cli, ws)).code == 0
    to_date = cli("value", "--json", schema="value").json
    assert "legacy-scorer" in {m["model"] for m in to_date["models"]}  # to date is not a closed period

    # 3. `value --month`: version 1's figures, the newer ones pending
    now = value_month(cli)
    assert now["totals"]["net"] == v1["totals"]["net"]
    assert {m["model"]: m["net"] for m in now["models"]} == v1_nets
    assert now["final"]["version"] == 1
    p = now["pending_restatement"]
    assert p["version"] == 1 and p["net_before"] == v1["totals"]["net"]
    assert p["delta"] == pytest.approx(-COST, abs=1e-6)  # a full month of the model's cost, no estimate
    assert p["net_after"] == pytest.approx(v1["totals"]["net"] - COST, abs=1e-6)
    assert [(d["model"], d["change"], d["net_before"], d["estimated_after"]) for d in p["models"]] == [
        ("legacy-scorer", "new", None, False)]
    assert p["models"][0]["net_after"] == pytest.approx(-COST) and p["models"][0]["delta"] == pytest.approx(-COST)
    assert abs(p["portfolio_adjustment"]) < 1e-6
    text = cli("value", "--month", MONTH).out
    assert "FINAL, version 1" in text and "PENDING RESTATEMENT (not applied)" in text and "legacy-scorer" in text

    # 4. every report format: version 1 as issued, and the pending restatement beside it
    out = {fmt: ws / f"march.{fmt}" for fmt in ("pdf", "html", "csv", "xlsx")}
    results = {fmt: report(cli, fmt, path) for fmt, path in out.items()}
    for r in results.values():
        assert r["snapshot_id"] == issued["snapshot_id"] and r["reused"] and r["final_version"] == 1
        assert r["net"] == v1["totals"]["net"]
        assert r["pending_restatement"]["delta"] == pytest.approx(-COST) and r["pending_restatement"]["models"] == 1
    pages = pdf_pages(out["pdf"])
    assert money_exact(v1["totals"]["net"]) in pages[0] and "version 1" in pages[0]
    assert "Pending restatement, not applied" in pages[0]
    assert f"{money_exact(p['net_after'])} (-$5,000.00)" in pages[0]
    pending_page = next(i for i, page in enumerate(pages, 1) if "Pending restatement of March 2026" in page)
    assert f"see Pending restatement (page {pending_page})" in pages[0]
    assert re.search(r"Legacy scorer — -\$5,000\.00 -\$5,000\.00 — \$5,000\.00 new in this version; no estimate",
                     pages[pending_page - 1])
    html = out["html"].read_text(encoding="utf-8")
    assert "Pending restatement of March 2026" in html and "Legacy scorer" in html and "-$5,000.00" in html
    frame = pd.read_csv(out["csv"])
    rows = frame.set_index(["model", "metric"])["value"]
    assert float(rows[("(portfolio)", "net")]) == pytest.approx(v1["totals"]["net"], abs=1e-6)
    assert float(rows[("(portfolio)", "pending_delta")]) == pytest.approx(-COST, abs=1e-6)
    assert float(rows[("legacy-scorer", "pending_delta")]) == pytest.approx(-COST, abs=1e-6)
    assert ("legacy-scorer", "net") not in rows.index  # not in version 1's figures
    from openpyxl import load_workbook

    wb = load_workbook(out["xlsx"], data_only=True)
    total = next(r[1] for r in wb["Summary"].iter_rows() if r[0].value == "Total net value (running costs)")
    assert total.value == pytest.approx(v1["totals"]["net"], abs=1e-6)
    pend = {r[0].value: [c.value for c in r] for r in wb["Pending restatement"].iter_rows() if r[0].value}
    assert pend["legacy-scorer"][5] == pytest.approx(-COST) and pend["(portfolio)"][5] == pytest.approx(-COST)

    # 5. applying it needs a reason
    missing = cli("restate", "--month", MONTH, "--reason", "  ", "--json")
    assert missing.code == 1 and "--reason" in missing.json["error"]["message"]
    assert value_month(cli)["final"]["version"] == 1

    reason = "legacy-scorer was registered late: its March cost was missing"
    done = cli("restate", "--month", MONTH, "--reason", reason, "--json", schema="restate")
    assert done.code == 0, done.out
    d = done.json
    assert d["version"] == 2 and d["supersedes"] == issued["snapshot_id"] and d["reason"] == reason
    assert d["by"] == "tester@example.com" and d["delta"] == pytest.approx(-COST)
    assert [(m["model"], m["delta"]) for m in d["models"]] == [("legacy-scorer", pytest.approx(-COST))]

    # 6. version 2 everywhere: `value --month`, the report (reason and per-model differences), the audit log
    v2 = value_month(cli)
    assert v2["final"]["version"] == 2 and v2["final"]["reason"] == reason and v2["final"]["created_by"] == "tester@example.com"
    assert v2["pending_restatement"] is None
    assert v2["totals"]["net"] == pytest.approx(p["net_after"], abs=1e-9)
    assert "legacy-scorer" in {m["model"] for m in v2["models"]}
    r2 = report(cli, "pdf", ws / "march-v2.pdf")
    assert r2["snapshot_id"] == d["snapshot_id"] and r2["final_version"] == 2 and r2["pending_restatement"] is None
    assert r2["supersedes"] == issued["snapshot_id"] and r2["net_change"] == pytest.approx(-COST)
    pages = pdf_pages(ws / "march-v2.pdf")
    assert "version 2" in pages[0] and f"Reason: “{reason}”" in pages[0]
    assert f"{money_exact(v1['totals']['net'])} → {money_exact(v2['totals']['net'])} (-$5,000.00)" in pages[0]
    section = next(i for i, page in enumerate(pages, 1) if "Changes from version 1 (snapshot" in page)
    assert f"see Changes from version 1 (page {section})" in pages[0]
    body = pages[section - 1]
    assert re.search(r"Legacy scorer — -\$5,000\.00 -\$5,000\.00 — \$5,000\.00 new in this version", body)
    assert "Total " + money_exact(v1["totals"]["net"]) + " " + money_exact(v2["totals"]["net"]) + " -$5,000.00" in body
    assert "Pending restatement" not in " ".join(pages)
    report(cli, "csv", ws / "march-v2.csv")
    rows = pd.read_csv(ws / "march-v2.csv").set_index(["model", "metric"])["value"]
    assert rows[("(portfolio)", "restated_reason")] == reason and float(rows[("(portfolio)", "final_version")]) == 2
    assert float(rows[("legacy-scorer", "restated_delta")]) == pytest.approx(-COST)

    from valuetrack import ledger
    from valuetrack.context import open_context

    ctx = open_context()
    entry = next(e for e in ctx.registry.audit() if e.action == "restate")
    assert entry.actor == "tester@example.com" and entry.note == reason and entry.changes["version"] == [1, 2]
    assert entry.changes["models.legacy-scorer.net"] == [None, pytest.approx(-COST)]
    versions = ledger.finals(ctx, MONTH)
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["reason"] == reason and versions[1]["delta"] == pytest.approx(-COST)
    assert [r["model"] for r in versions[1]["differences"]] == ["legacy-scorer"]

    # 7. nothing left to apply
    again = cli("restate", "--month", MONTH, "--reason", "again", "--json")
    assert again.code == 1 and "no pending restatement" in again.json["error"]["message"]


def test_a_month_before_the_backdated_launch_is_untouched_and_counts_only_live_models(ws: Path, cli) -> None:
    feb = report(cli, "csv", ws / "feb.csv", "--as-of", AS_OF, month="2026-02")
    assert feb["status"] == "final"
    assert cli("models", "register", "--file", backdated_manifest(cli, ws)).code == 0
    # not live in February: its cost there is nil, so February has nothing pending
    assert value_month(cli, "2026-02")["pending_restatement"] is None
    again = report(cli, "csv", ws / "feb2.csv", month="2026-02")
    assert again["snapshot_id"] == feb["snapshot_id"] and again["pending_restatement"] is None
    # a month first reported after the registration lists it as registered, not live
    jan = ws / "jan.pdf"
    report(cli, "pdf", jan, "--as-of", AS_OF, month="2026-01")
    live = set(pd.read_csv(ws / "feb.csv")["model"]) - {"(portfolio)"}
    jan_csv = ws / "jan.csv"
    report(cli, "csv", jan_csv, month="2026-01")
    jan_live = set(pd.read_csv(jan_csv)["model"]) - {"(portfolio)"}
    assert "legacy-scorer" not in jan_live and jan_live <= live
    registered = len(cli("models", "list", "--json", schema="models_list").json["models"])
    text = " ".join(pdf_pages(jan))
    assert f"Models live this month {len(jan_live)} " in text
    assert f"Registered, not live this month {registered - len(jan_live)} " in text
    assert f"{registered} of {registered}" not in text


def test_a_viewer_cannot_apply_a_restatement(ws: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from valuetrack.access import token_sha256

    report(cli, "csv", ws / "march.csv", "--as-of", AS_OF)
    assert cli("models", "register", "--file", backdated_manifest(cli, ws)).code == 0
    (ws / "valuetrack.toml").write_text(
        '[store]\nurl = "sqlite:///valuetrack.db"\n[connections.demo]\nurl = "duckdb:///sample_data/demo.duckdb"\n'
        '[auth]\ndefault_role = "viewer"\neditors = ["ed@example.com"]\n'
        f'[auth.service_accounts."ed@example.com"]\ntoken_sha256 = "{token_sha256("ed-token")}"\n')
    monkeypatch.setenv("VALUETRACK_USER", "ed@example.com")  # claimed, not authenticated: a viewer
    monkeypatch.delenv("VALUETRACK_TOKEN", raising=False)
    refused = cli("restate", "--month", MONTH, "--reason", "late registration", "--json")
    assert refused.code == 1 and refused.json["error"]["code"] == "permission_denied"
    assert "restate the final report of 2026-03" in refused.json["error"]["message"]
    assert value_month(cli)["final"]["version"] == 1 and value_month(cli)["pending_restatement"] is not None
    monkeypatch.setenv("VALUETRACK_TOKEN", "ed-token")
    done = report(cli, "csv", ws / "march2.csv", "--restate", "--reason", "late registration")
    assert done["final_version"] == 2 and not done["reused"]
    assert value_month(cli)["final"]["created_by"] == "ed@example.com"


def test_a_cost_edit_touching_a_final_month_waits_as_a_pending_restatement(ws: Path, cli) -> None:
    """Raising a model's monthly cost by 1,000 rewrites every month it was live in the newest
    valuation; the final March keeps its figures (value --month, the model's months, the sparkline's
    nets), and the pending restatement shows exactly -1,000.00 for that model, nothing else."""
    from valuetrack import ledger
    from valuetrack.context import open_context

    report(cli, "csv", ws / "march.csv", "--as-of", AS_OF)
    v1 = value_month(cli)
    churn_v1 = next(m for m in v1["models"] if m["model"] == "churn-save-offers")
    april_before = value_month(cli, "2026-04")  # not final: follows the edit
    manifest = cli("models", "export", "--name", "churn-save-offers").out
    cost = float(re.search(r"monthly_cost = ([\d.]+)", manifest).group(1))
    (ws / "churn.toml").write_text(manifest.replace(f"monthly_cost = {cost}", f"monthly_cost = {cost + 1000.0}"))
    assert cli("models", "register", "--file", ws / "churn.toml").code == 0

    now = value_month(cli)
    assert now["totals"]["net"] == v1["totals"]["net"]
    assert next(m for m in now["models"] if m["model"] == "churn-save-offers")["net"] == churn_v1["net"]
    p = now["pending_restatement"]
    assert [(d["model"], d["change"]) for d in p["models"]] == [("churn-save-offers", "changed")]
    d = p["models"][0]
    assert d["delta"] == pytest.approx(-1000.0, abs=1e-6) and d["cost_after"] - d["cost_before"] == pytest.approx(1000.0)
    assert p["delta"] == pytest.approx(-1000.0, abs=1e-6)
    april = value_month(cli, "2026-04")
    assert april["final"] is None and april["totals"]["net"] == pytest.approx(april_before["totals"]["net"] - 1000.0)

    ctx = open_context()
    record = ledger.model(ctx, "churn-save-offers")
    march = next(m for m in record.months if f"{m.period_start:%Y-%m}" == MONTH)
    assert march.net == churn_v1["net"]
    assert record.restated_months[MONTH]["delta"] == pytest.approx(-1000.0)
    nets = ledger.monthly_nets(ctx, ledger.latest_id(ctx))["churn-save-offers"]
    months = [f"{m.period_start:%Y-%m}" for m in record.months]
    assert nets[months.index(MONTH)] == churn_v1["net"]
    assert nets[months.index("2026-04")] == pytest.approx(
        next(m for m in april["models"] if m["model"] == "churn-save-offers")["net"])
