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

# the tiles in the cards' order: the worst kind of flag first (valuetrack.value.flags.ordered)
counts = {t: sum(1 for f in pv.flags if f.type == t) for t in views.FLAG_KINDS_WORST_FIRST}
cols = st.columns(len(counts))
for col, (t, n) in zip(cols, counts.items()):
    col.metric(f"{views.FLAG_ICONS[t]} {views.FLAG_LABELS[t]}", n)

kinds = st.multiselect("Show", list(views.FLAG_KINDS_WORST_FIRST), format_func=views.FLAG_LABELS.get, key="kinds",
                       placeholder="All kinds of flag")
st.caption("The worst first: by the severity of the flag, then by the money at stake (the model's expected loss to "
           "date, or its cost to date when it has no estimate).")
values = {m.model: m for m in pv.models}
for f in pv.flags:  # one card per flag, in the one order of every list of flags (valuetrack.value.flags.ordered)
    if kinds and f.type not in kinds:
        continue
    m = values[f.model]
    with st.container(border=True, key=f"flag-{f.model}-{f.type}"):
        head, link = st.columns([4, 1])
        head.markdown(f"### {views.FLAG_ICONS[f.type]} {views.FLAG_LABELS[f.type]} · {md(m.display_name)}")
        head.caption(f"{md(f.model)} · {md(m.team)} · owner {md(m.owner)} · **{money(f.at_stake, m.currency)} at stake** · "
                     f"net value to date (running costs) {money(m.net, m.currency)} (95% interval {views.interval(m.ci_net, m.currency)})")
        link.page_link("pages/model.py", label="Open model", query_params={"model": f.model}, icon=":material/query_stats:")
        since = pv.raised_on.get((f.model, f.type))
        st.markdown(md(f.reason) + (f" *(raised on {since:%d %b %Y})*" if since else ""))
        st.markdown(f":material/arrow_forward: **What to do next:** {md(f.action)}")
        line = views.evidence_line(f.evidence, f.p_value, m.currency)
        if line:
            st.caption("The numbers: " + md(line))
