"""Model detail: what one model earned, how sure we are, whether its data is healthy, and its history."""

from __future__ import annotations

import streamlit as st

import datetime as dt

from valuetrack import actions as edits, costviews, notes_text, svgcharts
from valuetrack.errors import ValuetrackError
from valuetrack.formatting import label, money, money_compact, plain
from valuetrack.ui import charts, components as ui, state, views
from valuetrack.ui.safe import md, one_line

ui.through_app()

SECTIONS = {"value": "Value", "health": "Health & risk", "method": "Method & diagnostics", "costs": "Costs",
            "notes": "Notes, exclusions & overrides", "registry": "Registry & audit log"}

ctx = state.context()
registered = state.registered()
if not registered:
    st.title("Model detail")
    ui.empty_registry()
    st.stop()

names = [m.name for m in registered]
labels = {m.name: m.spec.display_name for m in registered}
wanted = st.query_params.get("model") or st.session_state.get("model") or names[0]
if wanted not in names:
    st.warning(f"No model named {md(repr(wanted))} is registered; showing {md(labels[names[0]])} instead.")
    wanted = names[0]
if st.session_state.get("model") != wanted:
    st.session_state["model"] = wanted
name = st.selectbox("Model", names, format_func=lambda n: one_line(f"{labels[n]} ({n})"), key="model",
                    on_change=lambda: st.query_params.update(model=st.session_state["model"]))
st.query_params["model"] = name

pv = ui.valued(state.portfolio(None), registered)
m = next((x for x in pv.models if x.model == name), None)
view = state.model_view(name)
if m is None or view is None:
    st.title(md(labels[name]))
    st.info(f"{md(labels[name])} was registered after the newest valuation (as of {pv.as_of:%d %b %Y}): its figures "
            "appear once it is valued (a refresh, or `valuetrack revalue`).", icon=":material/hourglass_empty:")
    ui.refresh_button([name], key="refresh-new")
    st.stop()
flags = views.flags_by_model(pv.flags).get(name, [])
if m.state != "ok":  # it could not be valued: why, and its last good figures
    st.title(md(m.display_name))
    st.caption(f"{md(name)} · {md(m.team)} · owner {md(m.owner)} · {m.status} · method **{m.method}**")
    st.error(":material/error: This model could not be valued this time; the other models were.")
    item = next(i for i in views.failures(pv) if i["model"] == name)
    st.text(f"{item['why']}\n{item['last']}")
    if m.last_valued is not None:
        c = st.columns(3)
        c[0].metric(f"Net value (last valued {m.last_valued:%d %b %Y})", money(m.net, cur := m.currency))
        c[0].caption(f"95% interval {views.interval(m.ci_net, cur)}")
        c[1].metric("Gross value", money(m.gross, cur))
        c[2].metric("P(net value > 0)", views.pct(m.prob_positive))
    ui.refresh_button([name], key="refresh-failed")
    st.stop()
spec, cur = view["spec"], m.currency
own = spec.currency or cur  # the model's own amounts (manifest, design, decisions) are in this currency
marks, windows = views.chart_marks(spec, view["chart_notes"])  # annotations and excluded windows, on every chart

st.title(md(m.display_name))
st.caption(f"{md(name)} · {md(m.team)} · owner {md(m.owner)} · {m.status} · KPI **{md(m.kpi)}** · method **{m.method}** · "
           f"revision {view['revision']} · as of {m.as_of:%d %b %Y}")

level, sentence = views.verdict(m, flags)
{"good": st.success, "bad": st.error, "neutral": st.info}[level](sentence)
has_data = len(view["timeline"]) > 0
if view["refresh"]["stale"] and has_data:  # (no data at all: the Value section offers the one Refresh button)
    st.warning(f"Figures may be stale: {md(view['refresh']['reason'])}.")
    ui.refresh_button([name], key="refresh-stale")
if m.provisional:
    st.caption(":orange[:material/schedule:] Provisional: some cohorts in these figures have not matured yet "
               f"(outcomes count {spec.attribution.window_days} days + {spec.attribution.outcome_lag_days} days' lag).")

