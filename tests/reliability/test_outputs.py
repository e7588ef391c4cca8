"""--out aimed at every file valuetrack reads: refused before anything is written, whatever the
spelling (relative, dotted, symlink, hard link); the store and the warehouse keep working."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.reliability.cases import AS_OF, TRACEBACK, WAREHOUSE_MANIFEST, build_warehouse, run_cli
from tests.reliability.conftest import db_rows, file_digest
from valuetrack.store.db import dispose_all


@pytest.fixture
def ws(workspace: Path) -> Path:
    build_warehouse(workspace / "sample_data" / "demo.duckdb")
    (workspace / "m.toml").write_text(WAREHOUSE_MANIFEST)
    assert run_cli("models", "register", "--file", workspace / "m.toml").code == 0
    (workspace / ".streamlit").mkdir()
    (workspace / ".streamlit" / "secrets.toml").write_text('PASSWORD = "s3cret-value"\n')
    (workspace / "sub").mkdir()
    os.symlink(workspace / "valuetrack.db", workspace / "db-link")
    os.link(workspace / "valuetrack.toml", workspace / "settings-hardlink.toml")
    return workspace


TARGETS = {
    "valuetrack.db": "the app database",
    "sub/../valuetrack.db": "the app database",
    "db-link": "the app database",
    "valuetrack.db-wal": "the app database",
    "sample_data/demo.duckdb": "the warehouse file of connection 'demo'",
    "valuetrack.toml": "the settings file",
    "settings-hardlink.toml": "the settings file",
    ".streamlit/secrets.toml": "the secrets file",
}


def _digests(ws: Path) -> dict[str, str]:
    dispose_all()
    files = ["valuetrack.toml", "sample_data/demo.duckdb", ".streamlit/secrets.toml", "m.toml"]
    return {"db": file_digest(ws / "valuetrack.db"),
            **{f: hashlib.sha256((ws / f).read_bytes()).hexdigest() for f in files}}


@pytest.mark.parametrize("command", ["report", "export"])
def test_out_aimed_at_a_protected_file_is_refused(ws: Path, command: str) -> None:
    rows, before = db_rows(f"sqlite:///{ws / 'valuetrack.db'}"), _digests(ws)
    for target, what in TARGETS.items():
        argv = (["report", "--month", "2025-05", "--format", "csv", "--as-of", str(AS_OF)] if command == "report"
                else ["models", "export"])
        run = run_cli(*argv, "--out", target, "--json")
        assert run.code == 1 and not TRACEBACK.search(run.err), (target, run.err)
        assert '"protected_output"' in run.out and f"is {what}" in run.err, (target, run.err)
    assert _digests(ws) == before
    assert db_rows(f"sqlite:///{ws / 'valuetrack.db'}") == rows
    assert run_cli("models", "list").code == 0 and run_cli("refresh", "--as-of", str(AS_OF)).code == 0


def test_an_ordinary_out_file_is_written_whole(ws: Path) -> None:
    assert run_cli("models", "export", "--out", "models.toml").code == 0
    assert "name = \"churn-save-offers\"" in (ws / "models.toml").read_text()
    assert not [p for p in ws.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind


def test_out_never_replaces_the_rates_file_nor_a_file_of_another_kind(ws: Path) -> None:
    """The [fx] rates CSV is read at every valuation: a CSV report aimed at it is refused. A file the
    settings do not name (a manifest, a report of another format) is not replaced by a file of
    another kind; a report replaces an earlier report of its own format."""
    (ws / "fx_rates.csv").write_text("date,currency,rate\n2025-05-01,EUR,1.08\n")
    settings = ws / "valuetrack.toml"
    settings.write_text(settings.read_text() + '\n[fx]\nquote = "USD"\ncsv = "fx_rates.csv"\n')
    (ws / "old.pdf").write_bytes(b"%PDF-1.4 an earlier report")
    kept = {f: (ws / f).read_bytes() for f in ("fx_rates.csv", "m.toml", "old.pdf")}
    report = ["report", "--month", "2025-05", "--as-of", str(AS_OF), "--json", "--format"]
    for argv, said in (([*report, "csv", "--out", "fx_rates.csv"], "is the exchange rates file of [fx]"),
                       ([*report, "csv", "--out", "m.toml"], "exists and is not a .csv file"),
                       ([*report, "html", "--out", "old.pdf"], "exists and is not a .html or .htm file"),
                       (["models", "export", "--json", "--out", "old.pdf"], "exists and is not a .toml file")):
        run = run_cli(*argv)
        assert run.code == 1 and '"protected_output"' in run.out and said in run.err, (argv, run.err)
    assert {f: (ws / f).read_bytes() for f in kept} == kept
    assert run_cli("refresh", "--as-of", str(AS_OF)).code == 0
    assert run_cli(*report, "pdf", "--out", "old.pdf").code == 0  # a report over an earlier report of its kind
    assert (ws / "old.pdf").read_bytes().startswith(b"%PDF") and (ws / "old.pdf").read_bytes() != kept["old.pdf"]
    assert run_cli("models", "export", "--out", "m.toml").code == 0  # a manifest over a manifest
    # a new file named as another kind than the one written (an HTML report in x.pdf) is refused
    for argv in ([*report, "html", "--out", "new.pdf"], [*report, "csv", "--out", "new.xlsx"],
                 ["models", "export", "--out", "new.csv"]):
        run = run_cli(*argv)
        assert run.code == 1 and "is named as a" in run.err, (argv, run.err)
    assert not [p for p in ws.iterdir() if p.name.startswith("new.")]
    assert run_cli(*report, "csv", "--out", "report-may").code == 0  # a name that says no kind is the user's choice
