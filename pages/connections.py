"""Connections: the configured warehouses, a connection test, the last refreshes and what they cost."""

from __future__ import annotations

import streamlit as st

from valuetrack.ui import actions, components as ui, state, views
from valuetrack.ui.safe import md

ui.through_app()

st.title("Connections")
ctx = state.context()
st.caption(f"Warehouses from {ctx.settings.source}. Secrets (`${{VAR}}`) are resolved from the environment or "
           ".streamlit/secrets.toml at query time and never shown or stored. The dashboard reads the app database "
           "only; the warehouse is queried by refreshes, connection tests and registration previews.")

frame = actions.connections_frame(ctx)
for row in frame.to_dict("records"):
    with st.container(border=True):
        a, b, c = st.columns([2.4, 1.4, 1.2])
        a.markdown(f"#### :material/cable: {md(row['connection'])}  \n{md(row['url'])}")
        a.caption(f"{row['warehouse']} · {row['models']} model{'s' if row['models'] != 1 else ''} · last refresh "
                  f"{actions.fmt_when(row['last_refresh'])}")
        key = f"test-{row['connection']}"
        if b.button("Test connection", key=key, icon=":material/network_check:"):
            with st.spinner(f"Connecting to {row['connection']}…"):
                st.session_state[key + "-result"] = actions.check_connection(ctx, row["connection"])
        result = st.session_state.get(key + "-result")
        if result:
            (c.success if result["ok"] else c.error)(
                ("Connected" + (f" in {result['latency_s'] * 1000:.0f} ms" if result.get("latency_s") else "")
                 if result["ok"] else "Failed"))
            if not result["ok"]:
                st.error(md(result["message"]))
            elif result.get("server_version"):
                st.caption(f"server {result['server_version']}")

st.subheader("Refreshes")
history = actions.refresh_history(ctx)
names = [m.name for m in ctx.registry.list(status="active")]
if history.empty:
    if names:
        ui.needs_refresh(names, key="refresh-conn")
    else:
        ui.empty_registry()
    st.stop()

ok = history[history["status"] == "ok"]
a, b, c, d = st.columns(4)
last = history["finished_at"].dropna().max() if history["finished_at"].notna().any() else None
a.metric("Last refresh", f"{last:%d %b, %H:%M}" if last is not None else "never", help=actions.fmt_when(last))
b.metric("Refreshes (recent)", len(history), help="The last 20 per model")
c.metric("Warehouse time", f"{ok['seconds'].sum():,.1f} s", help="Summed query time reported by the warehouse")
scanned = ok["bytes_scanned"].dropna()
d.metric("Bytes scanned / billed", f"{scanned.sum() / 1e9:,.2f} GB" if len(scanned) else "—",
         help="BigQuery bytes billed, Athena data scanned; DuckDB and Snowflake report time only (credits = time × size)")
failed = history[history["status"] == "failed"]
if len(failed):
    st.warning(f"{len(failed)} recent refresh{'es' if len(failed) != 1 else ''} failed; the models keep their previous "
               "figures and are shown as stale.")
SHOWN = 15
st.html(views.table_html(
    ["Model", "Started", "Status", "Rows", "Queries", "Warehouse time", "Bytes", "Error"],
    [[r["model"], actions.fmt_when(r["started_at"]), r["status"], views.number(r["rows"]), views.number(r["queries"]),
      f"{views.number(r['seconds'], 2)} s" if r["seconds"] == r["seconds"] and r["seconds"] is not None else "—",
      views.number(r["bytes_scanned"]), r["error"] or "—"] for r in history.head(SHOWN).to_dict("records")],
    numeric=[3, 4, 5, 6], testid="refreshes"))
if len(history) > SHOWN:
    st.caption(f"The latest {SHOWN} of {len(history)} recent refreshes.")
ui.refresh_button(names, key="refresh-conn-all", label="Refresh all models now")
