"""Portfolio: what the models earned, which to worry about, and why — at a glance."""

from __future__ import annotations

import streamlit as st

from valuetrack.ui import charts, components as ui, state, views
from valuetrack.ui.safe import md

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

# the period filter governs the tiles and the table alike: to date, a month, or a range of whole months
months = list(reversed(to_date.months))
p1, p2, p3 = st.columns([1, 1, 1])
choice = p1.selectbox("Period", ["To date", *months, views.RANGE], key="period",
                      format_func=lambda p: p if p in ("To date", views.RANGE) else views.month_label(p))
first = last = None
if choice == views.RANGE and months:
    first = p2.selectbox("From", months[::-1], key="period_from", format_func=views.month_label)
    last = p3.selectbox("To", months, key="period_to", format_func=views.month_label)
period = views.period_key(choice, first, last)
shown = to_date if period is None else state.portfolio(period)

tiles = views.headline(to_date, this_month, shown)
cols = st.columns(4)
if period is None:
    ui.tile(cols[0], tiles["month"], help="Month of the last day with data; later cohorts are provisional.")
    ui.tile(cols[1], tiles["to_date"], help=f"From each model's launch to yesterday. {views.NET_HELP}")
else:
    ui.tile(cols[0], tiles["month"], help="Gross value − running costs of the models in the period, as the ledger "
                                          f"stored it. {views.NET_HELP}")
    ui.tile(cols[1], tiles["to_date"])
ui.tile(cols[2], tiles["models"])
ui.tile(cols[3], tiles["flagged"], help="Models delivering no value or whose measurement cannot be trusted.")

failed = views.failures(to_date)
if failed:
    with st.container(border=True, key="not-valued"):
        st.markdown(f"#### :material/error: Could not be valued ({len(failed)})")
        for item in failed:
            c1, c2 = st.columns([1, 3])
            c1.page_link("pages/model.py", label=md(item["name"]), query_params={"model": item["model"]},
                         icon=":material/query_stats:")
            c2.text(f"{item['why']}\n{item['last']}")

attention = views.attention(to_date)
if attention["rows"]:
    with st.container(border=True, key="needs-attention"):
        st.markdown(f"#### :material/flag: Needs attention ({attention['models']} models, {attention['flags']} flags)")
        st.caption("The worst first: by the severity of the flag, then by the money at stake (the model's expected "
                   "loss to date).")
        for row in attention["rows"]:
            c1, c2 = st.columns([1.3, 3])
            c1.page_link("pages/model.py", label=md(row["name"]), query_params={"model": row["model"]},
                         icon=":material/query_stats:")
            c2.markdown(f"{row['icon']} **{row['label']}** — {row['at_stake']} at stake · net {row['net']} to date",
                        help=md(row["reason"]))
        if attention["hidden"]:
            st.page_link("pages/flags.py", icon=":material/flag:",
                         label=f"{attention['hidden']} more flag{'s' if attention['hidden'] != 1 else ''}, none more "
                               "severe than those above: all flags")

with st.container(border=True):
    st.markdown("#### :material/trending_down: Value at risk")
    var = state.portfolio_var()
    tiles_by_horizon = views.var_tiles(var, cur)
    if tiles_by_horizon is None:
        st.caption(md(views.var_message(var)))
    else:
        st.caption("What the portfolio's net value might be in a bad year or month: simulated from each model's "
                   "volume, effect drift and cost, moving together through a common demand factor "
                   "(docs/methods-var.md). It takes today's estimates as right; their own uncertainty is what "
                   f"the intervals show. As of {var['as_of']}, {len(var['models'])} models.")
        for label, horizon_tiles in tiles_by_horizon.items():
            st.markdown(f"**{label}**")
            cols = st.columns(3)
            for col, t in zip(cols, horizon_tiles):
                ui.tile(col, t)
        by_model = st.expander("By model", key="var-by-model", on_change="rerun")
        with by_model:
            if by_model.open:  # the grid is built only when opened: a browser would build it hidden (D45)
                st.dataframe(views.var_frame(var), hide_index=True, width="stretch",
                             column_config={k: st.column_config.NumberColumn(format="%.0f")
                                            for k in ("Expected", "Own VaR", "In the worst paths")})
                if var["left_out"]:
                    st.caption("Left out: " + "; ".join(f"{md(o['model'])} ({md(o['reason'])})" for o in var["left_out"]))

st.subheader("Models" if period is None else f"Models, {views.period_label(period)}")
f5, _ = st.columns([1, 2])
f2, f3, f4 = st.columns(3)
teams = f2.multiselect("Team", sorted({m.team for m in to_date.models}), key="teams", placeholder="All teams")
owners = f3.multiselect("Owner", sorted({m.owner for m in to_date.models}), key="owners", placeholder="All owners")
statuses = f4.multiselect("Status", ["active", "retired"], key="statuses", placeholder="All")
sort = f5.selectbox("Sort by", list(views.SORTS), format_func=views.SORTS.get, key="sort")

final_note = views.final_note(shown)  # a final month reads its final version; a newer figure is pending
if final_note:
    st.info(final_note, icon=":material/lock_clock:")
frame = views.portfolio_frame(shown, state.sparklines([m.model for m in shown.models if m.state == "ok"]))
frame = views.sort_frame(views.filter_frame(frame, teams=teams, owners=owners, statuses=statuses), sort)
if len(frame):
    st.html(views.portfolio_table_html(frame, cur))
    st.caption(f"{len(frame)} model{'s' if len(frame) != 1 else ''}. Click a name to open the model. "
               "By month: net value per month since launch, on one scale for every row (red: months that lost money).")
else:
    st.info("No model matches these filters.")

# A session's first view sends its tiles and table without the charts: the browser loads plotly (4.7 MB
# of JavaScript) when the first chart arrives, and would hold back what came with it until then. A
# timer in the browser asks for the page again a moment later, with the charts (D45).
CHARTS = "portfolio-charts"
draw_charts = CHARTS in st.session_state
c1, c2 = st.columns([2.2, 1])
with c1:
    label = "Net value to date" if period is None else f"Net value, {views.period_label(period)}"
    if draw_charts:
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

steps = views.reconciliation(shown.totals, cur)
with st.container(border=True, key="reconciliation"):
    st.markdown("#### :material/waterfall_chart: From the rows to the total")
    for warning in shown.totals.get("overlap_warnings") or []:
        st.warning(md(warning), icon=":material/warning:")
    if steps is None:
        st.caption("This valuation was stored before the reconciliation existed: `valuetrack revalue` records it.")
    else:
        st.caption("Every model of the portfolio (the team, owner and status filters do not apply): the rows' net values, minus the value "
                   "models sharing units and a KPI would count more than once, minus the cost of the models without an "
                   "estimate, make the total (docs/methods-value.md). Hover for each amount to the cent.")
        if draw_charts:
            st.plotly_chart(charts.reconciliation(steps, cur), width="stretch", key="reconciliation-chart")
        st.html(views.reconciliation_html(steps, cur))

if not draw_charts:
    st.session_state[CHARTS] = "armed"

    @st.fragment(run_every=0.3)
    def _charts_next() -> None:  # runs once with the page, then on the browser's timer: draws the charts
        if st.session_state.get(CHARTS) == "armed" and st.session_state.pop("_charts-inline", None) is None:
            st.session_state[CHARTS] = "drawn"
            st.rerun()

    st.session_state["_charts-inline"] = True
    _charts_next()
