"""Access under [auth]: visitors must log in (Streamlit OIDC); viewers see no edit controls and the
library refuses their writes; editors' changes are audited with their e-mail."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.pages.conftest import ROOT, app, assert_clean, portfolio_table
from tests.pages.test_register_page import GOOD, K, _fill
from valuetrack.access import Actor
from valuetrack.context import Context, open_context
from valuetrack.errors import PermissionDenied

EDITOR, VIEWER = "ed@example.com", "viewer@example.com"


@pytest.fixture
def secured(demo_copy: Path) -> Path:
    (demo_copy / "valuetrack.toml").write_text(textwrap.dedent(f"""
        [store]
        url = "sqlite:///valuetrack.db"
        [connections.demo]
        url = "duckdb:///sample_data/demo.duckdb"
        [auth]
        default_role = "viewer"
        editors = ["{EDITOR}"]
    """))
    return demo_copy


def _as(user: str | None, page: str | None = None, **query: str) -> AppTest:
    at = app(page, **query)
    at.user = {"is_logged_in": False} if user is None else {"is_logged_in": True, "email": user}
    return at


def test_logged_out_visitors_see_only_the_sign_in_screen(secured: Path) -> None:
    at = _as(None).run()
    assert not at.exception
    assert at.title[0].value == "valuetrack"
    assert not any("portfolio-table" in el.proto.body for el in at.get("html"))
    assert not at.metric
    # no OIDC provider in .streamlit/secrets.toml: say how to configure it
    assert "server_metadata_url" in at.error[0].value


def test_a_viewer_sees_figures_but_no_edit_controls(secured: Path) -> None:
    at = _as(VIEWER).run()
    assert_clean(at)
    assert portfolio_table(at) and at.metric
    assert ":gray-badge[viewer]" in " ".join(m.value for m in at.sidebar.markdown)
    assert not [b for b in at.button if "Refresh" in b.label]
    at = _as(VIEWER, "pages/model.py", model="homepage-recs").run()
    assert_clean(at)
    assert not [b for b in at.button if "Refresh" in b.label]
    assert not [p for p in at.get("page_link") if "Edit" in p.proto.label]
    at = _as(VIEWER, "pages/connections.py").run()
    assert_clean(at)
    assert not [b for b in at.button if "Refresh" in b.label]


def test_the_register_page_refuses_a_viewer(secured: Path) -> None:
    at = AppTest.from_file(str(ROOT / "pages" / "register.py"), default_timeout=120)
    at.user = {"is_logged_in": True, "email": VIEWER}
    at.run()
    assert not at.exception
    assert "may view but not register or edit" in at.warning[0].value
    assert not at.text_input and not at.button


def test_the_library_refuses_a_viewer_whatever_the_page_does(secured: Path) -> None:
    ctx = open_context()
    viewer = Context(ctx.settings, Actor(VIEWER, "viewer"))
    spec = ctx.registry.get("homepage-recs").spec
    with pytest.raises(PermissionDenied):
        viewer.registry.update(spec.replace(monthly_cost=1.0), expected_revision=1, actor=viewer.actor)
    with pytest.raises(PermissionDenied):
        viewer.registry.retire("homepage-recs", viewer.actor)


def test_an_editor_registers_and_the_audit_log_names_them(secured: Path) -> None:
    at = _as(EDITOR, "pages/register.py").run()
    assert_clean(at)
    _fill(at, GOOD).run()
    at.button(key="save").click().run()
    assert_clean(at)
    assert at.success, [e.value for e in at.error]
    entry = open_context().registry.audit("homepage-recs-v2")[0]
    assert entry.actor == EDITOR and entry.action == "create"
