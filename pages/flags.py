"""Flags: every flagged model, why (with the numbers), and what to do next."""

from __future__ import annotations

import streamlit as st

from valuetrack.formatting import money
from valuetrack.ui import components as ui, state, views
from valuetrack.ui.safe import md

ui.through_app()

st.title("Flags")
ctx = state.context()
if not state.registered():
    ui.empty_registry()
    st.stop()

pv = ui.valued(state.portfolio(None), state.registered())
st.caption("A flag is a decision about money, each tested against its own null with false discoveries controlled "
           f"across the portfolio (Benjamini–Hochberg). As of {pv.as_of:%d %b %Y}.")
by_model = views.flags_by_model(pv.flags)
if not by_model:
    st.success("No model is flagged: every model either covers its cost or is too young to judge.", icon=":material/check_circle:")
    st.stop()

counts = {t: sum(1 for f in pv.flags if f.type == t) for t in views.FLAG_LABELS}
cols = st.columns(len(counts))
for col, (t, n) in zip(cols, counts.items()):
    col.metric(f"{views.FLAG_ICONS[t]} {views.FLAG_LABELS[t]}", n)

kinds = st.multiselect("Show", list(views.FLAG_LABELS), format_func=views.FLAG_LABELS.get, key="kinds",
                       placeholder="All kinds of flag")
values = {m.model: m for m in pv.models}
for name, flags in by_model.items():
    flags = [f for f in flags if not kinds or f.type in kinds]
    if not flags:
        continue
    m = values[name]
    with st.container(border=True):
        head, link = st.columns([4, 1])
        head.markdown(f"### {md(m.display_name)}")
        head.caption(f"{md(name)} · {md(m.team)} · owner {md(m.owner)} · net value to date **{money(m.net, m.currency)}** "
                     f"(95% interval {views.interval(m.ci_net, m.currency)})")
        link.page_link("pages/model.py", label="Open model", query_params={"model": name}, icon=":material/query_stats:")
        for f in flags:
            since = pv.raised_on.get((f.model, f.type))
            st.markdown(f"**{views.FLAG_ICONS[f.type]} {views.FLAG_LABELS[f.type]}** — {md(f.reason)}"
                        + (f" *(raised on {since:%d %b %Y})*" if since else ""))
            st.markdown(f":material/arrow_forward: **What to do next:** {md(f.action)}")
            line = views.evidence_line(f.evidence, f.p_value, m.currency)
            if line:
                st.caption("The numbers: " + line)
