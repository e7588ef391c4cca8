"""Portfolio: every registered model at a glance."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from valuetrack.errors import ValuetrackError
from valuetrack.ui.state import context

st.title("Model portfolio")
try:
    ctx = context()
    models = ctx.registry.list()
except ValuetrackError as exc:
    st.error(exc.message)
    st.stop()

if not models:
    st.info("No models are registered yet. Run `valuetrack demo` to load the demo company, "
            "or register your own with `valuetrack models register --file models.toml`.")
    st.stop()

frame = pd.DataFrame([m.summary() for m in models])
active = frame[frame["status"] == "active"]
c1, c2, c3 = st.columns(3)
c1.metric("Models registered", len(frame))
c2.metric("Active", len(active))
c3.metric("Monthly cost (active)", f"{active['monthly_cost'].sum():,.0f} {ctx.settings.currency}")

teams = sorted(frame["team"].unique())
chosen = st.multiselect("Team", teams, default=teams)
shown = frame[frame["team"].isin(chosen)]
st.dataframe(
    shown[["name", "display_name", "owner", "team", "status", "kpi", "method", "monthly_cost", "revision", "updated_at"]],
    hide_index=True,
    width="stretch",
    column_config={"monthly_cost": st.column_config.NumberColumn("monthly cost", format="%.0f")},
)
