"""Portfolio: what the models earned, which to worry about, and why — at a glance."""

from __future__ import annotations

import streamlit as st

from valuetrack.ui import charts, components as ui, state, views

ui.through_app()

st.title("Model portfolio")
ctx = state.context()
registered = state.registered()
if not registered:
    ui.empty_registry()
    st.stop()

to_date = ui.valued(state.portfolio(None), registered)
as_of = to_date.as_of
month_now = views.current_month(as_of)
this_month = state.portfolio(month_now) if month_now in to_date.months else None
cur = to_date.currency
st.caption(f"Net value = causal uplift × value per unit − cost, in {cur}, as of {as_of:%d %b %Y}. "
           "Intervals are 95%; P(net > 0) under a flat prior.")

if all(m.gross is None for m in to_date.models):
    ui.needs_refresh([m.name for m in registered if m.spec.status == "active"], key="refresh-empty")

tiles = views.headline(to_date, this_month)
cols = st.columns(4)
ui.tile(cols[0], tiles["month"], help="Month of the last day with data; later cohorts are provisional.")
ui.tile(cols[1], tiles["to_date"], help="From each model's launch to yesterday.")
ui.tile(cols[2], tiles["models"])
ui.tile(cols[3], tiles["flagged"], help="Models delivering no value or whose measurement cannot be trusted.")

flagged = views.flags_by_model(to_date.flags)
if flagged:
    with st.container(border=True):
        st.markdown(f"#### :material/flag: Needs attention ({len(flagged)})")
        for name, fl in list(flagged.items())[:5]:
            m = next(x for x in to_date.models if x.model == name)
            c1, c2 = st.columns([1, 3])
            c1.page_link("pages/model.py", label=m.display_name, query_params={"model": name}, icon=":material/query_stats:")
            c2.markdown(" · ".join(f"{views.FLAG_ICONS[f.type]} **{views.FLAG_LABELS[f.type]}**" for f in fl)
                        + f" — net {views.money(m.net, cur)} to date")
        if len(flagged) > 5:
            st.page_link("pages/flags.py", label=f"All {len(flagged)} flagged models", icon=":material/flag:")

st.subheader("Models")
f1, f2, f3, f4 = st.columns([1.2, 1, 1, 1])
months = list(reversed(to_date.months))
period = f1.selectbox("Period", ["To date", *months], format_func=lambda p: p if p == "To date" else views.month_label(p),
                      key="period")
teams = f2.multiselect("Team", sorted({m.team for m in to_date.models}), key="teams", placeholder="All teams")
owners = f3.multiselect("Owner", sorted({m.owner for m in to_date.models}), key="owners", placeholder="All owners")
statuses = f4.multiselect("Status", ["active", "retired"], key="statuses", placeholder="All")

shown = to_date if period == "To date" else state.portfolio(period)
frame = views.portfolio_frame(shown, state.sparklines([m.model for m in shown.models]))
frame = views.filter_frame(frame, teams=teams, owners=owners, statuses=statuses).sort_values("net", ascending=False,
                                                                                               na_position="last")
fmt = {"USD": "dollar", "EUR": "euro"}.get(cur, "localized")
spark = [x for xs in frame["trend"] for x in xs if x is not None]  # one scale for every row, zero included
spark_lo, spark_hi = min([0.0, *spark]), max([0.0, *spark])
columns = ["name", "net", "net_lo", "net_hi", "roi", "p_positive", "trend", "health", "risk", "flag", "team", "model"]
event = st.dataframe(
    frame[columns].style.map(views.cell_colour, subset=["health", "risk", "flag"]),
    hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row", key="table",
    column_config={
        "name": st.column_config.TextColumn("Model", width="medium"),
        "team": st.column_config.TextColumn("Team", width="small"),
        "net": st.column_config.NumberColumn(f"Net value ({cur})", format=fmt, help="Gross value − cost, for the period"),
        "net_lo": st.column_config.NumberColumn("95% low", format=fmt),
        "net_hi": st.column_config.NumberColumn("95% high", format=fmt),
        "roi": st.column_config.NumberColumn("ROI", format="percent", help="Net value ÷ cost", width="small"),
        "p_positive": st.column_config.ProgressColumn("P(net > 0)", format="percent", min_value=0.0, max_value=1.0,
                                                     color="#0969da", width="small"),
        "health": st.column_config.TextColumn("Health", width="small"),
        "risk": st.column_config.TextColumn("Risk", width="small"),
        "flag": st.column_config.TextColumn("Flag", width="medium"),
        "trend": st.column_config.BarChartColumn("By month", width="small", color="#0969da", y_min=spark_lo, y_max=spark_hi,
                                              help="Net value per month since launch (bars below the axis: months that lost money)"),
        "model": None,  # the id: kept in the data (row selection), not shown
    },
)
rows = event.selection.rows if event and getattr(event, "selection", None) else []
if rows:
    st.switch_page("pages/model.py", query_params={"model": frame.iloc[rows[0]]["model"]})
st.caption("Select a row to open the model. Click a column header to sort.")

c1, c2 = st.columns([3, 1])
with c1:
    label = "Net value to date" if period == "To date" else f"Net value, {views.month_label(period)}"
    st.plotly_chart(charts.value_by_model(frame, cur, label=label), width="stretch", key="value-chart")
with c2:
    st.markdown("##### Open a model")
    display = dict(zip(frame["model"], frame["name"]))
    pick = st.selectbox("Model", list(display), format_func=display.get,
                        key="open-model", label_visibility="collapsed")
    if pick:
        st.page_link("pages/model.py", label="Open model detail", query_params={"model": pick}, icon=":material/query_stats:")
    ui.refresh_button([m.name for m in registered if m.spec.status == "active"], key="refresh-all",
                      label="Refresh all models")
