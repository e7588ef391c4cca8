"""More than 12 models sharing units and a KPI (issue 16): the refresh counts their membership
patterns like any group's (masks of several words, D48), so each shared unit is counted once;
only when more patterns occur than it accepts (4,096; lowered here) does it count pairs, and the
warning that the total is then understated is visible in `value --json`, on the portfolio page
and in the report."""

from __future__ import annotations

from pathlib import Path

import pytest

import valuetrack.value.overlap as overlap
from tests.pages.conftest import AS_OF, app, assert_clean
from valuetrack.value.overlap import MAX_PATTERN_MODELS


def test_above_twelve_models_patterns_then_pairs_with_a_warning_when_too_many(
        demo_builder, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    work: Path = demo_builder(0.1, AS_OF)
    monkeypatch.chdir(work)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    monkeypatch.setenv("VALUETRACK_AS_OF", AS_OF)
    manifest = cli("models", "export", "--name", "homepage-recs").out
    copies = [f"recs-copy-{i:02d}" for i in range(MAX_PATTERN_MODELS)]  # with homepage-recs: 13 in the group
    (work / "copies.toml").write_text("\n".join(
        manifest.replace('name = "homepage-recs"', f'name = "{name}"', 1)
        .replace('display_name = "', f'display_name = "{name} ', 1)
        .replace('model = "model_id"', 'model = "model_id"\nmodel_value = "homepage-recs"', 1) for name in copies))
    assert cli("models", "register", "--file", str(work / "copies.toml")).code == 0
    assert cli("refresh", "--as-of", AS_OF).code == 0

    # 13 models, one pattern (the copies read homepage-recs's rows): its units counted once, no warning
    value = cli("value", "--as-of", AS_OF, "--json", schema="value").json
    assert value["totals"]["overlap_warnings"] == []
    group = sorted(["homepage-recs", *copies])
    shared = [p for p in value["overlap_patterns"] if sorted(p["models"]) == group]
    assert len(shared) == 1 and not shared[0]["pairwise"]
    v = {m["model"]: m for m in value["models"]}["homepage-recs"]["gross"]
    assert value["totals"]["double_counted"] == pytest.approx(MAX_PATTERN_MODELS * v, rel=1e-9)  # 12 of 13 claims

    monkeypatch.setattr(overlap, "MAX_PATTERNS", 0)  # every group has more patterns than that: pairs
    assert cli("refresh", "--as-of", AS_OF).code == 0
    value = cli("value", "--as-of", AS_OF, "--json", schema="value").json
    warnings = value["totals"]["overlap_warnings"]
    assert len(warnings) == 1 and "membership patterns" in warnings[0] and "pair by pair" in warnings[0]
    assert "homepage-recs" in warnings[0] and all(name in warnings[0] for name in copies)
    assert value["overlap_patterns"] and all(p["pairwise"] and len(p["models"]) == 2 for p in value["overlap_patterns"])
    assert value["totals"]["double_counted"] >= MAX_PATTERN_MODELS * v * (1 - 1e-9)  # 13 equal claims: 12 deducted

    at = app().run()
    assert_clean(at)
    assert any("pair by pair" in w.value for w in at.warning), [w.value for w in at.warning]

    out = work / "report.html"
    assert cli("report", "--month", "2026-05", "--format", "html", "--out", str(out), "--as-of", AS_OF).code == 0
    doc = out.read_text(encoding="utf-8")
    assert "From the rows to the total" in doc and "pair by pair" in doc
