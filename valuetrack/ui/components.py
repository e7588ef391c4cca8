"""Streamlit pieces the pages share: the sidebar, login gate, tiles, empty states, error messages,
the refresh button with progress."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator, Mapping

import streamlit as st

from valuetrack.access import Actor
from valuetrack.errors import PermissionDenied, ValuetrackError
from valuetrack.ui import state, views
from valuetrack.ui.safe import md

log = logging.getLogger("valuetrack.ui")

FAVICON = Path(__file__).resolve().parent / "static" / "favicon.png"  # local: the app works offline
FLASH = "_flash"
ROLE_BADGE = {"viewer": ":gray-badge[viewer]", "editor": ":blue-badge[editor]", "admin": ":violet-badge[admin]"}

CSS = """
<style>
/* greys as translucent overlays, so the tiles and tables read on the light and the dark theme alike */
div[data-testid="stMetric"] {background: rgba(128,128,128,0.08); border: 1px solid rgba(128,128,128,0.35); border-radius: 10px; padding: 14px 16px;}
div[data-testid="stMetricValue"] {font-size: 1.9rem;}
section[data-testid="stSidebar"] div[data-testid="stCaptionContainer"] {margin-top: -0.4rem;}
[data-testid="stMetricLabel"] *, [data-testid="stMetricValue"] *, [data-testid="stPageLink"] * {white-space: normal !important; overflow: visible !important;}
div[data-testid="stMainBlockContainer"] {padding-left: 2.5rem; padding-right: 2.5rem; padding-top: 3rem;}
table.vt-table {width: 100%; border-collapse: collapse; font-size: 0.8125rem; margin: 0.25rem 0 0.5rem;}
table.vt-table td.wrap, table.vt-table th.wrap {white-space: normal;}  /* beats .num (nowrap) */
table.vt-table .amount {white-space: nowrap;}
@media (max-width: 1200px) {table.vt-table .spark {display: none;} table.vt-table {font-size: 0.75rem;}
  div[data-testid="stMainBlockContainer"] {padding-left: 1.5rem; padding-right: 1.5rem;}
  div[data-testid="stMetricValue"] {font-size: 1.45rem;}}
table.vt-table th {text-align: left; font-weight: 600; opacity: 0.8; border-bottom: 1px solid rgba(128,128,128,0.4);
  padding: 5px 6px; vertical-align: bottom;}
table.vt-table td {padding: 5px 6px; border-bottom: 1px solid rgba(128,128,128,0.2); vertical-align: middle; overflow-wrap: break-word;}
table.vt-table .num {text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums;}
table.vt-table td.tag {font-weight: 600;}
table.vt-table a {text-decoration: none; font-weight: 600;}
table.vt-table tfoot td {font-weight: 600; border-top: 1px solid rgba(128,128,128,0.4);}
table.vt-table td.flagged {opacity: 0.5; cursor: help;
  background: repeating-linear-gradient(135deg, rgba(110,119,129,0.18) 0 3px, transparent 3px 7px);}
div[class*="st-key-flagged-"] div[data-testid="stMetric"] {opacity: 0.55;
  background: repeating-linear-gradient(135deg, rgba(110,119,129,0.14) 0 4px, rgba(128,128,128,0.08) 4px 9px);}
</style>
"""


def through_app() -> None:
    """Make sure a page runs inside app.py (login gate, sidebar, navigation).

    Because the pages live in a folder called ``pages/``, Streamlit starts every new server process
    in its legacy multipage mode and, for a first visit straight to ``/model`` or ``/portfolio``,
    would run that file alone, without app.py, until app.py's ``st.navigation`` has run once.
    Leave that mode and rerun: the page's URL maps to the same page under app.py's navigation.
    This happens once per server process (the first visit), before any widget state exists.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - a Streamlit without the legacy mode
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def style() -> None:
    st.html(CSS)


def login_gate() -> Actor:
    """Under [auth]: stop with a login screen until the visitor is logged in (Streamlit OIDC).
    In the open local mode: the local user. Returns the acting user."""
    if not state.auth_required():
        return state.context().actor
    if state.logged_in_email() is None:
        st.title("valuetrack")
        st.write("What each deployed model is worth. Sign in with your company account to continue.")
        if not state.oidc_configured():
            st.error("Sign-in is required ([auth] in valuetrack.toml) but no identity provider is configured: "
                     "add an [auth] section with redirect_uri, cookie_secret, client_id, client_secret and "
                     "server_metadata_url to .streamlit/secrets.toml (see docs/dashboard.md).")
        elif st.button("Sign in", type="primary"):
            st.login()
        st.stop()
    return state.context().actor


def sidebar(actor: Actor) -> None:
    with st.sidebar:
        st.markdown(f":material/account_circle: **{md(actor.name)}** {ROLE_BADGE.get(actor.role, actor.role)}")
        if not actor.can_edit:
            st.caption("View only: ask an admin to add you to [auth].editors to register or edit models.")
        st.caption(f"Figures as of {state.as_of():%d %b %Y} · data of the app database, never live queries")
        if state.auth_required() and state.logged_in_email():
            if st.button("Sign out", key="signout"):
                st.logout()


@contextlib.contextmanager
def shown_errors(what: str = "this page") -> Iterator[None]:
    """Turn errors into messages: a ValuetrackError's own message; anything else a short line
    (the traceback goes to the server log, never to the page)."""
    try:
        yield
    except PermissionDenied as exc:
        st.warning(f":material/lock: {md(exc.message)}")
    except ValuetrackError as exc:
        st.error(md(exc.message))
    except Exception as exc:  # noqa: BLE001 - last line of defence for the user
        log.exception("error rendering %s", what)
        first = str(exc).splitlines()[0] if str(exc) else ""
        st.error(f"Something went wrong while showing {what}: {type(exc).__name__}: {md(first[:300])}. "
                 "The details are in the server log.")


