"""Who may change what, tested as an attacker would: a spoofed $VALUETRACK_USER, a swapped --config,
a forged Actor, a wrong token. The app database's recorded [auth] decides; every change carries the
authenticated identity."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.reliability.cases import AS_OF, VALID_MANIFEST, WAREHOUSE_MANIFEST, build_warehouse, run_cli
from tests.reliability.conftest import db_rows, file_digest
from valuetrack.access import Access, Actor, token_sha256
from valuetrack.context import Context, open_context
from valuetrack.errors import PermissionDenied
from valuetrack.registry.manifest import parse_manifest
from valuetrack.registry.store import RegistryStore
from valuetrack.store.db import dispose_all, open_engine

ROOT = Path(__file__).resolve().parents[2]
VIEWER = Actor("vic@example.com", role="viewer")
ANA_TOKEN, LEAD_TOKEN, BOT_TOKEN = "ana-7Hq2-token", "lead-Xk81-token", "bot-viewer-token"
AUTH = textwrap.dedent(f"""
    [auth]
    default_role = "viewer"
    editors = ["ana@example.com"]
    admins = ["lead@example.com"]
    [auth.service_accounts."ana@example.com"]
    token_sha256 = "{token_sha256(ANA_TOKEN)}"
    [auth.service_accounts."lead@example.com"]
    token_sha256 = "{token_sha256(LEAD_TOKEN)}"
    role = "admin"
    [auth.service_accounts.dashboard-bot]
    token_sha256 = "{token_sha256(BOT_TOKEN)}"
    role = "viewer"
""")
BASE = textwrap.dedent("""
    [store]
    url = "sqlite:///valuetrack.db"
    [connections.demo]
    url = "duckdb:///sample_data/demo.duckdb"
    [connections.other]
    url = "duckdb:///sample_data/other.duckdb"
""")


@pytest.fixture
def auth_ws(workspace: Path) -> Path:
    """Models registered in the open local mode, then the team's settings with [auth] open the
    database once (which records the [auth])."""
    build_warehouse(workspace / "sample_data" / "demo.duckdb")
    store = RegistryStore(open_engine(f"sqlite:///{workspace / 'valuetrack.db'}"))
    store.apply(parse_manifest(VALID_MANIFEST), Actor("setup@example.com"))
    (workspace / "valuetrack.toml").write_text(BASE + AUTH)
    assert open_context().access.recorded()["editors"] == ["ana@example.com"]
    return workspace


def _state(ws: Path) -> tuple:
    dispose_all()
    return db_rows(f"sqlite:///{ws / 'valuetrack.db'}"), file_digest(ws / "valuetrack.db")


def _store(ws: Path) -> RegistryStore:
    return RegistryStore(open_engine(f"sqlite:///{ws / 'valuetrack.db'}"))


def test_viewer_is_refused_by_every_library_write(auth_ws: Path) -> None:
    from valuetrack.config import load_settings
    from valuetrack.demo_setup import setup_demo
    from valuetrack.refresh import refresh

    before = _state(auth_ws)
    store = _store(auth_ws)
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


def test_a_forged_actor_cannot_raise_its_role(auth_ws: Path) -> None:
    """Actor(...) built by hand is a name, not a credential, whatever role it claims; the store
    takes no [auth] from its caller at all here, and still enforces the recorded one."""
    before = _state(auth_ws)
    store = _store(auth_ws)
    current = store.get("churn-save-offers")
    cheaper = current.spec.replace(monthly_cost=1.0)
    for forged in (Actor("vic@example.com"), Actor("ana@example.com", role="editor"),
                   Actor("lead@example.com", role="admin", via="oidc"), Actor("ana@example.com", via="token")):
        with pytest.raises(PermissionDenied, match="not a credential"):
            store.update(cheaper, expected_revision=current.revision, actor=forged)
    assert _state(auth_ws) == before


def test_a_spoofed_user_name_grants_nothing(auth_ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (auth_ws / "cheap.toml").write_text(VALID_MANIFEST.replace("4000.0", "1.0"))
    before = _state(auth_ws)
    monkeypatch.setenv("VALUETRACK_USER", "lead@example.com")
    for argv in (["models", "register", "--file", auth_ws / "cheap.toml"], ["models", "retire", "churn-save-offers"],
                 ["refresh", "--as-of", str(AS_OF)], ["demo", "--scale", "0.01"]):
        run = run_cli(*argv, "--json")
        assert run.code == 1 and "lead@example.com is a viewer" in run.err and "VALUETRACK_TOKEN" in run.err, (argv, run.err)
        assert '"permission_denied"' in run.out
    assert run_cli("models", "list").code == 0
    assert _state(auth_ws) == before


def test_a_swapped_config_grants_nothing(auth_ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings without [auth], or with an [auth] of the attacker's own (making him editor with his
    own token), pointing at the same app database: the recorded [auth] still decides."""
    mine = "mallory-token"
    (auth_ws / "noauth.toml").write_text(BASE)
    (auth_ws / "myauth.toml").write_text(BASE + textwrap.dedent(f"""
        [auth]
        default_role = "editor"
        admins = ["mallory@example.com"]
        [auth.service_accounts."mallory@example.com"]
        token_sha256 = "{token_sha256(mine)}"
        role = "admin"
    """))
    before = _state(auth_ws)
    monkeypatch.setenv("VALUETRACK_USER", "mallory@example.com")
    run = run_cli("models", "retire", "churn-save-offers", "--config", auth_ws / "noauth.toml")
    assert run.code == 1 and "is a viewer" in run.err
    monkeypatch.setenv("VALUETRACK_TOKEN", mine)
    for config in ("noauth.toml", "myauth.toml"):
        run = run_cli("models", "retire", "churn-save-offers", "--config", auth_ws / config)
        assert run.code == 1 and "matches no [auth.service_accounts]" in run.err, (config, run.err)
    assert _state(auth_ws) == before
    assert Access(open_engine(f"sqlite:///{auth_ws / 'valuetrack.db'}")).recorded()["admins"] == ["lead@example.com"]


