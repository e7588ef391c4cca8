"""The experiment design's figures in words, for the model page and the monthly report (one text,
two surfaces): ramp periods, the challenger's comparisons and recommendation, and the holdout vs
time-series check (valuetrack/attribution/methods/designs.py computes them)."""

from __future__ import annotations

from typing import Any, Mapping

from valuetrack.formatting import money, number, p_value, pct, plain


def design_rows(details: Mapping[str, Any], currency: str) -> list[tuple[str, str]]:
    """The experiment design's figures for people: ramp periods, the challenger's duel and the
    holdout-vs-time-series check (attribution/methods/designs.py); empty for a plain design."""
    rows: list[tuple[str, str]] = []
    ramp = details.get("ramp")
    if ramp:
        for p in ramp["periods"]:
            rows.append((f"Allocation from {p['from']}",
                         f"{pct(p['treatment_share'])} planned; {number(p['n_treatment'])} served, "
                         f"{number(p['n_control'])} held out; weight {pct(p['weight'], 1)}"))
        rows.append(("Effect pooled over periods (not used)", number(ramp["pooled_effect_abs"], 4)))
    ch = details.get("challenger")
    if ch:
        rec = ch["recommendation"]
        when = (f" (about {ch['days_to_decision']} more days at current traffic)" if ch.get("days_to_decision") is not None
                else " (no decision in sight at current traffic)" if rec == "not enough evidence yet" else "")
        rows.append((f"Challenger {ch['label']}", f"{rec}{when}"))
        for name, c in (ch.get("comparisons") or {}).items():
            lo, hi = c["cs"]
            rows.append((f"Net value per unit, {name}",
                         f"{money(c['net_per_unit'], currency, cents=True)} (always-valid interval "
                         f"{money(lo, currency, cents=True)} to {money(hi, currency, cents=True)})"
                         + ("; significant" if c["significant"] else "")))
    tri = details.get("triangulation")
    if tri:
        if tri.get("status") == "compared":
            verdict = "disagree" if tri["disagree"] else "agree"
            rows.append((f"Holdout vs time series, first {tri['look']} days",
                         f"{verdict}: holdout {number(tri['ab_total'])}, time series {number(tri['ts_total'])} "
                         f"(difference {number(tri['difference'])} ± {number(1.96 * tri['se'])}, p = {p_value(tri['p_value'])}); "
                         f"holdout {'trusted' if tri['ab_trusted'] else 'not trusted'}, time series "
                         f"{'trusted' if tri['ts_trusted'] else 'not trusted'}"))
        else:
            rows.append(("Holdout vs time series", plain(tri.get("status"))))
    return rows
