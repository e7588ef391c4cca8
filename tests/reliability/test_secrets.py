"""A planted secret (an environment variable referenced as ${VAR} in the settings file) never
appears in stdout, stderr, logs, the app database, or exports, whether the warehouse fails or works."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from tests.reliability.cases import AS_OF, WAREHOUSE_MANIFEST, build_warehouse, run_cli
from tests.reliability.conftest import db_rows
from valuetrack.store.db import dispose_all

SECRET = "Pl4nted-s3cret-7f3a9c1e"
NAMES = [SECRET, SECRET.lower(), SECRET.encode().hex()]


@pytest.fixture
def secret_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Path:
    (tmp_path / "sample_data").mkdir()
    (tmp_path / "valuetrack.toml").write_text(textwrap.dedent("""
        [store]
        url = "sqlite:///valuetrack.db"

        [connections.demo]
        url = "duckdb:///sample_data/demo.duckdb"
        token = "${VT_PLANTED}"
        max_attempts = 2
        retry_base_s = 0.01

        [connections.down]
        url = "duckdb:////nonexistent-${VT_PLANTED}/wh.duckdb"
        password = "${VT_PLANTED}"
        max_attempts = 2
        retry_base_s = 0.01
    """))
    monkeypatch.setenv("VT_PLANTED", SECRET)
    monkeypatch.setenv("VALUETRACK_CONFIG", str(tmp_path / "valuetrack.toml"))
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)
    build_warehouse(tmp_path / "sample_data" / "demo.duckdb")
    down = WAREHOUSE_MANIFEST.replace('name = "churn-save-offers"', 'name = "down-model"').replace(
        'connection = "demo"', 'connection = "down"')
    (tmp_path / "m.toml").write_text(WAREHOUSE_MANIFEST + "\n" + down)
    yield tmp_path
    dispose_all()


def _hits(text: str | bytes) -> list[str]:
    blob = text if isinstance(text, str) else text.decode("utf-8", "replace")
    return [s for s in NAMES if s in blob]


def _check_outputs(ws: Path, outputs: list[str], caplog: pytest.LogCaptureFixture) -> None:
    for i, text in enumerate(outputs):
        assert not _hits(text), f"output {i} shows the secret: {text[:500]}"
    assert not _hits(caplog.text), "a log record shows the secret"
    dispose_all()
    for f in ws.glob("valuetrack.db*"):
        assert not _hits(f.read_bytes()), f"{f.name} holds the secret"
    assert not _hits(repr(db_rows(f"sqlite:///{ws / 'valuetrack.db'}"))), "a text column holds the secret"


def test_secret_never_leaks_from_cli_commands(secret_ws: Path, caplog: pytest.LogCaptureFixture) -> None:
    ws = secret_ws
    outs: list[str] = []
    for argv in (["models", "register", "--file", ws / "m.toml"], ["refresh", "--as-of", str(AS_OF)],
                 ["refresh", "--as-of", str(AS_OF), "--json"], ["refresh", "--model", "down-model", "--full"],
                 ["value", "--as-of", str(AS_OF), "--json"], ["value", "--as-of", str(AS_OF)],
                 ["flags", "--as-of", str(AS_OF), "--json"], ["models", "list", "--json"],
                 ["models", "show", "down-model", "--json"], ["models", "export", "--out", ws / "export.toml"]):
        run = run_cli(*argv)
        outs += [run.out, run.err]
    # the failing connection did fail, and said why, without the secret
    assert "down-model" in "".join(outs) and "failed" in "".join(outs)
    assert "***" in "".join(outs) or "nonexistent-" not in "".join(outs)
    outs.append((ws / "export.toml").read_text())
    _check_outputs(ws, outs, caplog)


def test_secret_never_leaks_from_connection_checks(secret_ws: Path) -> None:
    from valuetrack.config import load_settings
    from valuetrack.connectors import test_connection as check

    settings = load_settings()
    for name in ("demo", "down"):
        result = check(settings.connection(name), settings.secrets())
        assert not _hits(repr(result.to_dict())), result
    assert SECRET in settings.secret_values()


def test_secret_never_leaks_into_reports(secret_ws: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Depends on valuetrack.reports.export_report (being written in parallel)."""
    ws = secret_ws
    assert run_cli("models", "register", "--file", ws / "m.toml").code == 0
    run_cli("refresh", "--as-of", str(AS_OF))
    outs = []
    for fmt in ("csv", "html", "xlsx", "pdf"):
        out = ws / f"report.{fmt}"
        run = run_cli("report", "--month", "2025-06", "--format", fmt, "--out", out, "--as-of", str(AS_OF))
        assert run.code == 0, run.err
        outs += [run.out, run.err]
        assert not _hits(out.read_bytes()), f"the {fmt} report holds the secret"
        if fmt == "xlsx":
            import zipfile

            with zipfile.ZipFile(out) as z:
                for member in z.namelist():
                    assert not _hits(z.read(member)), f"{fmt}:{member}"
        if fmt == "pdf":
            import subprocess

            text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True).stdout
            assert not _hits(text)
    _check_outputs(ws, outs, caplog)


