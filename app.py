"""valuetrack dashboard: `valuetrack serve` or `streamlit run app.py`.

Thin shell: page config, the login gate (OIDC under [auth], open local mode otherwise), the
sidebar with the user, the role and the page links, and the navigation. Viewers are not offered
the register page, and the library refuses their writes anyway.
"""

from __future__ import annotations

import streamlit as st

from valuetrack.ui import components as ui

st.set_page_config(page_title="valuetrack", page_icon=str(ui.FAVICON), layout="wide")
ui.style()

actor = ui.login_gate()

portfolio = st.Page("pages/portfolio.py", title="Portfolio", icon=":material/dashboard:", url_path="portfolio")


def home() -> None:
    """``/`` opens the portfolio at its own address, so /portfolio is a link people can share."""
    st.switch_page(portfolio)


sections = {
    "Value": [
        portfolio,
        st.Page("pages/model.py", title="Model detail", icon=":material/query_stats:", url_path="model"),
        st.Page("pages/flags.py", title="Flags", icon=":material/flag:", url_path="flags"),
        st.Page("pages/reports.py", title="Reports", icon=":material/description:", url_path="reports"),
    ],
    "Manage": [
        *([st.Page("pages/register.py", title="Register a model", icon=":material/add_circle:", url_path="register")] if actor.can_edit else []),
        st.Page("pages/connections.py", title="Connections", icon=":material/cable:", url_path="connections"),
    ],
}
page = st.navigation([st.Page(home, title="valuetrack", default=True), *sum(sections.values(), [])], position="hidden")
ui.sidebar(actor)
ui.nav(sections)
ui.show_flash()
with ui.shown_errors(page.title):
    page.run()
