"""valuetrack dashboard: `valuetrack serve` or `streamlit run app.py`."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="valuetrack", page_icon="📈", layout="wide")

pages = [
    st.Page("pages/portfolio.py", title="Portfolio", icon="📊", default=True),
]
st.navigation(pages).run()
