"""The app database works on PostgreSQL as on SQLite: the registry's and the CLI's core flows,
parametrized over both backends (PostgreSQL started by the test session, see conftest.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.reliability.cases import AS_OF, VALID_MANIFEST, WAREHOUSE_MANIFEST, build_warehouse, run_cli
from valuetrack.access import Actor
from valuetrack.errors import AlreadyExists, Conflict
from valuetrack.registry.manifest import parse_manifest
from valuetrack.registry.store import RegistryStore
from valuetrack.store.aggregates import AggregateStore
from valuetrack.store.db import open_engine

ANA, BEN = Actor("ana@example.com"), Actor("ben@example.com")


def test_registry_core_flows(store_url: str) -> None:
    store = RegistryStore(open_engine(store_url))
    assert [c.action for c in store.apply(parse_manifest(VALID_MANIFEST), ANA)] == ["create", "create"]
    assert {c.action for c in store.apply(parse_manifest(VALID_MANIFEST), BEN)} == {"unchanged"}
    base = store.get("churn-save-offers")
    saved = store.update(base.spec.replace(monthly_cost=4100.0), expected_revision=1, actor=BEN)
    assert saved.revision == 2 and saved.updated_by == BEN.name
    with pytest.raises(Conflict):
        store.update(base.spec.replace(team="x"), expected_revision=1, actor=ANA)
    with pytest.raises(AlreadyExists):
        store.create(base.spec, ANA)
    assert store.apply(parse_manifest(VALID_MANIFEST.replace("12000.0", "1.0")), ANA, dry_run=True)[1].action == "update"
    assert store.get("dynamic-pricing").revision == 1
    assert store.retire("dynamic-pricing", ANA).spec.status == "retired"
    assert [(a.actor, a.action) for a in store.audit()[:2]] == [(ANA.name, "retire"), (BEN.name, "update")]
    assert store.get("churn-save-offers").created_at.tzinfo is not None or "sqlite" in store_url


def test_cli_round_trip_and_refresh(store_url: str, workspace: Path) -> None:
    (workspace / "valuetrack.toml").write_text(textwrap.dedent(f"""
        [store]
        url = "{store_url}"
        [connections.demo]
        url = "duckdb:///sample_data/demo.duckdb"
        [connections.other]
        url = "duckdb:///sample_data/other.duckdb"
    """))
    build_warehouse(workspace / "sample_data" / "demo.duckdb")
    (workspace / "m.toml").write_text(VALID_MANIFEST)
    assert run_cli("models", "register", "--file", workspace / "m.toml").code == 0
    first = run_cli("models", "export").out
    (workspace / "e.toml").write_text(first)
    again = run_cli("models", "register", "--file", workspace / "e.toml")
    assert again.code == 0 and "2 unchanged" in again.out
    assert run_cli("models", "export").out == first  # export → register → export is byte-identical
    (workspace / "w.toml").write_text(WAREHOUSE_MANIFEST)
    refreshed = run_cli("refresh", "--model", "churn-save-offers", "--as-of", str(AS_OF), "--json")
    assert refreshed.code == 0, refreshed.out + refreshed.err
    assert not AggregateStore(open_engine(store_url)).read_ab("churn-save-offers").empty
    assert run_cli("value", "--as-of", str(AS_OF), "--json").code == 0


def test_the_command_line_refresh_forks_with_connections_of_its_own(store_url: str, workspace: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A command-line refresh of a large portfolio pulls in a forked process (D69) and values in
    forked workers (D57), each with connections of its own to the app database: on SQLite and on
    PostgreSQL, every model is refreshed, the first day and the next, and the ledger holds what a
    valuation in one process writes."""
    import datetime as dt
    import json

    from valuetrack.context import open_context
    from valuetrack.valuation import revalue
    from valuetrack.value import parallel

    settings = workspace / "valuetrack.toml"  # the workspace's, on this backend
    settings.write_text(settings.read_text().replace('url = "sqlite:///valuetrack.db"', f'url = "{store_url}"'))
    assert run_cli("demo", "--scale", "0.05", "--as-of", "2026-03-01").code == 0
    monkeypatch.setattr(parallel, "workers_for", lambda n, cpus=None: 2)
    for as_of in (dt.date(2026, 3, 1), dt.date(2026, 3, 2)):
        refreshed = run_cli("refresh", "--as-of", str(as_of), "--json")
        result = json.loads(refreshed.out)
        assert refreshed.code == 0, refreshed.err
        assert result["valuation"]["attempts"] == 1 and result["valuation"]["errors"] == 0
        assert [r["model"] for r in result["refreshed"] if r["status"] != "ok"] == []
        during = run_cli("value", "--json").out
        revalue(open_context(), as_of=as_of, workers=1)
        assert run_cli("value", "--json").out == during
