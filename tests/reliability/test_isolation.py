"""Breaking one model of five, five ways (its table dropped, a column renamed, an unknown method in
its database row, a warehouse refusing its query, a series too short to fit), on SQLite and
PostgreSQL: each time the other four are valued and shown (``value --json``, the portfolio page),
the broken one says why and carries its last good figures, and nothing stored is lost."""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from tests.pages.conftest import _no_legacy_pages_mode, app, assert_clean  # noqa: F401 (autouse fixture)
from tests.reliability.cases import TRACEBACK, run_cli
from tests.reliability.conftest import db_rows
from tests.value.companies import build_company, model_name
from valuetrack.store.db import dispose_all

AS_OF = dt.date(2026, 5, 1)
SEED = 7
FIVE = ("ab", "its", "did", "synthetic_control", "auto")


def _duck(ws: Path, sql: str) -> None:
    import duckdb

    con = duckdb.connect(str(ws / "sample_data" / "demo.duckdb"))
    try:
        con.execute(sql)
    finally:
        con.close()


def _unknown_method(ws: Path, url: str) -> None:
    engine = sa.create_engine(url)
    name = model_name(SEED, "its")
    with engine.begin() as c:
        spec = c.execute(sa.text("SELECT spec FROM models WHERE name = :n"), {"n": name}).scalar_one()
        spec = json.loads(spec) if isinstance(spec, str) else spec
        spec["attribution"]["method"] = "magic_forecast"
        c.execute(sa.text("UPDATE models SET method = 'magic_forecast', spec = :s WHERE name = :n"),
                  {"s": json.dumps(spec), "n": name})
    engine.dispose()


def _refusing(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    import valuetrack.connectors as connectors
    from valuetrack.connectors.duckdb import DuckDBConnector
    from valuetrack.errors import WarehouseError

    class Refusing(DuckDBConnector):
        def run(self, stmt: Any, *, model: str | None = None, **kw: Any) -> Any:
            if model == target:
                raise WarehouseError("the warehouse refused the query: permission denied on table c07_synth "
                                     "(ask its owner for SELECT)")
            return super().run(stmt, model=model, **kw)

    monkeypatch.setattr(connectors, "connector_class", lambda dialect: Refusing)


BREAKS: dict[str, tuple[str, Callable[..., None], str]] = {
    # name → (broken model's method, how to break it, what its error must say)
    "table dropped": ("did", lambda ws, url, mp: _duck(ws, f"DROP TABLE c{SEED:02d}_did"),
                      r"last refresh failed.*c07_did"),
    "column renamed": ("ab", lambda ws, url, mp: _duck(ws, f"ALTER TABLE c{SEED:02d}_exposures RENAME COLUMN arm TO arm_label"),
                       r"last refresh failed.*arm"),
    "unknown method in its row": ("its", lambda ws, url, mp: _unknown_method(ws, url),
                                  r"stored registration is no longer valid.*magic_forecast.*models register"),
    "warehouse refuses its query": ("synthetic_control", lambda ws, url, mp: _refusing(mp, model_name(SEED, "synthetic_control")),
                                    r"last refresh failed.*refused the query"),
    "series too short": ("its", lambda ws, url, mp: _duck(ws, f"DELETE FROM c{SEED:02d}_daily WHERE day < DATE '{AS_OF - dt.timedelta(days=10)}'"),
                         r"its.*pre-period too short"),
}


@pytest.fixture
def company(workspace: Path, store_url: str) -> tuple[Path, str]:
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
    ws, url = company
    method, breaker, message = BREAKS[how]
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
    assert set(before["value_results"]) <= set(after["value_results"])  # history kept, never rewritten
    if "refresh failed" in message:  # the broken model's last good aggregates stay
        for table in ("ab_aggregates", "series_points"):
            keep = [r for r in before[table] if repr(broken) in r]
            assert keep and set(keep) <= set(after[table]) or not any(repr(broken) in r for r in before[table])

    if url.startswith("sqlite"):
        monkeypatch.setenv("VALUETRACK_AS_OF", AS_OF.isoformat())
        at = app().run()
        assert_clean(at)
        texts = [t.value for t in at.text]
        shown = [t for t in texts if t.startswith("Not valued:")]
        assert len(shown) == 1 and re.search(message, shown[0], re.I | re.S), texts
        assert f"Last valued {AS_OF:%d %b %Y}" in shown[0]
        assert any("1 not valued (left out of the totals)" in c.value for c in at.caption), [c.value for c in at.caption]
