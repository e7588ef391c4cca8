"""Reports: pick a month, preview the monthly value report, download it as PDF, HTML, CSV or XLSX."""

from __future__ import annotations

import streamlit as st

from valuetrack.ui import components as ui, state, views

ui.through_app()

st.title("Monthly reports")
ctx = state.context()
if not state.registered():
    ui.empty_registry()
    st.stop()

pv = ui.valued(state.portfolio(None), state.registered())
months = list(reversed(pv.months)) or [views.current_month(pv.as_of)]
st.caption("Running a report stores a snapshot of the month's figures, and every download reads that snapshot, so "
           "a report exported again reads the same. While a month is provisional (not over, or its cohorts not yet "
           "mature), newer data issues a new provisional snapshot; the first run after the month is final issues the "
           "final one, which lists what changed, and a final month stays as issued. Same as "
           "`valuetrack report --month YYYY-MM`.")
month = st.selectbox("Month", months, index=1 if len(months) > 1 else 0, format_func=views.month_label, key="month",
                     help="The current month is provisional until it ends and its cohorts mature.")

snap = state.report(month)
t = snap.totals
cur = snap.content.get("currency", pv.currency)
a, b, c, d = st.columns(4)
a.metric("Net value", views.money_compact(t.get("net"), cur), help=views.money(t.get("net"), cur))
a.caption(f"95% interval {views.interval(t.get('ci_net'), cur, compact=True)}")
b.metric("Gross value", views.money_compact(t.get("gross"), cur), help=views.money(t.get("gross"), cur))
c.metric("Cost", views.money_compact(t.get("cost"), cur), help=views.money(t.get("cost"), cur))
d.metric("Status", snap.status)
d.caption(f"snapshot {snap.id} · as of {snap.as_of}" + (f" · replaces {snap.supersedes}" if snap.supersedes else ""))

st.markdown("##### Download")
cols = st.columns(4)
mimes = {"pdf": "application/pdf", "html": "text/html", "csv": "text/csv",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
for col, fmt in zip(cols, ("pdf", "html", "csv", "xlsx")):
    col.download_button(fmt.upper(), data=lambda fmt=fmt: state.report_bytes(month, fmt), file_name=f"valuetrack-{month}.{fmt}",
                        mime=mimes[fmt], key=f"dl-{fmt}", icon=":material/download:", width="stretch")

st.markdown("##### Preview")
# our own template, autoescaped: registry text cannot inject script into the app
st.iframe(state.report_bytes(month, "html").decode("utf-8"), height=900)
