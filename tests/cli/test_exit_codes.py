"""Exit codes a first user meets: an empty registry is an error (exit 1) that says what to do and
leaves the folder as it was; a registry with no model live in a month is not; bad usage exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import VALID_MANIFEST

READS = [("value",), ("flags",), ("report", "--month", "2025-05", "--format", "csv", "--out", "r.csv"),
         # and the valuations: "Refreshed 0 of 0 models", exit 0, made a wrong folder look like success
         ("refresh",), ("revalue",)]


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with no settings file and no app database (the embedded defaults apply)."""
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("argv", READS, ids=lambda a: a[0])
def test_empty_folder_says_no_models_and_creates_nothing(bare: Path, cli, argv: tuple[str, ...]) -> None:
    run = cli(*argv)
    assert run.code == 1
    assert "no models are registered here" in run.err
    assert "valuetrack demo" in run.err and "VALUETRACK_CONFIG" in run.err
    assert "Traceback" not in run.err
    assert not (bare / "valuetrack.db").exists(), "a read must not create an app database"
    assert sorted(p.name for p in bare.iterdir()) == [], "the folder is left as it was"


def test_empty_registry_json_error_document(bare: Path, cli) -> None:
    run = cli("value", "--json")
    assert run.code == 1
    assert run.json["error"]["code"] == "no_models"


def test_existing_database_with_no_models_is_also_refused(workspace: Path, cli) -> None:
    assert cli("models", "list").code == 0  # creates the (empty) app database
    assert (workspace / "valuetrack.db").exists()
    for argv in READS:
        run = cli(*argv)
        assert run.code == 1 and "no models are registered here" in run.err, argv


def test_models_but_none_live_in_the_month_report_normally(workspace: Path, cli, manifest: Path) -> None:
    assert cli("models", "register", "--file", manifest).code == 0
    # reads show the ledger only: before the first valuation they say how to make one
    unvalued = cli("value", "--as-of", "2025-06-01", "--json")
    assert unvalued.code == 1 and unvalued.json["error"]["code"] == "not_valued"
    assert "valuetrack refresh" in unvalued.err
    assert cli("revalue", "--as-of", "2025-06-01", "--json", schema="revalue").code == 0
    # the manifest's models launch in 2025; January 2020 has none live
    run = cli("value", "--month", "2020-01", "--as-of", "2025-06-01", "--json", schema="value")
    assert run.code == 0, run.err
    assert run.json["period"] == "2020-01"
    assert cli("flags", "--as-of", "2025-06-01").code == 0
    out = workspace / "r.csv"
    rep = cli("report", "--month", "2020-01", "--format", "csv", "--out", out, "--as-of", "2025-06-01")
    assert rep.code == 0, rep.err
    assert out.exists()


@pytest.mark.parametrize("argv", [
    ("value", "--month", "2025-13"),
    ("value", "--month", "May 2025"),
    ("report", "--month", "25-05", "--format", "pdf", "--out", "x.pdf"),
    ("flags", "--alpha", "1"),
    ("value", "--as-of", "yesterday"),
    ("models", "show"),
    ("nonsense",),
], ids=lambda a: " ".join(a))
def test_bad_usage_exits_2_with_the_option_named(bare: Path, cli, argv: tuple[str, ...]) -> None:
    run = cli(*argv)
    assert run.code == 2, (run.code, run.err)
    assert "usage: valuetrack" in run.err and "Traceback" not in run.err
    assert not (bare / "valuetrack.db").exists()


def test_bad_month_names_the_option_and_the_form(bare: Path, cli) -> None:
    err = cli("value", "--month", "2025-13").err
    assert "--month" in err and "'2025-13' is not a month YYYY-MM" in err


def test_manifest_fixture_has_models() -> None:
    # guards the "none live in the month" case above against a manifest that launches in 2020
    assert "start = 2025-" in VALID_MANIFEST and "start = 2020" not in VALID_MANIFEST


def test_the_command_as_a_process_exits_with_its_code_and_all_its_output(bare: Path) -> None:
    """`python -m valuetrack` ends without tearing the interpreter down (cli.run): its exit code
    is the command's, everything it printed arrives, and a reader that stops early (`| head`) gets
    what it read without an error from valuetrack."""
    import json
    import subprocess
    import sys

    def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:  # noqa: ANN003
        return subprocess.run([sys.executable, "-m", "valuetrack", *argv], cwd=bare, capture_output=True,
                              text=True, timeout=120, **kwargs)

    failed = run("value", "--json")
    assert failed.returncode == 1 and json.loads(failed.stdout)["error"]["code"] == "no_models"
    assert "no models are registered here" in failed.stderr
    assert run("value", "--month", "May").returncode == 2  # bad usage
    helped = run("--help")
    assert helped.returncode == 0 and "refresh" in helped.stdout and helped.stdout.endswith("\n")
    head = subprocess.run(f"{sys.executable} -m valuetrack --help | head -c 20", shell=True, cwd=bare,
                          capture_output=True, text=True, timeout=120)
    assert head.returncode == 0 and len(head.stdout) == 20 and "Traceback" not in head.stderr