def flagged_tiles(flags: list[Any], key: str) -> Any:
    """A container whose tiles carry a model's flags: dimmed and hatched (CSS on ``st-key-flagged-…``),
    with a line saying why; a plain container when the model is not flagged (D42)."""
    if not flags:
        return st.container()
    box = st.container(key=f"flagged-{key}")
    labels = ", ".join(views.FLAG_LABELS.get(f.type, f.type) for f in flags)
    box.caption(f":orange[:material/flag:] Flagged ({md(labels)}): the figures below are shown faded, not to be "
                "relied on as they stand. Hover over a tile's help for the reason.")
    return box


def tile(col: Any, t: Mapping[str, str], *, help: str | None = None) -> None:
    """A headline tile; a compact value carries the full figure in its help."""
    if t.get("full") and t["full"] != t["value"]:
        help = f"{t['full']}" + (f". {help}" if help else "")
    with col:
        st.metric(t["label"], t["value"], help=help)
        if t.get("exact"):  # the figure at full precision, in the caption's title and aria-label
            from markupsafe import escape

            st.caption(f"<span data-testid='tile-{escape(t.get('key', ''))}' title='{escape(t['label'])}: "
                       f"{escape(t['exact'])}' aria-label='{escape(t['label'])}: {escape(t['full'])} "
                       f"({escape(t['exact'])}). {escape(t['caption'])}'>{t['caption']}</span>", unsafe_allow_html=True)
        else:
            st.caption(t["caption"])


def flash(kind: str, text: str) -> None:
    """A message for the next run of the page (after ``st.rerun``): shown once, then gone."""
    st.session_state.setdefault(FLASH, []).append((kind, text))


def show_flash() -> None:
    """Show, and forget, the messages left by the action of the previous run."""
    for kind, text in st.session_state.pop(FLASH, []):
        {"success": st.success, "error": st.error, "warning": st.warning}.get(kind, st.info)(text)


def nav(sections: Mapping[str, list[Any]]) -> None:
    """The sidebar's page links (app.py hides Streamlit's own list, which has no room for the
    redirect that makes ``/`` open ``/portfolio``)."""
    with st.sidebar:
        for title, pages in sections.items():
            st.caption(title)
            for page in pages:
                st.page_link(page)


def empty_registry() -> None:
    st.info("No models are registered yet. Run `valuetrack demo` to load the demo company, or register "
            "your first model on the **Register a model** page (or `valuetrack models register --file models.toml`).",
            icon=":material/waving_hand:")
    if state.context().actor.can_edit:
        st.page_link("pages/register.py", label="Register a model", icon=":material/add_circle:")


def valued(portfolio: Any, registered: list[Any]) -> Any:
    """The page's valuation, or (nothing valued yet) an explanation with a Refresh button, then stop."""
    if portfolio is not None:
        return portfolio
    st.info("Nothing has been valued yet: figures appear after the first refresh pulls the models' data "
            "(`valuetrack refresh`), or after `valuetrack revalue` values what is already stored.",
            icon=":material/hourglass_empty:")
    refresh_button([m.name for m in registered if m.spec.status == "active"], key="refresh-unvalued", primary=True)
    st.stop()


def svg_chart(markup: str) -> None:
    """A chart written as SVG (valuetrack.svgcharts, D51), inline. Through Markdown with HTML allowed:
    ``st.html`` sanitises with DOMPurify's HTML profile, which removes every SVG element. The markup is
    one line (an HTML block to Markdown, its text left alone) and escapes all registry text in it."""
    assert markup.startswith("<svg ") and "\n" not in markup
    st.markdown(f'<div class="vt-svg-chart">\n{markup}\n</div>', unsafe_allow_html=True)


def needs_refresh(names: list[str], *, key: str = "refresh") -> None:
    """No stored aggregates yet: explain, and offer a Refresh button (editors) with progress."""
    st.info("These models have no data yet: valuetrack has not pulled their aggregates from the "
            "warehouse. Refresh once (then on a schedule: `valuetrack refresh` from cron or your orchestrator).",
            icon=":material/hourglass_empty:")
    refresh_button(names, key=key, primary=True)


def refresh_button(names: list[str], *, key: str = "refresh", primary: bool = False, label: str | None = None) -> None:
    """A Refresh button with a progress bar; viewers see nothing (the library would refuse them)."""
    actor = state.context().actor
    if not actor.can_edit:
        return
    if not st.button(label or (f"Refresh {len(names)} models" if len(names) != 1 else "Refresh this model"),
                     key=key, type="primary" if primary else "secondary", icon=":material/refresh:"):
        return
    from valuetrack.refresh import refresh

    from valuetrack.valuation import revalue

    ctx = state.context()
    bar = st.progress(0.0, text="Starting…")
    failed = []
    with shown_errors("the refresh"):
        for i, name in enumerate(names):
            bar.progress(i / max(len(names), 1), text=f"Refreshing {name} ({i + 1}/{len(names)})…")
            for outcome in refresh(ctx, model=name, as_of=state.as_of(), value=False):
                if outcome.status != "ok":
                    failed.append(f"{outcome.model}: {outcome.error}")
        bar.progress(1.0, text="Valuing the portfolio…")
        revalue(ctx, as_of=state.as_of(), reason="refresh")  # once, for every model refreshed
        bar.progress(1.0, text="Done")
        state.invalidate()
        if failed:
            flash("error", "Some refreshes failed; their previous figures are kept:\n\n" + "\n".join(f"- {md(f)}" for f in failed))
        else:
            flash("success", f"Refreshed {len(names)} model{'s' if len(names) != 1 else ''}.")
        st.rerun()  # show the new figures now, not after a reload
