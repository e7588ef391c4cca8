"""`valuetrack models ...` through the real entry point, with --json validated against its schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import VALID_MANIFEST


def _registry_state(cli) -> str:
    listing = cli("models", "list", "--json", schema="models_list")
    shows = [cli("models", "show", m["name"], "--json", schema="models_show").out for m in listing.json["models"]]
    return listing.out + "".join(shows)


def test_register_list_show(workspace: Path, cli, manifest: Path) -> None:
    reg = cli("models", "register", "--file", manifest, "--json", schema="models_register")
    assert reg.code == 0
    assert reg.json["counts"] == {"create": 2, "update": 0, "unchanged": 0}
    listing = cli("models", "list", "--json", schema="models_list").json["models"]
    assert [(m["name"], m["revision"], m["status"]) for m in listing] == [
        ("churn-save-offers", 1, "active"), ("dynamic-pricing", 1, "active")]
    show = cli("models", "show", "churn-save-offers", "--json", schema="models_show").json
    assert show["spec"]["kpi"]["name"] == "retained_revenue"
    assert show["audit"][0]["actor"] == "tester@example.com" and show["audit"][0]["action"] == "create"
    text = cli("models", "list")
    assert "churn-save-offers" in text.out and text.code == 0


def test_dry_run_shows_diff_and_writes_nothing(workspace: Path, cli, manifest: Path) -> None:
    cli("models", "register", "--file", manifest)
    manifest.write_text(VALID_MANIFEST.replace("monthly_cost = 4000.0", "monthly_cost = 4500.0"))
    dry = cli("models", "register", "--file", manifest, "--dry-run")
    assert dry.code == 0 and "monthly_cost: 4000.0 → 4500.0" in dry.out and "Dry run" in dry.out
    assert cli("models", "show", "churn-save-offers", "--json", schema="models_show").json["model"]["revision"] == 1


BROKEN = {
    "unknown field": ('team = "retention"', 'team = "retention"\ncolour = "blue"', "colour: unknown field"),
    "bad name": ('name = "churn-save-offers"', 'name = "Churn Save!"', "model 'Churn Save!'.name"),
    "missing kpi": ('[models.kpi]\nname = "orders"\nunit = "count"\nvalue_per_unit = 7.5\n', "", "model 'dynamic-pricing'.kpi: required"),
    "duplicate names": ('name = "dynamic-pricing"', 'name = "churn-save-offers"', "duplicate"),
    "wrong type": ("window_days = 30", 'window_days = "thirty"', "attribution.window_days: must be a whole number"),
    "negative cost": ("monthly_cost = 12000.0", "monthly_cost = -12000.0", "model 'dynamic-pricing'.monthly_cost: must be >= 0"),
    "unsafe where": ("where = \"event_type = 'purchase'\"", "where = \"event_type = 'x' OR 1=1; DELETE FROM outcomes\"",
                     "model 'churn-save-offers'.attribution.outcomes.where"),
    "unknown connection": ('connection = "demo"\ntimezone', 'connection = "nowhere"\ntimezone', "'nowhere' is not a connection"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_manifest_exits_nonzero_and_leaves_registry_unchanged(workspace: Path, cli, manifest: Path, case: str) -> None:
    good = VALID_MANIFEST.replace("monthly_cost = 4000.0", "monthly_cost = 3000.0")
    manifest.write_text(good)
    assert cli("models", "register", "--file", manifest).code == 0
    before = _registry_state(cli)
    old, new, message = BROKEN[case]
    assert old in VALID_MANIFEST
    manifest.write_text(VALID_MANIFEST.replace(old, new, 1))  # also carries a valid change (cost 3000 → 4000)
    result = cli("models", "register", "--file", manifest, "--json")
    assert result.code == 1
    assert message in result.json["error"]["message"] and message in result.err
    assert "Traceback" not in result.err
    assert _registry_state(cli) == before


def test_export_register_export_is_byte_identical_and_keeps_retired(workspace: Path, cli, manifest: Path) -> None:
    cli("models", "register", "--file", manifest)
    assert cli("models", "retire", "dynamic-pricing", "--json", schema="models_retire").json["model"]["status"] == "retired"
    first = workspace / "export1.toml"
    second = workspace / "export2.toml"
    assert cli("models", "export", "--out", first).code == 0
    again = cli("models", "register", "--file", first, "--json", schema="models_register")
    assert again.json["counts"] == {"create": 0, "update": 0, "unchanged": 2}
    cli("models", "export", "--out", second)
    assert first.read_bytes() == second.read_bytes()
    assert 'status = "retired"' in first.read_text()
    stdout_export = cli("models", "export")
    assert stdout_export.out == first.read_text()


def test_edit_of_stale_export_is_a_conflict(workspace: Path, cli, manifest: Path) -> None:
    cli("models", "register", "--file", manifest)
    exported = workspace / "mine.toml"
    cli("models", "export", "--out", exported)
    theirs = exported.read_text().replace("monthly_cost = 4000.0", "monthly_cost = 4200.0")
    mine = exported.read_text().replace('team = "retention"', 'team = "growth"')
    exported.write_text(theirs)
    assert cli("models", "register", "--file", exported).code == 0
    exported.write_text(mine)
    result = cli("models", "register", "--file", exported, "--json")
    assert result.code == 1 and result.json["error"]["code"] == "conflict"
    shown = cli("models", "show", "churn-save-offers", "--json", schema="models_show").json
    assert shown["spec"]["team"] == "retention" and shown["spec"]["monthly_cost"] == 4200.0


def test_exit_codes(workspace: Path, cli) -> None:
    assert cli("models", "show", "nope").code == 1
    assert cli("models", "frobnicate").code == 2
    assert cli("models", "register").code == 2  # --file missing
    assert cli("models", "register", "--file", "missing.toml").code == 1
    assert cli("--version").code == 0


def test_viewer_is_refused_by_the_cli(workspace: Path, cli, manifest: Path, monkeypatch) -> None:
    cfg = workspace / "valuetrack.toml"
    from valuetrack.access import token_sha256

    cfg.write_text(cfg.read_text() + '\n[auth]\ndefault_role = "viewer"\neditors = ["ed@example.com"]\n'
                   f'[auth.service_accounts."ed@example.com"]\ntoken_sha256 = "{token_sha256("ed-token")}"\n')
    result = cli("models", "register", "--file", manifest, "--json")
    assert result.code == 1 and result.json["error"]["code"] == "permission_denied"
    monkeypatch.setenv("VALUETRACK_USER", "ed@example.com")  # a name is not a credential
    assert cli("models", "register", "--file", manifest).code == 1
    monkeypatch.setenv("VALUETRACK_TOKEN", "ed-token")
    assert cli("models", "register", "--file", manifest).code == 0
