"""Final means final on the pages (issue 16, D34): after a backdated registration, the portfolio's
month view and the model page keep a final month's issued figures and name the pending
restatement; the Reports page lists its per-model differences and an editor applies it there with a
reason, which makes version 2 (read back by `value --month`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from valuetrack.formatting import money, money_column

from tests.pages.conftest import AS_OF, app, assert_clean, html_tables, portfolio_table, run_cli, shown

MONTH = "2026-03"


def _value_month() -> dict:
    code, out = run_cli("value", "--month", MONTH, "--as-of", AS_OF, "--json")
    assert code == 0
    return json.loads(out)


def _register_backdated(root: Path) -> None:
    code, out = run_cli("models", "export", "--name", "churn-save-offers")
    assert code == 0
    text = out.replace('name = "churn-save-offers"', 'name = "legacy-scorer"')
    text = re.sub(r"^revision = \d+\n", "", text, flags=re.M)
    text = text.replace('display_name = "Churn save offers v3"', 'display_name = "Legacy scorer"')
    text = re.sub(r"monthly_cost = [\d.]+", "monthly_cost = 5000.0", text)
    text = re.sub(r"interventions = \[\n.*?\n\]", 'interventions = [\n    { start = 2026-03-01, label = "launch" },\n]',
                  text, flags=re.S)
    (root / "legacy.toml").write_text(text)
    assert run_cli("models", "register", "--file", root / "legacy.toml")[0] == 0


def test_pages_keep_a_final_month_and_an_editor_applies_the_restatement(demo_copy: Path) -> None:
    assert run_cli("report", "--month", MONTH, "--format", "csv", "--out", demo_copy / "m.csv", "--as-of", AS_OF)[0] == 0
    v1 = _value_month()
    assert v1["final"]["version"] == 1
    _register_backdated(demo_copy)

    # the portfolio's month view: version 1's rows, to the figure, and the pending restatement named
    at = app().run()
    at.selectbox(key="period").set_value(MONTH).run()
    assert_clean(at)
    table = portfolio_table(at)
    cur = v1["currency"]
    nets = dict(zip([m["model"] for m in v1["models"]], money_column([m["net"] for m in v1["models"]], cur)))
    assert set(table) == set(nets)  # the backdated model is not in the issued month
    for name, net in nets.items():
        assert table[name]["Net value (USD)"] == net, name
    note = shown(" ".join(i.value for i in at.info)).replace("**", "")
    assert "March 2026 is final (version 1" in note and "Pending restatement" in note
    assert "-$5,000.00" in note and "Legacy scorer" in note

    # the model page of a model live in March: its March row is version 1's, no pending (unchanged)
    at = app("pages/model.py", model="churn-save-offers", section="Costs").run()
    assert_clean(at)
    months = next(t for t in html_tables(at) if t["id"] == "months")
    march = next(dict(zip(months["head"], r["cells"])) for r in months["rows"] if r["cells"][0] == "March 2026")
    v1_churn = next(m for m in v1["models"] if m["model"] == "churn-save-offers")
    assert march["Figures"] == "final"
    net = next(v for k, v in march.items() if k.startswith("Net") and "fully" not in k)
    assert net in (money(v1_churn["net"], cur, cents=False), money(v1_churn["net"], cur))

    # the backdated model's page: its March is not in version 1, and says what is pending
    at = app("pages/model.py", model="legacy-scorer", section="Costs").run()
    assert_clean(at)
    months = next(t for t in html_tables(at) if t["id"] == "months")
    march = next(dict(zip(months["head"], r["cells"])) for r in months["rows"] if r["cells"][0] == "March 2026")
    assert march["Figures"] == "not in final version 1; pending restatement -$5,000.00 to -$5,000.00, not applied"

    # the Reports page: version 1, the pending differences, and the editor's button
    at = app("pages/reports.py").run()
    at.selectbox(key="month").set_value(MONTH).run()
    assert_clean(at)
    status = {m.label: m.value for m in at.metric}["Status"]
    assert status == "final, version 1"
    pending = next(t for t in html_tables(at) if t["id"] == "pending-restatement")
    rows = {r["cells"][0]: r["cells"] for r in pending["rows"]}
    assert rows["Legacy scorer"][1:5] == ["new", "—", "-$5,000.00", "-$5,000.00"]
    assert rows["Total"][2:5] == [money(v1["totals"]["net"], cur, cents=True),
                                  money(v1["totals"]["net"] - 5000.0, cur, cents=True), "-$5,000.00"]
    # no reason: refused, nothing changes
    at.button(key="apply-restatement").click().run()
    assert_clean(at)
    assert any("--reason" in e.value for e in at.error)
    assert _value_month()["final"]["version"] == 1
    at.text_area(key="restate-reason").set_value("legacy-scorer registered late: March cost missing").run()
    at.button(key="apply-restatement").click().run()
    assert_clean(at)
    assert any("version 2" in s.value for s in at.success)
    assert {m.label: m.value for m in at.metric}["Status"] == "final, version 2"
    assert not [t for t in html_tables(at) if t["id"] == "pending-restatement"]

    v2 = _value_month()
    assert v2["final"]["version"] == 2 and v2["final"]["reason"] == "legacy-scorer registered late: March cost missing"
    assert v2["final"]["created_by"] == "tester@example.com" and v2["pending_restatement"] is None
    assert abs(v2["totals"]["net"] - (v1["totals"]["net"] - 5000.0)) < 1e-6