# tiles are narrow: compact figures, the full one in the help; a flagged model's tiles are faded and
# hatched, each tile's help giving the flags' reasons (D42)
why = "\n\n".join(f"**{views.FLAG_LABELS.get(f.type, f.type)}**: {md(f.reason)}" for f in flags)
flagged = (lambda h: f"{h}\n\n{why}" if h else why) if flags else (lambda h: h)
with ui.flagged_tiles(flags, "model"):
    c = st.columns(5)
    c[0].metric("Net value to date", money_compact(m.net, cur), help=flagged(
        f"{money(m.net, cur)}. {costviews.NET_RUNNING}: {costviews.RUNNING_HELP}"))
    c[0].caption(f"{costviews.RUNNING} · 95% interval {views.interval(m.ci_net, cur, compact=True)}"
                 + (f" · adjusted for overrides: **{money_compact(m.net_adjusted, cur)}**" if m.overrides else ""))
    c[1].metric(costviews.ROI_RUNNING, views.pct(m.roi), help=flagged(f"{costviews.NET_RUNNING} ÷ running costs"))
    c[1].caption(f"95% interval {views.pct(m.ci_roi[0])} to {views.pct(m.ci_roi[1])}" if m.ci_roi else "no interval")
    c[2].metric("P(net value > 0)", views.pct(m.prob_positive), help=flagged(None))
    c[2].caption("flat prior on the effect")
    c[3].metric("Gross value", money_compact(m.gross, cur), help=flagged(money(m.gross, cur)))
    billing = views.billing_lines(m, spec.cost_source)  # with [cost_source]: billed / estimated, labelled
    c[3].caption(md(billing[0]) if billing else f"running costs {money(m.cost, cur)}")
    one_off_total = views.one_off_total(spec)
    c[4].metric("Payback", f"{m.payback_date:%b %Y}" if m.payback_date else ("—" if not one_off_total else "not yet"),
                help=flagged("The month-end at which the cumulative net value (running costs) covers the one-off "
                             "costs incurred by then."))
    c[4].caption(f"one-off costs {money(one_off_total, own)}"
                 + (f" ({money(m.native['one_off_costs_reporting'], cur)})"
                    if m.native and "one_off_costs_reporting" in m.native else ""))
    one_off_chart = (m.native or {}).get("one_off_costs_reporting", one_off_total)  # the chart is in the reporting currency
    if one_off_total or m.amortisation:  # the fully loaded view: one-off costs amortised
        c = st.columns(5)
        c[0].metric(costviews.NET_LOADED, money_compact(m.net_fully_loaded, cur),
                    help=flagged(f"{money(m.net_fully_loaded, cur)}. {costviews.LOADED_HELP}"))
        c[0].caption(f"95% interval {views.interval(m.ci_net_fully_loaded, cur, compact=True)}")
        c[1].metric(costviews.ROI_LOADED, views.pct(m.roi_fully_loaded), help=flagged(
            f"{costviews.NET_LOADED} ÷ (running costs + amortised one-off costs)"))
        c[2].metric("One-off costs amortised", money_compact(m.amortisation, cur),
                    help=flagged(money(m.amortisation, cur)))
        c[2].caption(f"over {m.amortisation_months} months each")

decisions = m.decisions


def _note_action(do, done: str) -> None:  # noqa: ANN001 - a library action; the store decides the role
    try:
        do()
    except ValuetrackError as exc:
        ui.flash("error", md(exc.message))
    else:
        ui.flash("success", done)
    state.invalidate()


# the sections are tabs bound to the address (?section=Costs); only the open one is drawn, so a browser
# builds its charts and tables alone instead of every section's (D45)
tab_labels = {**SECTIONS, **({"decisions": "Decisions"} if decisions else {})}
tabs = dict(zip(tab_labels, st.tabs(list(tab_labels.values()), key="section", bind="query-params")))
section = next((k for k, t in tabs.items() if t.open), "value")

