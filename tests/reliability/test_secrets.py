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