def test_store_url_password_is_a_secret_and_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from valuetrack.config import load_settings

    (tmp_path / "valuetrack.toml").write_text(
        '[store]\nurl = "postgresql+psycopg://vt:${VT_PLANTED}@127.0.0.1:1/vt"\n')
    monkeypatch.setenv("VT_PLANTED", SECRET)
    assert SECRET in load_settings(tmp_path / "valuetrack.toml").secret_values()
    run = run_cli("models", "list", "--config", tmp_path / "valuetrack.toml", "--json")
    assert run.code == 1 and not _hits(run.out + run.err), run.err


def test_a_secret_in_the_store_urls_path_is_masked(secret_ws: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`[store].url` with ${VAR} in its path, pointing at a folder that does not exist: the error
    names the folder with the value masked (it used to print it whole)."""
    cfg = secret_ws / "store-path.toml"
    cfg.write_text('[store]\nurl = "sqlite:////nonexistent/${VT_PLANTED}/valuetrack.db"\n')
    outputs = []
    for argv in (["models", "list"], ["models", "list", "--json"], ["refresh", "--as-of", str(AS_OF)]):
        run = run_cli(*argv, "--config", cfg)
        assert run.code == 1 and "/nonexistent/***" in run.err, run.err
        outputs += [run.out, run.err]
    _check_outputs(secret_ws, outputs, caplog)


def test_secrets_planted_in_manifest_fields_are_never_resolved(secret_ws: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A manifest is not settings: ${VT_PLANTED} in its fields stays those characters in the
    registry, the export, `models show`, validation errors and refresh errors."""
    planted = WAREHOUSE_MANIFEST.replace('display_name = "Churn save offers v3"', 'display_name = "v3 ${VT_PLANTED}"').replace(
        'owner = "retention-team@example.com"', 'owner = "${VT_PLANTED}"').replace(
        "where = \"event_type = 'purchase'\"", "where = \"event_type = '${VT_PLANTED}'\"")
    (secret_ws / "p.toml").write_text(planted)
    bad = planted.replace('table = "outcomes"', 'table = "${VT_PLANTED}"')
    (secret_ws / "bad.toml").write_text(bad)
    runs = [run_cli("models", "register", "--file", secret_ws / "p.toml"),
            run_cli("models", "register", "--file", secret_ws / "bad.toml", "--json"),
            run_cli("models", "show", "churn-save-offers", "--json"), run_cli("models", "export"),
            run_cli("refresh", "--as-of", str(AS_OF), "--json")]
    assert runs[0].code == 0 and runs[1].code == 1 and "${VT_PLANTED}" in runs[1].err
    assert '"owner": "${VT_PLANTED}"' in runs[2].out and 'owner = "${VT_PLANTED}"' in runs[3].out
    _check_outputs(secret_ws, [t for r in runs for t in (r.out, r.err)], caplog)
    dispose_all()
    assert not _hits(repr(db_rows(f"sqlite:///{secret_ws / 'valuetrack.db'}")))


def test_an_environment_value_nobody_refers_to_is_not_masked(secret_ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only resolved ${VAR} values are secrets. A 6-character environment value that no setting
    refers to (here equal to a table name) must stay readable in a warehouse error, and so must
    the working folder."""
    monkeypatch.setenv("VT_UNRELATED", "events")
    monkeypatch.setenv("VT_FOLDER", str(secret_ws))
    missing = WAREHOUSE_MANIFEST.replace('table = "outcomes"', 'table = "events"')
    (secret_ws / "e.toml").write_text(missing)
    assert run_cli("models", "register", "--file", secret_ws / "e.toml").code == 0
    run = run_cli("refresh", "--as-of", str(AS_OF), "--json")
    assert run.code == 1
    import json

    errors = " ".join(r["error"] or "" for r in json.loads(run.out)["refreshed"])
    assert "events" in errors and "***" not in errors, errors
    bad = run_cli("models", "list", "--config", secret_ws / "nope" / "x.toml")
    assert str(secret_ws) in bad.err and "***" not in bad.err, bad.err


def test_secret_in_notification_targets_never_leaks(secret_ws: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Webhook tokens and SMTP passwords in [notifications].targets, with the targets down: the
    failed deliveries are reported and logged without the secret."""
    from tests.conftest import free_port

    port = free_port()  # nothing listens: every delivery fails and is reported
    settings = secret_ws / "valuetrack.toml"
    settings.write_text(settings.read_text() + textwrap.dedent(f"""
        [notifications]
        targets = ["http://127.0.0.1:{port}/hook/${{VT_PLANTED}}",
                   "mailto://alerts:${{VT_PLANTED}}@127.0.0.1:{port}?to=team@example.com&from=vt@example.com"]
    """))
    outs: list[str] = []
    for argv in (["models", "register", "--file", secret_ws / "m.toml"],
                 ["refresh", "--as-of", str(AS_OF), "--notify", "--json"], ["refresh", "--as-of", str(AS_OF), "--notify"],
                 ["notify", "--as-of", str(AS_OF), "--json"], ["notify", "--test"], ["notify", "--test", "--json"]):
        run = run_cli(*argv)
        outs += [run.out, run.err]
    joined = "".join(outs)
    assert "refresh of down-model failed" in joined  # the failed refresh became an event
    assert "failed" in joined and "127.0.0.1" in joined  # and its deliveries failed, saying where
    _check_outputs(secret_ws, outs, caplog)
