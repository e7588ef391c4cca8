"""The portfolio's value at risk on the demo company: computed by the refresh, stored, read by
`value --var` (JSON validated against its schema), never computed on a read."""

from __future__ import annotations

from pathlib import Path

import pytest

from valuetrack.demo import GROUND_TRUTH

AS_OF = "2026-06-15"


@pytest.fixture
def in_demo(demo_builder, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = demo_builder(1.0, AS_OF)
    monkeypatch.chdir(root)
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    return root


def test_refresh_stores_the_var_and_value_reads_it(in_demo: Path, cli) -> None:
    out = cli("value", "--as-of", AS_OF, "--var", "--json", schema="value").json
    var = out["var"]
    assert var["as_of"] == AS_OF and var["currency"] == out["currency"]
    valued = {m["model"] for m in out["models"] if m["gross"] is not None and m["status"] == "active"}
    assert set(var["models"]) == valued
    assert {o["model"] for o in var["left_out"]} == {m["model"] for m in out["models"]} - valued
    for h in ("12m", "1m"):
        r = var["horizons"][h]
        # a bad year is worse than the expected one, and the shortfall is worse than the VaR
        assert r["es"] <= r["var"] < r["expected"]
        assert {m["model"] for m in r["models"]} == valued
        assert sum(m["expected"] for m in r["models"]) == pytest.approx(r["expected"], rel=1e-9)
    # a year holds about twelve months of value (same drift and volume model, longer horizon)
    y, m = var["horizons"]["12m"], var["horizons"]["1m"]
    assert 8 < y["expected"] / m["expected"] < 16
    assert 0 <= var["factor"]["mean_correlation"] <= 1
    text = cli("value", "--as-of", AS_OF, "--var")
    assert text.code == 0 and "5% VaR" in text.out and "next 12 months" in text.out


def test_reading_the_var_does_not_compute_it(in_demo: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import valuetrack.value.portfolio_var as pvar

    def boom(*a, **k):
        raise AssertionError("value --var must read the stored VaR, not simulate")

    monkeypatch.setattr(pvar, "portfolio_var", boom)
    assert cli("value", "--as-of", AS_OF, "--var", "--json", schema="value").code == 0


def test_before_any_valuation_value_var_says_how_to_get_one(workspace: Path, cli, manifest: Path) -> None:
    assert cli("models", "register", "--file", manifest).code == 0
    out = cli("value", "--var", "--json")
    assert out.code == 1 and "valuetrack refresh" in out.json["error"]["message"]
    text = cli("value", "--var")
    assert text.code == 1 and "valuetrack refresh" in text.err


def test_a_demo_model_known_to_lose_money_lowers_the_portfolio_expectation(in_demo: Path, cli) -> None:
    var = cli("value", "--as-of", AS_OF, "--var", "--json", schema="value").json["var"]
    rows = {m["model"]: m for m in var["horizons"]["12m"]["models"]}
    negative = [n for n, t in GROUND_TRUTH.items() if n in rows and t.gross_per_month < 0]
    assert negative and all(rows[n]["expected"] < 0 for n in negative)


def test_a_var_that_cannot_be_computed_says_why_and_the_refresh_stands(demo_builder, monkeypatch, cli) -> None:
    monkeypatch.chdir(demo_builder(0.1, AS_OF))
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    import valuetrack.value.portfolio_var as pvar

    def broken(*a, **k):
        raise ValueError("a singular matrix")

    monkeypatch.setattr(pvar, "portfolio_var", broken)
    assert cli("refresh", "--as-of", AS_OF).code == 0
    var = cli("value", "--as-of", AS_OF, "--var", "--json", schema="value").json["var"]
    assert var["error"].startswith("the value at risk could not be computed") and "singular matrix" in var["error"]
    assert "could not be computed" in cli("value", "--as-of", AS_OF, "--var").out
