"""A viewer cannot change the registry through any library call or page; every change carries its user."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.reliability.cases import AS_OF, VALID_MANIFEST, WAREHOUSE_MANIFEST, build_warehouse, run_cli
from tests.reliability.conftest import db_rows, file_digest
from valuetrack.access import Actor
from valuetrack.context import Context
from valuetrack.errors import PermissionDenied
from valuetrack.registry.manifest import parse_manifest
from valuetrack.registry.store import RegistryStore
from valuetrack.store.db import dispose_all, open_engine

ROOT = Path(__file__).resolve().parents[2]
VIEWER = Actor("vic@example.com", role="viewer")
ANA = Actor("ana@example.com", role="editor")


@pytest.fixture
def auth_ws(workspace: Path) -> Path:
    (workspace / "valuetrack.toml").write_text(textwrap.dedent("""
        [store]
        url = "sqlite:///valuetrack.db"
        [connections.demo]
        url = "duckdb:///sample_data/demo.duckdb"
        [connections.other]
        url = "duckdb:///sample_data/other.duckdb"
        [auth]
        default_role = "viewer"
        editors = ["ana@example.com"]
        admins = ["lead@example.com"]
    """))
    build_warehouse(workspace / "sample_data" / "demo.duckdb")
    store = RegistryStore(open_engine(f"sqlite:///{workspace / 'valuetrack.db'}"))
    store.apply(parse_manifest(VALID_MANIFEST), ANA)
    return workspace


def _state(ws: Path) -> tuple:
    dispose_all()
    return db_rows(f"sqlite:///{ws / 'valuetrack.db'}"), file_digest(ws / "valuetrack.db")


def test_viewer_is_refused_by_every_library_write(auth_ws: Path) -> None:
    from valuetrack.config import load_settings
    from valuetrack.demo_setup import setup_demo
    from valuetrack.refresh import refresh

    before = _state(auth_ws)
    store = RegistryStore(open_engine(f"sqlite:///{auth_ws / 'valuetrack.db'}"))
    current = store.get("churn-save-offers")
    new = parse_manifest(VALID_MANIFEST)[0].spec.replace(name="new-model")
    ctx = Context(load_settings(), VIEWER)
    calls = {
        "create": lambda: store.create(new, VIEWER),
        "update": lambda: store.update(current.spec.replace(monthly_cost=1.0), expected_revision=current.revision, actor=VIEWER),
        "retire": lambda: store.retire("churn-save-offers", VIEWER),
        "apply": lambda: store.apply(parse_manifest(VALID_MANIFEST.replace("4000.0", "1.0")), VIEWER),
        "refresh": lambda: refresh(ctx, as_of=AS_OF),
        "refresh one": lambda: refresh(ctx, model="churn-save-offers", as_of=AS_OF),
        "demo": lambda: setup_demo(ctx, as_of=AS_OF, scale=0.01),
    }
    for name, call in calls.items():
        with pytest.raises(PermissionDenied, match="vic@example.com is a viewer"):
            call()
    assert store.apply(parse_manifest(VALID_MANIFEST.replace("4000.0", "1.0")), VIEWER, dry_run=True)  # reading is fine
    assert _state(auth_ws) == before


def test_viewer_is_refused_by_the_cli(auth_ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VALUETRACK_USER", "vic@example.com")
    (auth_ws / "m.toml").write_text(VALID_MANIFEST.replace("4000.0", "1.0"))
    before = _state(auth_ws)
    for argv in (["models", "register", "--file", auth_ws / "m.toml"], ["models", "retire", "churn-save-offers"],
                 ["refresh", "--as-of", str(AS_OF)], ["demo", "--scale", "0.01"]):
        run = run_cli(*argv)
        assert run.code == 1 and "is a viewer" in run.err, (argv, run.err)
    assert run_cli("models", "list").code == 0
    assert _state(auth_ws) == before


def test_every_change_carries_its_user(auth_ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (auth_ws / "m.toml").write_text(WAREHOUSE_MANIFEST.replace("4000.0", "4100.0"))
    for user, argv in (("ana@example.com", ["models", "register", "--file", auth_ws / "m.toml"]),
                       ("lead@example.com", ["models", "retire", "dynamic-pricing"])):
        monkeypatch.setenv("VALUETRACK_USER", user)
        assert run_cli(*argv).code == 0
    audit = RegistryStore(open_engine(f"sqlite:///{auth_ws / 'valuetrack.db'}")).audit()
    assert [(a.actor, a.action, a.model_name) for a in audit[:2]] == [
        ("lead@example.com", "retire", "dynamic-pricing"), ("ana@example.com", "update", "churn-save-offers")]
    assert all(a.actor and a.actor != "anonymous" for a in audit)


def test_viewer_cannot_change_anything_through_the_pages(auth_ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every page of app.py, as a logged-in viewer, with every button clicked (AppTest, no browser).
    Pages are being written in parallel: this walks whatever app.py lists."""
    from streamlit.testing.v1 import AppTest

    import valuetrack.ui.state as state

    monkeypatch.setattr(state, "logged_in_email", lambda: "vic@example.com")
    before = _state(auth_ws)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    pages = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))
    assert pages
    for page in pages:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
        try:
            at.switch_page(page).run()
        except ValueError as exc:  # not in the viewer's navigation at all: unreachable for them
            assert "Could not find a navigation page" in str(exc)
            continue
        assert not at.exception, (page, at.exception)
        for i in range(len(at.button)):
            at.button[i].click().run()
            assert not at.exception, (page, i, at.exception)
            if i + 1 >= len(at.button):
                break
    after = _state(auth_ws)
    changed = {t for t in set(before[0]) | set(after[0]) if before[0].get(t) != after[0].get(t)}
    # a viewer may read and export reports (which stores an immutable report snapshot); what they
    # may not change is the registry, its audit log, or the stored aggregates and refreshes
    assert changed <= {"report_snapshots"}, changed