with tabs[section]:
    if section == "value":
        # drawn as SVG, not plotly: the section a model page opens on shows without loading plotly's
        # bundle in the browser (D51); the same frames, the values on hover
        timeline = view["timeline"]
        svg_marks = svgcharts.page_marks(marks, windows)
        if view["is_ts"] and len(timeline):
            st.markdown("##### Actual KPI against the counterfactual")
            ui.svg_chart(svgcharts.page_timeline(timeline, kind="ts", title=m.kpi,
                                                 marks=svgcharts.page_marks(marks, windows, interventions=spec.interventions)))
        elif len(timeline):
            st.markdown("##### Uplift per unit over time")
            st.caption("Model arm minus holdout, per unit, over all cohorts up to each day. The light band is always "
                       "valid (safe to watch daily); the darker one is the fixed-horizon 95% interval."
                       + ("" if spec.kpi.higher_is_better else " Lower is better for this KPI, so below zero is a gain."))
            ui.svg_chart(svgcharts.page_timeline(timeline, kind="ab", title=f"{m.kpi} per unit" + ("" if spec.kpi.higher_is_better else " (lower is better)"),
                                                 marks=svg_marks))
        elif not view["timeline_kept"]:
            st.caption("The daily timeline of this valuation is not kept (the ledger keeps it for the newest valuation "
                       "and month-ends only).")
        else:
            ui.needs_refresh([name], key="refresh-model")
        if len(view["cumulative"].dropna(subset=["net"])):
            a, b = st.columns(2)
            with a:
                st.markdown("##### Cumulative net value")
                ui.svg_chart(svgcharts.page_cumulative(view["cumulative"], cur, payback=m.payback_date,
                                                       one_off=one_off_chart, marks=svg_marks))
            with b:
                st.markdown("##### Net value by month")
                if view["months"]:
                    ui.svg_chart(svgcharts.page_monthly(view["months"], cur, marks=svg_marks))
        st.markdown("##### Figures to date")
        left, _ = st.columns([1, 1])
        left.html(views.table_html(["Figure", cur], views.figures_rows(m), numeric=[1], testid="figures"))
        if m.native:
            st.markdown(f"##### In the model's currency ({own})")
            st.html(views.table_html(["Figure", own, cur], views.native_rows(m), numeric=[1, 2], testid="native"))
            st.caption(views.rates_caption(m))
        if m.guardrails:
            st.markdown("##### Guardrails")
            st.caption("Secondary KPIs the model must not harm beyond a tolerance, compared between the same arms. "
                       "Breached: the harm is confidently above the tolerance (always valid, FDR-controlled across the "
                       "portfolio). A guardrail's money enters net value unless its events are already inside the KPI.")
            st.html(views.table_html(views.GUARDRAIL_HEAD, views.guardrail_rows(m.guardrails, flags, name, cur),
                                     testid="guardrails"))
        if m.exclusions:
            st.markdown("##### Excluded windows: the estimate with and without them")
            st.caption(md(notes_text.exclusion_sentence(m.exclusions)) + " Statistics and flags use the estimate with "
                       "the exclusions.")
            st.html(views.table_html(["Estimate to date", "With the exclusions (as valued)", "Without them"],
                                     notes_text.exclusion_rows(m.exclusions, cur), numeric=[1, 2], testid="exclusions"))

    if section == "health":
        health = getattr(m, "health", None)
        risk = getattr(m, "risk", None)
        h, r = st.columns(2)
        with h:
            st.markdown("##### Health")
            if health:
                st.markdown(f"Overall: **{views.HEALTH_ICONS.get(health.get('status'), health.get('status'))}**")
                for check in health.get("checks", []):
                    icon = views.HEALTH_ICONS.get(check.get("status"), "").split(" ")[0] + "]"
                    st.markdown(f"{icon} **{views.check_label(check.get('name', ''))}** — {md(check.get('message', ''))}")
            else:
                st.markdown(f"- Last exposure: {m.days_since_exposure} days before the as-of date"
                            if m.days_since_exposure is not None else "- No exposures stored yet")
                st.markdown(f"- SRM p-value, mature cohorts: {m.srm_p_value:.3g} (alarm below 0.001)" if m.srm_p_value is not None
                            else "- SRM: not applicable")
            if len(view["daily"]):
                st.plotly_chart(charts.volume(view["daily"], annotations=marks, windows=windows), width="stretch", key="volume")
            else:
                st.caption("No exposures are logged for this model: a time-series model is measured on its daily KPI "
                           "series (the Value section), so there is no per-day exposure chart.")
        with r:
            st.markdown("##### Risk")
            if risk:
                st.markdown(f"Level: **{views.RISK_ICONS.get(risk.get('level'), risk.get('level'))}**")
                st.markdown(f"- Expected loss: {money(risk.get('expected_loss'), cur)}\n"
                            f"- P(net value < 0): {views.pct(risk.get('prob_negative'))}\n"
                            f"- Share of the portfolio's gross value: {views.pct(risk.get('concentration'))}")
                for reason in risk.get("reasons") or []:
                    st.markdown(f"- {md(reason)}")
            else:
                st.markdown(f"- Expected loss: {money(m.expected_loss, cur)}\n- P(net value < 0): "
                            f"{views.pct(1 - m.prob_positive) if m.prob_positive is not None else '—'}")
            holdout = getattr(m, "holdout", None)
            if holdout:
                st.markdown("##### Holdout")
                st.markdown(f"- Holdout share: {views.pct(holdout.get('control_share'), 1)}\n"
                            f"- Value forgone in the holdout: {money(holdout.get('forgone_value'), cur)}\n"
                            f"- Break-even detectable now: {'yes' if holdout.get('detectable_now') else 'no'}"
                            + (f"\n- Days to a decision at current traffic: {holdout['days_to_decision']:.0f}"
                               if holdout.get("days_to_decision") else ""))

    if section == "method":
        st.markdown(f"**Verdict of the method:** {':green[:material/verified: trusted]' if view['effect']['trusted'] else ':orange[:material/warning: not trusted]'}"
                    + (f" — {md(view['effect']['reason'])}" if view["effect"]["reason"] else ""))
        details = view["details"]
        for key in ("verdict", "note"):
            if details.get(key):
                st.markdown(f"*{md(details[key])}*")
        rows = views.diagnostics_rows(details)
        if rows:
            st.html(views.table_html(["Diagnostic", "Value"], rows, testid="diagnostics"))
        if view["segments"]:
            st.markdown(f"##### By segment ({md(spec.attribution.exposures.segment)})")
            st.caption("Each segment's mature cohorts compared between the model and the holdout as the whole model's are; "
                       "the money is the model's as a whole.")
            st.html(views.table_html(["Segment", "Holdout units", "Model units", "Uplift per treated unit", "95% interval",
                                      "Relative", "p"], view["segments"], testid="segments"))
        design = views.design_rows(details, own)
        if design:
            st.markdown("##### Experiment design")
            st.html(views.table_html(["Design", "Result"], design, testid="design"))
        for w in details.get("warnings") or []:
            st.warning(md(w))
        if isinstance(details.get("diagnostics"), dict) and details["diagnostics"]:
            with st.expander("All diagnostics"):
                st.html(views.table_html(["Diagnostic", "Value"], [(label(k), plain(v)) for k, v in details["diagnostics"].items()]))
        if flags:
            st.markdown("##### Flags")
            for f in flags:
                st.error(f"**{views.FLAG_LABELS[f.type]}** — {md(f.reason)}\n\n**Next:** {md(f.action)}")
        if view["flag_history"]:
            st.markdown("##### Flag history")
            st.html(views.table_html(["As of", "Flag", "Look", "Raised on", "Cleared on", "One-sided p"],
                                     views.flag_history_rows(view["flag_history"]), testid="flag-history"))
        v = view["valuation"]
        st.caption(f"Valued as of {v['as_of']:%d %b %Y} at {v['valued_at']:%Y-%m-%d %H:%M} UTC · state {v['state']} · "
                   f"refresh {v['refresh_id']} · registry revision {m.registry_revision} · valuetrack "
                   f"{v['library_version']} · inputs {v['input_hash'][:12]}")

    if section == "costs":
        st.markdown(views.cost_lines(spec, own)
                    + (f"\n- Paid back in {m.payback_date:%B %Y}" if m.payback_date else ""))
        if own != cur:
            st.caption(views.rates_caption(m) + f" The chart and the months below are in {cur}.")
        st.caption(f"{costviews.RUNNING_HELP} {costviews.LOADED_HELP}")
        if billing:
            st.markdown("\n".join(f"- {md(line)}" for line in billing[1]))
        if view["months"]:
            st.markdown("##### Costs over time")
            # the registered steps are in the model's currency: drawn only when that is the chart's
            steps = views.cost_steps(spec, view["months"] if own == cur else [])
            st.plotly_chart(charts.cost_history(view["months"], steps, cur, annotations=marks, windows=windows),
                            width="stretch", key="cost-history")
            rows = views.month_table_rows(view["months"], cur, logs_predictions=len(view["daily"]) > 0)
            st.caption(f"Amounts in {cur}. Net: {costviews.NET_RUNNING.lower()} and {costviews.NET_LOADED.lower()}.")
            st.html(views.table_html(["Month", "Predictions", "Running costs", "Amortised", "Gross value",
                                      f"Net, {costviews.RUNNING}", f"Net, {costviews.FULLY_LOADED}", "Figures"], rows,
                                     numeric=[1, 2, 3, 4, 5, 6], testid="months"))

    if section == "notes":
        notes = view["notes"]
        active = [n for n in notes if n["active"]]
        st.caption("Annotations are drawn on every chart of the model and listed in its report. Excluded windows are "
                   "left out of attribution (no value is claimed for their days; their cost still counts). Overrides "
                   "adjust only the reported figure: statistics and flags use the unadjusted one. Every change is "
                   "audited and values the portfolio again.")
        if m.overrides or m.override_amount:
            st.html(views.table_html(["To date", cur], notes_text.adjusted_rows(m.net, m.net_adjusted, m.override_amount, cur),
                                     numeric=[1], testid="adjusted"))
        if active:
            st.html(views.table_html(["Note", "Text or reason", "By", "When"], notes_text.note_rows(active, cur),
                                     testid="notes"))
        else:
            st.caption("No annotations, excluded windows or overrides.")
        withdrawn = [n for n in notes if not n["active"]]
        if withdrawn:
            with st.expander(f"Withdrawn ({len(withdrawn)})"):
                st.html(views.table_html(["Note", "Text or reason", "Withdrawn by", "When", "Why"], [
                    row[:1] + row[1:2] + [n["withdrawn_by"] or "", str(n["withdrawn_at"] or "")[:16].replace("T", " "),
                                          notes_text.clean(n["withdrawn_reason"])]
                    for row, n in zip(notes_text.note_rows(withdrawn, cur), withdrawn)], testid="withdrawn"))
        if ctx.actor.can_edit:  # the controls only; the store decides the role when the note is written
            kind = st.radio("Add", ["Annotation", "Excluded window", "Override"], horizontal=True, key="note-kind")
            with st.form("note-form", clear_on_submit=True):
                if kind == "Annotation":
                    on = st.date_input("Day", value=m.as_of - dt.timedelta(days=1), key="note-on")
                    category = st.selectbox("Kind", ["release", "incident", "campaign", "other"], key="note-category")
                    text = st.text_input("What happened", key="note-text", max_chars=1000)
                    if st.form_submit_button("Add annotation"):
                        _note_action(lambda: edits.add_note(ctx, name, "annotation", text=text, category=category, start=on),
                                     "Annotation added.")
                        st.rerun()
                elif kind == "Excluded window":
                    start = st.date_input("First day left out", value=m.as_of - dt.timedelta(days=1), key="note-from")
                    end = st.date_input("Last day left out", value=m.as_of - dt.timedelta(days=1), key="note-to")
                    text = st.text_input("Why (an outage, a tracking bug…)", key="note-reason-x", max_chars=1000)
                    if st.form_submit_button("Exclude these days"):
                        _note_action(lambda: edits.add_note(ctx, name, "exclusion", text=text, start=start, end=end),
                                     "Days excluded; the model was valued again.")
                        st.rerun()
                else:
                    form = st.selectbox("Form", ["a share of the gross value counted", "a fixed amount on a day"],
                                        key="note-form-kind")
                    share = st.number_input("Share counted (0 to 1) or amount (money)", value=1.0, key="note-amount")
                    on = st.date_input("Day (amount) or first day (share)", value=None, key="note-start")
                    until = st.date_input("Last day (share; empty: open)", value=None, key="note-end")
                    text = st.text_input("Reason (what was agreed, with whom)", key="note-reason-o", max_chars=1000)
                    if st.form_submit_button("Add override"):
                        category = "share" if form.startswith("a share") else "amount"
                        _note_action(lambda: edits.add_note(ctx, name, "override", text=text, category=category, amount=share,
                                                            start=on, end=until if category == "share" else None),
                                     "Override added; the model was valued again.")
                        st.rerun()
            if active:
                with st.form("withdraw-form", clear_on_submit=True):
                    pick = st.selectbox("Withdraw", [n["id"] for n in active], key="withdraw-id",
                                        format_func=lambda i: one_line(next(r[0] for r, n in zip(notes_text.note_rows(active, cur), active)
                                                                            if n["id"] == i)))
                    why = st.text_input("Why it is withdrawn", key="withdraw-reason", max_chars=1000)
                    if st.form_submit_button("Withdraw"):
                        _note_action(lambda: edits.withdraw_note(ctx, pick, reason=why), "Withdrawn; the model was valued again.")
                        st.rerun()

    if section == "registry":  # one above the other: side by side, either would be cut at 1,024 px
        st.markdown("##### Registry entry")
        st.caption(f"created {view['created'][0]:%Y-%m-%d} by {md(view['created'][1])} · "
                   f"updated {view['updated'][0]:%Y-%m-%d %H:%M} by {md(view['updated'][1])}")
        st.code(view["manifest"], language="toml", wrap_lines=True)
        st.download_button("Download manifest (TOML)", view["manifest"], file_name=f"{name}.toml", mime="application/toml",
                           key="dl-manifest")
        if ctx.actor.can_edit:
            st.page_link("pages/register.py", label="Edit or retire this model", query_params={"model": name}, icon=":material/edit:")
        st.markdown("##### Audit log")
        audit = view["audit"]
        if audit:
            st.html(views.table_html(["When", "Who", "Action", "Revision", "Changed"], [
                [str(e["at"]).replace("T", " ")[:16], e["actor"], e["action"],
                 f"{e['from_revision'] or '–'} → {e['to_revision']}" if e["to_revision"] else "notes",
                 # the manifest's own field names, as a user types them (table_html escapes them)
                 ", ".join(str(k) for k in e["changes"]) + (f": {notes_text.clean(e['note'])}" if e.get("note") else "")
                 or "—"]
                for e in audit], testid="audit"))
        else:
            st.caption("No changes recorded.")

    if section == "decisions":
        st.caption("What the classifier's decisions were worth, from what each outcome is worth (TP "
                   f"{money(spec.decisions.value_tp, own)}, FP {money(spec.decisions.value_fp, own)}, FN "
                   f"{money(spec.decisions.value_fn, own)}, TN {money(spec.decisions.value_tn, own)}). Shown beside the "
                   f"causal estimate (gross value {money((m.native or {}).get('gross', m.gross), own)}), never added to it. Cases whose label has not "
                   "arrived are **estimated** from their scores (docs/methods-decisions.md).")
        if decisions["flagged"]:
            st.warning(md(decisions["reason"]))
        cols = st.columns(4)
        for col, t in zip(cols, views.decision_tiles(decisions, own)):
            ui.tile(col, t)
        if decisions["thresholds"]:
            st.markdown("##### At other thresholds")
            best = decisions["best_threshold"]
            st.caption(f"Worth most at {best:.2f}: {money(decisions['best_value'], own)}"
                       + (f", against {money(decisions['total'], own)} at {decisions['threshold']:.2f}"
                          if decisions["threshold"] is not None else "") + ".")
            st.plotly_chart(charts.threshold_curve(decisions["thresholds"], own, current=decisions["threshold"],
                                                   best=best), width="stretch", key="thresholds")
        if decisions["checks"]:
            st.markdown("##### The estimate against realised value, as labels arrive")
            st.html(views.table_html(views.DECISION_CHECK_COLUMNS, views.decision_check_rows(decisions, own),
                                     testid="decision-checks"))
