"""Bounded parsing, tested as an attacker would: a 1 KB manifest nested 500 deep, 60 nested
parentheses in a where-filter, a 50 MB manifest of 50,000 models, bind-parameter syntax in a
filter. Each is refused fast with a clear message (and a JSON error document with --json), and
the app database is unchanged."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.reliability.cases import AS_OF, TRACEBACK, VALID_MANIFEST, WAREHOUSE_MANIFEST, build_warehouse, run_cli
from tests.reliability.conftest import db_rows, file_digest
from valuetrack.limits import MAX_DEPTH, MAX_FILTER_PARENS, MAX_MODELS
from valuetrack.store.db import dispose_all


@pytest.fixture
def ws(workspace: Path) -> Path:
    (workspace / "m.toml").write_text(VALID_MANIFEST)
    assert run_cli("models", "register", "--file", workspace / "m.toml").code == 0
    return workspace


def _state(ws: Path) -> tuple:
    dispose_all()
    return db_rows(f"sqlite:///{ws / 'valuetrack.db'}"), file_digest(ws / "valuetrack.db")


def _refused(ws: Path, path: Path, message: str, *argv: str) -> float:
    """Register ``path`` (text, then --json); both refused with ``message``; returns seconds taken."""
    before = _state(ws)
    started = time.perf_counter()
    run = run_cli(*(argv or ("models", "register", "--file", str(path))))
    took = time.perf_counter() - started
    assert run.code == 1 and not TRACEBACK.search(run.err + run.out), run.err[:500]
    assert message in run.err, run.err[:500]
    as_json = run_cli(*(argv or ("models", "register", "--file", str(path))), "--json")
    error = json.loads(as_json.out)["error"]
    assert as_json.code == 1 and message in error["message"]
    assert _state(ws) == before
    return took


@pytest.mark.parametrize("shape", ["array", "inline table", "dotted keys", "table headers"])
def test_a_manifest_nested_500_deep_is_refused(ws: Path, shape: str) -> None:
    deep = {
        "array": "x = " + "[" * 500 + "]" * 500 + "\n",
        "inline table": "x = " + "{a = " * 500 + "1" + "}" * 500 + "\n",
        "dotted keys": "x." + ".".join(["a"] * 500) + " = 1\n",
        "table headers": "[" + ".".join(["t"] * 500) + "]\nv = 1\n",
    }[shape]
    path = ws / "deep.toml"
    path.write_text(deep + VALID_MANIFEST)
    assert path.stat().st_size < 6_000  # a few KB
    _refused(ws, path, f"at most {MAX_DEPTH} levels")


def test_settings_nested_500_deep_are_refused(ws: Path) -> None:
    cfg = ws / "deep-settings.toml"
    cfg.write_text("[store]\nurl = 'sqlite:///valuetrack.db'\n[connections.demo]\nurl = 'duckdb:///x'\noptions = "
                   + "[" * 500 + "]" * 500 + "\n")
    _refused(ws, cfg, f"at most {MAX_DEPTH} levels", "models", "list", "--config", str(cfg))


def test_a_where_filter_with_60_nested_parentheses_is_refused(ws: Path) -> None:
    where = "(" * 60 + "event_type = 'purchase'" + ")" * 60
    path = ws / "f.toml"
    path.write_text(VALID_MANIFEST.replace("where = \"event_type = 'purchase'\"", f'where = "{where}"'))
    assert where in path.read_text()
    _refused(ws, path, f"at most {MAX_FILTER_PARENS} levels")
    # the limit is on nesting, not on parentheses: 30 levels are fine
    ok = ws / "ok.toml"
    ok.write_text(VALID_MANIFEST.replace("where = \"event_type = 'purchase'\"",
                                         f'where = "{"(" * 30}event_type = \'purchase\'{")" * 30}"'))
    assert run_cli("models", "register", "--file", ok, "--dry-run").code == 0


def _models(n: int, pad: int = 0) -> str:
    block = VALID_MANIFEST.split("[[models]]")[1]
    note = "# " + "x" * pad + "\n" if pad else ""
    return "".join("[[models]]" + block.replace('name = "churn-save-offers"', f'name = "model-{i:05d}"', 1) + note
                   for i in range(n))


def test_a_50_mb_manifest_of_50000_models_is_refused_fast(ws: Path) -> None:
    path = ws / "huge.toml"
    text = _models(50_000, pad=120)
    path.write_text(text)
    assert path.stat().st_size >= 50_000_000, path.stat().st_size
    took = _refused(ws, path, "files up to 5 MB are read")
    assert took < 2.0, took  # refused on its size, before reading


def test_too_many_models_in_a_small_file_is_refused(ws: Path) -> None:
    path = ws / "many.toml"
    path.write_text(_models(MAX_MODELS + 1))
    assert path.stat().st_size < 5 * 1024 * 1024
    _refused(ws, path, f"at most {MAX_MODELS:,}")


def test_bind_parameter_syntax_is_refused_and_quoted_colons_are_kept(workspace: Path) -> None:
    """':b' outside quotes is a bind parameter nobody supplies: refused at registration. Inside
    quotes it is text, kept literally: the refresh runs (it used to fail on every run with "A value
    is required for bind parameter 'b'")."""
    build_warehouse(workspace / "sample_data" / "demo.duckdb")
    for where, refused in (("event_type = :b", "bind parameter ':b'"), ("event_type = ?", "bind parameter '?'")):
        path = workspace / "bind.toml"
        path.write_text(WAREHOUSE_MANIFEST.replace("where = \"event_type = 'purchase'\"", f'where = "{where}"'))
        run = run_cli("models", "register", "--file", path)
        assert run.code == 1 and refused in run.err, run.err
    path = workspace / "colon.toml"
    path.write_text(WAREHOUSE_MANIFEST.replace("where = \"event_type = 'purchase'\"",
                                               "where = \"event_type = 'purchase' OR event_type = 'x:b'\""))
    assert run_cli("models", "register", "--file", path).code == 0
    run = run_cli("refresh", "--as-of", str(AS_OF), "--json")
    assert run.code == 0, run.err
    assert all(r["status"] == "ok" for r in json.loads(run.out)["refreshed"])
