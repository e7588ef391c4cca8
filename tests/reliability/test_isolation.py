"""Breaking one model of five, five ways (its table dropped, a column renamed, an unknown method in
its database row, a warehouse refusing its query, a series too short to fit), on SQLite and
PostgreSQL: each time the other four are valued and shown (``value --json``, the portfolio page),
the broken one says why and carries its last good figures, and nothing stored is lost."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Callable

import pytest

from tests.pages.conftest import _no_legacy_pages_mode, app, assert_clean  # noqa: F401 (autouse fixture)
from tests.reliability.cases import BREAKS, EXTRA_BREAKS, ISOLATION_AS_OF as AS_OF, ISOLATION_SEED as SEED, TRACEBACK, \
    run_cli
from tests.reliability.conftest import db_rows
from tests.value.companies import build_company, model_name
from valuetrack.store.db import dispose_all

FIVE = ("ab", "its", "did", "synthetic_control", "auto")


@pytest.fixture
def company(workspace: Path, store_url: str) -> tuple[Path, str]:
    return _company(workspace, store_url)


@pytest.fixture
def sqlite_company(workspace: Path) -> tuple[Path, str]:
    return _company(workspace, "sqlite:///valuetrack.db")


def _company(workspace: Path, store_url: str) -> tuple[Path, str]:
    (workspace / "valuetrack.toml").write_text(textwrap.dedent(f"""
        [store]
        url = "{store_url}"
        currency = "USD"

        [connections.demo]
        url = "duckdb:///sample_data/demo.duckdb"
    """))
    import duckdb

    con = duckdb.connect(str(workspace / "sample_data" / "demo.duckdb"))
    manifest, _ = build_company(con, SEED, AS_OF)
    con.close()
    entries = manifest.split("\n[[models]]\n")[1:]
    keep = [e for e in entries if any(f'method = "{m}"\n' in e for m in FIVE)]
    assert len(keep) == 5
    (workspace / "m.toml").write_text("".join("\n[[models]]\n" + e for e in keep))
    assert run_cli("models", "register", "--file", "m.toml").code == 0
    first = run_cli("refresh", "--as-of", str(AS_OF))
    assert first.code == 0, first.out + first.err
    dispose_all()
    url = store_url if not store_url.startswith("sqlite:///") or store_url.startswith("sqlite:////") \
        else f"sqlite:///{workspace / store_url.removeprefix('sqlite:///')}"
    return workspace, url


@pytest.mark.parametrize("how", sorted(BREAKS))
def test_one_broken_model_never_reaches_the_others(company: tuple[Path, str], how: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _check(company, *BREAKS[how], monkeypatch)


@pytest.mark.parametrize("how", sorted(EXTRA_BREAKS))
def test_other_failure_kinds_are_isolated_too(sqlite_company: tuple[Path, str], how: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A fit that raises and degenerate (constant) data, on SQLite (the five above cover PostgreSQL)."""
    _check(sqlite_company, *EXTRA_BREAKS[how], monkeypatch)


def _check(company: tuple[Path, str], method: str, breaker: Callable[..., None], message: str,
           monkeypatch: pytest.MonkeyPatch) -> None:
    ws, url = company
    broken = model_name(SEED, method)
    before = db_rows(url)
    breaker(ws, url, monkeypatch)

    refresh = run_cli("refresh", "--as-of", str(AS_OF), "--full")
    assert refresh.code == 1 and not TRACEBACK.search(refresh.out + refresh.err), refresh.out + refresh.err
    assert re.search(rf"^valuetrack: {broken}: ", refresh.err, re.M), refresh.err
    value = run_cli("value", "--as-of", str(AS_OF), "--json")
    assert value.code == 1 and not TRACEBACK.search(value.out + value.err), value.err
    doc = json.loads(value.out)
    rows = {m["model"]: m for m in doc["models"]}
    assert len(rows) == 5
    for name, m in rows.items():
        if name == broken:
            assert m["state"] == "error" and re.search(message, m["error"], re.I | re.S), m["error"]
            assert m["last_valued"] == AS_OF.isoformat() and m["net"] is not None  # its last good figures
        else:
            assert m["state"] == "ok" and m["net"] is not None and m["ci_net"] is not None, (name, m)
    assert doc["totals"]["not_valued"] == 1 and doc["totals"]["last_valued_included"] is False
    assert doc["totals"]["cost"] == pytest.approx(sum(m["cost"] for n, m in rows.items() if n != broken))
    assert f"valuetrack: {broken}: " in value.err

    dispose_all()
    after = db_rows(url)
    assert set(before["ledger_models"]) <= set(after["ledger_models"])  # valuations kept, never rewritten
    if "refresh failed" in message:  # the broken model's last good aggregates stay
        for table in ("ab_aggregates", "series_points"):
            keep = [r for r in before[table] if repr(broken) in r]
            assert keep and set(keep) <= set(after[table]) or not any(repr(broken) in r for r in before[table])

    if url.startswith("sqlite"):
        # the month's report is still issued, and says which model it could not value
        report = run_cli("report", "--month", "2026-04", "--format", "html", "--out", ws / "r.html",
                         "--as-of", str(AS_OF))
        assert report.code == 0 and not TRACEBACK.search(report.out + report.err), report.err
        html = (ws / "r.html").read_text()
        assert f"Not valued: {rows[broken]['display_name']}" in html and "left out of the totals" in html
        monkeypatch.setenv("VALUETRACK_AS_OF", AS_OF.isoformat())
        at = app().run()
        assert_clean(at)
        texts = [t.value for t in at.text]
        shown = [t for t in texts if t.startswith("Not valued:")]
        assert len(shown) == 1 and re.search(message, shown[0], re.I | re.S), texts
        assert f"Last valued {AS_OF:%d %b %Y}" in shown[0]
        assert any("1 not valued (left out of the totals)" in c.value for c in at.caption), [c.value for c in at.caption]
