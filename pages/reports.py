"""Reports: pick a month, preview the monthly value report, download it as PDF, HTML, CSV or XLSX."""

from __future__ import annotations

import streamlit as st

from valuetrack.errors import ValuetrackError
from valuetrack.ui import components as ui, state, views
from valuetrack.ui.safe import md

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
version = snap.content.get("final_version")
d.metric("Status", snap.status + (f", version {version}" if version else ""))
d.caption(f"snapshot {snap.id} · as of {snap.as_of}" + (f" · replaces {snap.supersedes}" if snap.supersedes else ""))

for kind, text in st.session_state.pop("restate-done", []):
    (st.success if kind == "success" else st.error)(text)
restated = snap.content.get("restatement") or {}
if restated.get("kind") == "restatement":
    with st.expander(f"Version {restated['version']}: restated by {md(restated['by'])} on "
                     f"{str(restated['at'])[:16].replace('T', ' ')} UTC", expanded=False):
        st.markdown(f"**Reason:** {md(restated['reason'])}")
        st.html(views.table_html(["Model", "Change", "Net before", "Net after", "Difference", "Note"],
                                 views.restatement_rows(restated, cur), numeric=[2, 3, 4], testid="restatement"))

pending = state.report_pending(month)


def apply_restatement() -> None:
    reason = st.session_state.get("restate-reason", "")
    try:
        done = state.restate(month, reason)
    except ValuetrackError as exc:  # no reason, not an editor, nothing pending, a newer valuation meanwhile
        st.session_state["restate-done"] = [("error", md(exc.message))]
        return
    st.session_state["restate-reason"] = ""
    st.session_state["restate-done"] = [("success", f"Restated {views.month_label(month)}: version {done.version} "
                                                    f"(snapshot {done.snapshot.id}), net value "
                                                    f"{md(views.money(done.net_after, cur, cents=True))} "
                                                    f"({md(views.money(done.delta, cur, signed=True, cents=True))}).")]


if pending:
    with st.container(border=True, key="pending-restatement"):
        st.markdown(f"#### :material/pending_actions: Pending restatement of {views.month_label(month)}")
        st.caption(f"This month is final: the figures above and in every download are version {version or 1}'s. "
                   f"The valuation as of {pending['as_of']} values it at "
                   f"{md(views.money(pending['net_after'], cur, cents=True))} "
                   f"({md(views.money(pending['delta'], cur, signed=True, cents=True))}). Nothing changes until an editor "
                   f"applies it with a reason, which issues version {(version or 1) + 1} (who, when, why and these "
                   f"differences are kept). Same as `valuetrack restate --month {month} --reason TEXT`.")
        st.html(views.table_html(["Model", "Change", "Net before", "Net after", "Difference", "Note"],
                                 views.restatement_rows(pending, cur), numeric=[2, 3, 4], testid="pending-restatement"))
        if ctx.actor.can_edit:
            st.text_area("Reason (required)", key="restate-reason", max_chars=2000,
                         placeholder="e.g. fraud-screen was registered late: its November cost was missing")
            st.button(f"Apply restatement (issue version {(version or 1) + 1})", key="apply-restatement",
                      on_click=apply_restatement, type="primary", icon=":material/published_with_changes:")
        else:
            st.caption(":material/lock: Only an editor can apply a restatement.")

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