def test_a_token_is_the_credential_and_the_audit_names_its_owner(auth_ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (auth_ws / "m.toml").write_text(WAREHOUSE_MANIFEST.replace("4000.0", "4100.0"))
    monkeypatch.setenv("VALUETRACK_USER", "somebody-else@example.com")  # a claimed name never reaches the audit
    for token, argv in ((ANA_TOKEN, ["models", "register", "--file", auth_ws / "m.toml"]),
                        (LEAD_TOKEN, ["models", "retire", "dynamic-pricing"])):
        monkeypatch.setenv("VALUETRACK_TOKEN", token)
        run = run_cli(*argv)
        assert run.code == 0, run.err
    audit = _store(auth_ws).audit()
    assert [(a.actor, a.action, a.model_name) for a in audit[:2]] == [
        ("lead@example.com", "retire", "dynamic-pricing"), ("ana@example.com", "update", "churn-save-offers")]
    assert not any(a.actor == "somebody-else@example.com" for a in audit)
    monkeypatch.setenv("VALUETRACK_TOKEN", BOT_TOKEN)  # a valid token of a viewer account
    run = run_cli("models", "retire", "churn-save-offers")
    assert run.code == 1 and "dashboard-bot is a viewer" in run.err


def test_only_an_admin_of_the_recorded_auth_changes_it(auth_ws: Path) -> None:
    from valuetrack.config import load_settings

    engine = open_engine(f"sqlite:///{auth_ws / 'valuetrack.db'}")
    settings = load_settings()
    widened = {**settings.auth, "editors": ["ana@example.com", "bo@example.com"]}
    spec = _store(auth_ws).get("churn-save-offers").spec
    # an editor writing with a widened [auth] changes the model but not the [auth]
    ana = Access(engine, widened)
    RegistryStore(engine, access=ana).update(spec.replace(monthly_cost=4001.0), expected_revision=1,
                                             actor=Actor("ana", via="token", _token_sha256=token_sha256(ANA_TOKEN)))
    assert ana.recorded()["editors"] == ["ana@example.com"]
    # the admin's write adopts it (and the audit log says so)
    RegistryStore(engine, access=ana).update(spec.replace(monthly_cost=4002.0), expected_revision=2,
                                             actor=Actor("x", via="token", _token_sha256=token_sha256(LEAD_TOKEN)))
    assert ana.recorded()["editors"] == ["ana@example.com", "bo@example.com"]
    assert [(a.actor, a.note) for a in _store(auth_ws).audit() if a.action == "auth"][0] == (
        "lead@example.com", "[auth] changed by an admin")


def test_open_local_mode_without_auth_anywhere(workspace: Path) -> None:
    """No [auth] in the settings and none recorded: the local user edits (the demo's mode); a
    claimed role can still lower it."""
    ctx = open_context()
    assert ctx.require_edit("register models").name == "tester@example.com"
    with pytest.raises(PermissionDenied):
        Access(ctx.engine).require_edit(Actor("x", role="viewer"), "edit models")
    assert ctx.access.recorded() is None


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
