"""Exporters: a stored :class:`~valuetrack.reports.snapshot.Snapshot` → PDF, HTML, CSV or XLSX bytes.

Everything here reads only the snapshot's content, so a report re-exported months later shows the
numbers it was issued with. The HTML is self-contained (inline CSS, charts as ``data:`` URIs);
the PDF is that HTML rendered by WeasyPrint with a URL fetcher that refuses anything but
``data:`` URIs, so rendering never touches the network.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from valuetrack.attribution import methods
from valuetrack.design_text import design_rows
from valuetrack.guardrail_text import HEAD as GUARDRAIL_HEAD, guardrail_rows
from valuetrack.value.flags import RULES, ordered
from valuetrack.errors import MissingDependency, ParameterError
from valuetrack.formatting import money, p_value, pct, symbol
from valuetrack.costviews import LOADED_HELP, NET_LOADED, NET_RUNNING, ROI_LOADED, ROI_RUNNING, RUNNING_HELP
from valuetrack.safetext import csv_cell, text_not_formulas

if TYPE_CHECKING:  # a snapshot renders itself (Snapshot.export): render never imports it at run time
    from valuetrack.reports.snapshot import Snapshot

FORMATS = ("pdf", "html", "csv", "xlsx")

TEMPLATES = Path(__file__).resolve().parent / "templates"
FLAG_LABELS = {r.type: r.short for r in RULES}  # the one table of flag rules
MAX_SUMMARY_FLAGS = 6


# ------------------------------------------------------------------------------------------------
# formatting (full precision: the report shows money to the cent, as `valuetrack value --json` has it)


def money_exact(value: float | None, currency: str = "USD") -> str:
    """1234567.891 → '$1,234,567.89'; negative → '-$1,234.50'; None → '—' (always to the cent)."""
    return money(value, currency, cents=True)


def _signed(value: float | None, currency: str) -> str:
    if value is None:
        return "—"
    text = money_exact(value, currency)
    return text if text.startswith("-") or text == money_exact(0.0, currency) else "+" + text


def _pct(value: float | None, digits: int = 1) -> str:
    return pct(value, digits)


def _interval(ci: list[float] | None, currency: str) -> str:
    return "—" if not ci else f"{money_exact(ci[0], currency)} to {money_exact(ci[1], currency)}"


def _tone(net: float | None, ci: list[float] | None) -> str:
    if net is None:
        return "neutral"
    if ci and ci[0] > 0:
        return "good"
    if ci and ci[1] < 0:
        return "bad"
    return "neutral"


def _month_name(month: str) -> str:
    return dt.datetime.strptime(month, "%Y-%m").strftime("%B %Y")


# ------------------------------------------------------------------------------------------------
# the view model the template and the tables share


def view(snapshot: Snapshot, *, charts: bool = True, pending: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the template shows, formatted. ``charts=False`` skips drawing (CSV/XLSX);
    ``pending``: the month's pending restatement (shown beside the final figures, not applied)."""
    from valuetrack import svgcharts as ch

    c = snapshot.content
    cur = c["currency"]
    month = c["month"]
    level = round(100 * (1 - c["alpha"]))
    names = {m["model"]: m["display_name"] for m in c["models"]}
    totals = dict(c["totals"])
    totals.update(net_loaded_text=money_exact(totals.get("net_fully_loaded"), cur),
                  cost_loaded_text=money_exact(totals.get("cost_fully_loaded"), cur))
    totals.update(net_text=money_exact(totals["net"], cur), gross_text=money_exact(totals["gross"], cur),
                  cost_text=money_exact(totals["cost"], cur), ci_text=_interval(totals.get("ci_net"), cur),
                  prob_text=pct(totals.get("prob_positive")),  # as the pages show it: 97%
                  tone=_tone(totals["net"], totals.get("ci_net")))
    # overrides agreed with finance: the adjusted total beside the unadjusted one (D37)
    has_overrides = bool(totals.get("override_amount")) or any(m.get("overrides") for m in c["models"])
    totals.update(has_overrides=has_overrides, override_text=money_exact(totals.get("override_amount") or 0.0, cur),
                  adjusted_text=money_exact(totals.get("net_adjusted", totals["net"]), cur))
    ci_t = totals.get("ci_net")
    totals["verdict"] = ("The models together created value net of their cost." if ci_t and ci_t[0] > 0 else
                         "The models together lost money net of their cost." if ci_t and ci_t[1] < 0 else
                         "Not clearly above or below zero: the interval includes zero." if ci_t else
                         "No value estimate: only costs are counted.")
    flags_by_model: dict[str, list[dict[str, Any]]] = {}
    flag_rows = []
    for f in ordered(c["flags"]):  # the worst first: severity, then money at stake (D42)
        row = {**f, "label": FLAG_LABELS.get(f["type"], f["type"]), "display_name": names.get(f["model"], f["model"]),
               "at_stake_text": money_exact(f.get("at_stake"), cur)}
        flags_by_model.setdefault(f["model"], []).append(row)
        flag_rows.append(row)

    models = []
    for m in c["models"]:
        mm = dict(m)
        own = m.get("model_currency") or cur  # the manifest's amounts, design and decisions
        mm.update(native_text=_native_text(m, cur))
        mm.update(
            net_text=money_exact(m["net"], cur), gross_text=money_exact(m["gross"], cur),
            cost_text=money_exact(m["cost"], cur), ci_text=_interval(m["ci_net"], cur),
            roi_text=_pct(m["roi"]), roi_ci_text=(f"{_pct(m['ci_roi'][0])} to {_pct(m['ci_roi'][1])}" if m.get("ci_roi") else ""),
            prob_text=pct(m["prob_positive"]),
            expected_loss_text=money_exact(m.get("expected_loss"), cur),
            monthly_cost_text=money_exact(m.get("monthly_cost"), own),
            per_1k_text=money_exact(m.get("cost_per_1k_predictions"), own),
            billing_rows=_billing_rows(m.get("cost_billing"), cur),
            one_off_text=_one_off_text(m, own),
            amortisation_text=money_exact(m.get("amortisation"), cur),
            net_loaded_text=money_exact(m.get("net_fully_loaded"), cur),
            ci_loaded_text=_interval(m.get("ci_net_fully_loaded"), cur),
            roi_loaded_text=_pct(m.get("roi_fully_loaded")),
            amortisation_months=m.get("amortisation_months") or 36,
            history_rows=[{"field": {"monthly_cost": "Monthly running cost", "cost_per_1k_predictions": "Per 1,000 predictions",
                                     "value_per_unit": "Value per KPI unit"}[h["field"]], "from": h["from"],
                           "amount": money_exact(h["amount"], own)} for h in m.get("amount_history") or []],
            predictions_text=f"{m.get('predictions') or 0:,.0f}",
            units_text=f"{m.get('treated_units') or 0:,.0f}",
            payback_text=_payback(m, cur),
            to_date_text=_to_date_text(m.get("to_date"), cur),
            tone=_tone(m["net"], m["ci_net"]),
            flags=flags_by_model.get(m["model"], []),
            flag_title="; ".join(f"{f['label']}: {f['reason']}" for f in flags_by_model.get(m["model"], [])),
            method_text=methods.label(m["method"]),
            vpu_text=money_exact(m.get("value_per_unit"), own),
            effect_text=_effect(m),
            effect_rel_text=_pct(m.get("effect_rel"), 2),
            p_text=p_value(m.get("p_value")),
            srm_text=_srm(m),
        )
        if m["net"] is None and m["gross"] is None and m.get("state", "ok") == "ok":  # its cost counts in the total
            mm["net_text"] = f"no estimate · cost {money_exact(m['cost'], cur)}"
        mm.update(_health(m.get("health")))
        mm.update(_risk(m.get("risk"), cur))
        mm["dec"] = _decisions(m.get("decisions"), own)
        mm["design_rows"] = design_rows(m.get("design") or {}, own)
        mm["guardrail_head"] = GUARDRAIL_HEAD
        mm["guardrail_rows"] = guardrail_rows(m.get("guardrails"), m.get("flags") or [], m["model"], cur)
        mm.update(_notes_view(m, cur, level))
        if charts and m["active_in_month"]:
            mm["monthly_chart"] = ch.monthly_chart(m, month, cur)
            mm["uplift_chart"] = ch.uplift_chart(m, cur)
        models.append(mm)
    by_name = {m["model"]: m for m in models}

    ch_ = c["changes"]
    changes = {"previous_month_name": _month_name(ch_["previous_month"])}
    if ch_.get("net_previous") is None:
        changes["sentence"] = f"No model was live in {_month_name(ch_['previous_month'])}; there is nothing to compare with."
    else:
        changes["sentence"] = (f"Total net value {money_exact(ch_['net_previous'], cur)} in "
                               f"{_month_name(ch_['previous_month'])} → {money_exact(ch_['net'], cur)} now "
                               f"({_signed(ch_['delta'], cur)}).")
    movers = []
    for r in ch_["models"][:4]:
        name = names.get(r["model"], r["model"])
        if r["change"] == "new":
            movers.append({"text": f"{name}: new this month, {money_exact(r['net'], cur)}."})
        elif r["change"] == "stopped":
            movers.append({"text": f"{name}: not live this month (was {money_exact(r['net_previous'], cur)})."})
        elif abs(r["delta"]) >= 0.005:
            movers.append({"text": f"{name}: {money_exact(r['net_previous'], cur)} → {money_exact(r['net'], cur)} "
                                   f"({_signed(r['delta'], cur)})."})
    changes["movers"] = movers
    parts = []
    if ch_.get("new_flags"):
        parts.append("Newly flagged: " + ", ".join(f"{names.get(f['model'], f['model'])} ({FLAG_LABELS.get(f['type'], f['type'])})"
                                                  for f in ch_["new_flags"]) + ".")
    if ch_.get("cleared_flags"):
        parts.append("No longer flagged: " + ", ".join(f"{names.get(f['model'], f['model'])} ({FLAG_LABELS.get(f['type'], f['type'])})"
                                                       for f in ch_["cleared_flags"]) + ".")
    for nv in c.get("not_valued") or []:
        last = f"; last valued {nv['last_valued']}" if nv.get("last_valued") else ""
        parts.append(f"Not valued: {names.get(nv['model'], nv['display_name'])} ({nv['error']}{last}); "
                     "left out of the totals.")
    if ch_.get("new_flags") is None:
        parts.append(f"No report was issued for {_month_name(ch_['previous_month'])}, so flag changes are not shown; "
                     f"comparisons use {_month_name(ch_['previous_month'])}'s figures recomputed as of {c['as_of']}.")
    changes["flag_text"] = " ".join(parts)

    restated = _differences_view(c["restatement"], names, cur) if c.get("restatement") else None
    pending_view = _differences_view(pending, names, cur) if pending else None

    prov = dict(c["provenance"])
    window = prov.get("data_window") or [None, None]
    prov["window_text"] = f"{window[0]} to {window[1]}" if window[0] else "none"
    if prov.get("refreshed_at"):
        when = dt.datetime.fromisoformat(prov["refreshed_at"])
        prov["refreshed_at"] = when.strftime("%Y-%m-%d %H:%M") + (" UTC" if when.utcoffset() in (None, dt.timedelta(0)) else "")
    qc = prov.get("query_cost") or {}
    cost_bits = [f"{qc.get('queries', 0)} queries", f"{qc.get('elapsed_s', 0):.1f} s"]
    if qc.get("bytes_scanned"):
        cost_bits.append(f"{qc['bytes_scanned'] / 1e9:,.2f} GB scanned")
    prov["cost_text"] = ", ".join(cost_bits)

    live = [m for m in models if m["active_in_month"]]
    period_text = f"{c['period_start']} to {c['period_end']}"
    no_activity = [{"display_name": m["display_name"], "why": (m["notes"][0] if m["notes"] else "no activity").rstrip(".")}
                   for m in models if not m["active_in_month"]]
    if not c["models"]:
        empty_reason = "No models are registered yet (`valuetrack models register`)."
    elif not live:
        starts = sorted(m["live_from"] for m in c["models"] if m.get("live_from"))
        later = [s for s in starts if s > c["month_end"]]
        empty_reason = (f"None of the {len(c['models'])} registered models served customers in {_month_name(month)}"
                        + (f": the first went live on {later[0]}." if later and len(later) == len(starts)
                           else "; see the model list for when each was live.")
                        + " There is no value and no cost to report for this month.")
    else:
        empty_reason = ""
    created = snapshot.created_at.strftime("%Y-%m-%d %H:%M UTC") if snapshot.created_at else "not stored"
    status = c["status"]
    return {
        "title": c["title"], "month": month, "month_name": _month_name(month), "status": status,
        "provisional": status == "provisional", "provisional_reasons": c.get("provisional_reasons") or [],
        "as_of": c["as_of"], "currency": cur, "level": level, "prior": c.get("prior", "flat prior"),
        "views": {"net_running": NET_RUNNING, "roi_running": ROI_RUNNING, "net_loaded": NET_LOADED,
                  "roi_loaded": ROI_LOADED, "running_help": RUNNING_HELP, "loaded_help": LOADED_HELP},
        "period_text": period_text, "totals": totals, "models": models, "flag_rows": flag_rows,
        "flagged": sorted({f["model"] for f in c["flags"]}), "max_summary_flags": MAX_SUMMARY_FLAGS,
        "top": [by_name[n] for n in c["summary"]["top"]], "bottom": [by_name[n] for n in c["summary"]["bottom"]],
        "live_models": len(live), "registered_models": len(models), "no_activity": no_activity,
        "empty_reason": empty_reason, "changes": changes, "restatement": restated, "pending": pending_view,
        "final_version": c.get("final_version"), "provenance": prov,
        "snapshot_id": snapshot.id if snapshot.id is not None else "(not stored)", "created_at": created,
        "created_by": snapshot.created_by, "supersedes": snapshot.supersedes, "version": snapshot.version,
        "company": "",
        "footer": f"{c['title']} · {status.upper()} · snapshot {snapshot.id if snapshot.id is not None else '-'} · as of {c['as_of']}",
        "portfolio_chart": ch.portfolio_chart(models, cur) if charts else None,
        "var": _var(c.get("var"), cur),
        "reconciliation": _reconciliation(c["totals"], cur),
    }


CHANGE_WORDS = {"new": "new in this version", "removed": "no longer in the month", "changed": ""}


def _differences_view(d: dict[str, Any], names: dict[str, str], cur: str) -> dict[str, Any]:
    """A restatement (applied, or pending) or the provisional → final differences, formatted: one row
    per model whose figures changed, with its net value as counted in the total (minus its cost
    while it has no estimate, said so), and the portfolio-level rest (overlaps) when there is one."""
    rows = []
    for r in d["models"]:
        note = [CHANGE_WORDS.get(r.get("change", "changed"), "")]
        if r.get("estimated_after") is False and r.get("net_after") is not None:
            note.append("no estimate: its cost only")
        elif r.get("estimated_before") is False and r.get("net_before") is not None:
            note.append("had no estimate: its cost only")
        if abs((r.get("override_after") or 0.0) - (r.get("override_before") or 0.0)) >= 0.005:
            note.append(f"overrides agreed with finance {money_exact(r.get('override_before') or 0.0, cur)} → "
                        f"{money_exact(r.get('override_after') or 0.0, cur)}")
        rows.append({"model": r.get("display_name") or names.get(r["model"], r["model"]), "name": r["model"],
                     "before": money_exact(r["net_before"], cur), "after": money_exact(r["net_after"], cur),
                     "delta": _signed(r["delta"], cur), "cost_before": money_exact(r.get("cost_before"), cur),
                     "cost_after": money_exact(r.get("cost_after"), cur),
                     "ci_after": _interval(r.get("ci_net_after"), cur), "note": "; ".join(n for n in note if n)})
    other = d.get("portfolio_adjustment")
    if other is not None and abs(other) >= 0.005:
        rows.append({"model": "Overlap deduction and other portfolio-level changes", "name": "(portfolio)",
                     "before": "", "after": "", "delta": _signed(other, cur), "cost_before": "", "cost_after": "",
                     "ci_after": "", "note": ""})
    at = d.get("at")
    kinds = [r.get("change", "changed") for r in d["models"]]
    why = [f"{n} model{'s are' if n != 1 else ' is'} {word}" for n, word in (
        (kinds.count("new"), "new in this version"), (kinds.count("removed"), "no longer in it"),
        (kinds.count("changed"), "valued differently (late outcomes, newly mature cohorts, or edits to the "
                                 "registry or its notes since)")) if n]
    return {**d, "rows": rows, "why": ("; ".join(why) + ".") if why else "",
            "net_before_text": money_exact(d["net_before"], cur),
            "net_after_text": money_exact(d["net_after"], cur), "delta_text": _signed(d["delta"], cur),
            "ci_after_text": _interval(d.get("ci_net_after"), cur),
            "at_text": dt.datetime.fromisoformat(at).strftime("%Y-%m-%d %H:%M UTC") if isinstance(at, str) else at}


def _reconciliation(t: dict[str, Any], cur: str) -> dict[str, Any] | None:
    """From the rows to the total, as the valuation stored it (None in a snapshot made before)."""
    r = t.get("reconciliation")
    if r is None:
        return None
    without = len(r["models_without_estimate"])
    se = t.get("double_counted_se")
    steps = [("Sum of the rows (models with an estimate)", r["rows"]),
             ("Overlap counted once (value models sharing units and a KPI would count more than once)"
              + (f"; standard error {money_exact(se, cur)}" if se else ""), r["overlap"]),
             (f"Cost of {without} model{'s' if without != 1 else ''} without an estimate", r["no_estimate_cost"]),
             ("Total net value", r["total"])]
    return {"steps": [{"label": label, "text": money_exact(v, cur), "exact": repr(float(v))} for label, v in steps],
            "warnings": list(t.get("overlap_warnings") or [])}


def _notes_view(m: dict[str, Any], cur: str, level: int) -> dict[str, Any]:
    """Annotations, excluded windows (with vs without) and the month's overrides (D36, D37)."""
    from valuetrack import notes_text

    notes = m.get("model_notes") or []
    return {"annotation_rows": notes_text.note_rows([n for n in notes if n.get("kind") == "annotation"], cur),
            "exclusion_notes": notes_text.note_rows([n for n in notes if n.get("kind") == "exclusion"], cur),
            "exclusion_rows": notes_text.exclusion_rows(m.get("exclusions"), cur, level),
            "exclusion_sentence": notes_text.exclusion_sentence(m.get("exclusions")),
            "override_notes": notes_text.note_rows([n for n in notes if n.get("kind") == "override"], cur),
            "override_rows": notes_text.override_rows(m.get("overrides"), cur),
            "has_overrides": bool(m.get("overrides")) or any(n.get("kind") == "override" for n in notes),
            "net_adjusted_text": money_exact(m.get("net_adjusted"), cur),
            "override_text": money_exact(m.get("override_amount") or 0.0, cur)}


def _var(var: dict[str, Any] | None, cur: str) -> dict[str, Any]:
    """The value at risk block: one row per horizon, or why there is none."""
    if not var or "error" in var or not var.get("horizons"):
        return {"rows": [], "missing": (var or {}).get("error")
                or "No value at risk was stored for this date: a refresh computes it."}
    labels = {"12m": "Next 12 months", "1m": "Next month"}
    rows = [{"label": labels[h], "period": f"{r['start']} to {r['end']}", "expected": money_exact(r["expected"], cur),
             "var": money_exact(r["var"], cur), "es": money_exact(r["es"], cur)}
            for h, r in var["horizons"].items() if h in labels]
    return {"rows": rows, "as_of": var["as_of"], "level": f"{var['level']:.0%}", "models": len(var["models"]),
            "left_out": "; ".join(f"{o['model']} ({o['reason']})" for o in var["left_out"])}


def _decisions(d: dict[str, Any] | None, cur: str) -> dict[str, Any] | None:
    """A classifier's decisions in the month, for its model section (None without [decisions])."""
    if not d:
        return None
    return {
        "total": money_exact(d["total"], cur), "ci": _interval(d["ci_total"], cur) if d["ci_total"] else "",
        "realised": money_exact(d["realised"], cur), "estimate": money_exact(d["estimate"], cur),
        "labelled": f"{d['labelled']:,}", "predictions": f"{d['predictions']:,}",
        "estimated_share": _pct(d["estimated_share"]), "per_prediction": money_exact(d["per_prediction"], cur),
        "threshold": "—" if d["threshold"] is None else f"{d['threshold']:.2f}",
        "best": "" if d["best_threshold"] is None else
        f"{d['best_threshold']:.2f}, worth {money_exact(d['best_value'], cur)}",
        "flagged": d["flagged"], "reason": d["reason"],
        "checks": [{"month": k["month"], "estimated": money_exact(k["estimated"], cur),
                    "realised": money_exact(k["realised"], cur), "flagged": k["flagged"]} for k in d["checks"][-3:]],
    }


def _one_off_text(m: dict[str, Any], cur: str) -> str:
    events = m.get("one_off_events") or []
    if len(events) <= 1:
        return money_exact(m.get("one_off_costs"), cur)
    return "; ".join(f"{money_exact(e['amount'], cur)} on {e['on']}" for e in events) + \
        f" (total {money_exact(m.get('one_off_costs'), cur)})"


def _native_text(m: dict[str, Any], cur: str) -> str:
    """A model in another currency: the month's figures in it and the rates used, in a sentence."""
    n = m.get("native")
    if not n:
        return ""
    own = n["currency"]
    rates = (f"; {cur} per 1 {own} from {n['rate_first']:.4f} to {n['rate_last']:.4f}, mean {n['rate_mean']:.4f}, "
             "each day at its own rate" if n.get("rate_mean") is not None else "")
    return (f"In {own}, the model's currency: net value {money_exact(n.get('net'), own)}, gross value "
            f"{money_exact(n.get('gross'), own)}, running costs {money_exact(n.get('cost'), own)}{rates}. The "
            f"registered amounts are in {own}; every other figure is in {cur}.")


def _payback(m: dict[str, Any], cur: str) -> str:
    if not m.get("one_off_costs"):
        return "no build cost recorded"
    paid = (m.get("to_date") or {}).get("payback_date") or m.get("payback_date")
    return f"paid back on {paid}" if paid else f"not yet paid back (as of {m['as_of']})"


def _to_date_text(t: dict[str, Any] | None, cur: str) -> str:
    if not t or t.get("net") is None:
        return "—"
    text = money_exact(t["net"], cur)
    if t.get("ci_net"):
        text += f" ({money_exact(t['ci_net'][0], cur)} to {money_exact(t['ci_net'][1], cur)})"
    return text + f" since {t['period_start']}"


def _effect(m: dict[str, Any]) -> str:
    if m.get("effect_abs") is None:
        return "—"
    text = f"{m['effect_abs']:,.4g} {m.get('kpi_unit') or ''}".strip()
    if m.get("effect_se"):
        text += f" (s.e. {m['effect_se']:,.3g})"
    return text


def _srm(m: dict[str, Any]) -> str:
    p = m.get("srm_p_value")
    if p is None:
        return "—"
    return f"p = {p_value(p)}: " + ("split as planned" if p >= 0.001 else "split NOT as planned: do not trust the effect")


def _health(h: Any) -> dict[str, Any]:
    if not h:
        return {"health_status": None, "health_checks": [], "health_missing": "Health checks are not available in this snapshot."}
    if not isinstance(h, dict):
        h = {"status": str(h)}
    checks = [{"name": str(x.get("name", "")).replace("_", " "), "status": x.get("status", "unknown"),
               "message": x.get("message", "")} for x in (h.get("checks") or []) if isinstance(x, dict)]
    return {"health_status": h.get("status"), "health_checks": checks, "health_missing": "No health checks recorded."}


def _risk(r: Any, cur: str) -> dict[str, Any]:
    if not r:
        return {"risk_level": None, "risk_lines": [], "risk_missing": "Risk is not available in this snapshot."}
    if not isinstance(r, dict):
        r = {"level": str(r)}
    lines = list(r.get("reasons") or [])
    if r.get("prob_negative") is not None:
        lines.append(f"P(net value < 0) = {pct(r['prob_negative'])}")  # as the model page shows it
    if r.get("expected_loss") is not None:
        lines.append(f"Expected loss {money_exact(r['expected_loss'], cur)}")
    if r.get("concentration") is not None:
        lines.append(f"Share of the portfolio's gross value: {_pct(r['concentration'])}")
    return {"risk_level": r.get("level"), "risk_lines": lines, "risk_missing": "No risk figures recorded."}


# ------------------------------------------------------------------------------------------------
# exporters


def render(snapshot: Snapshot, fmt: str, *, pending: dict[str, Any] | None = None) -> bytes:
    if fmt not in FORMATS:
        raise ParameterError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    return {"pdf": render_pdf, "html": lambda s, pending: render_html(s, pending=pending).encode("utf-8"),
            "csv": render_csv, "xlsx": render_xlsx}[fmt](snapshot, pending=pending)


@lru_cache(maxsize=1)
def _env() -> Any:
    try:
        import jinja2
    except ModuleNotFoundError:
        raise MissingDependency('the HTML/PDF report needs jinja2: pip install "jinja2>=3.1"') from None
    from markupsafe import Markup

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    # a CSS string literal inside <style>: no HTML escaping there, so escape for CSS and block "</"
    env.filters["css_string"] = lambda s: Markup(
        str(s).replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3c ").replace("\n", " "))
    return env


def render_html(snapshot: Snapshot, *, pending: dict[str, Any] | None = None) -> str:
    """The report as one self-contained HTML document."""
    pending_key = json.dumps(pending, sort_keys=True, default=str) if pending else ""
    return _html(snapshot.id, snapshot.content_hash, pending_key, _Key(snapshot, pending))


class _Key:
    """Carries the snapshot into the cache without making it part of the key (id + content hash are)."""

    def __init__(self, snapshot: Snapshot, pending: dict[str, Any] | None = None) -> None:
        self.snapshot = snapshot
        self.pending = pending

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key)


@lru_cache(maxsize=4)
def _html(snapshot_id: int | None, content_hash: str, pending_hash: str, key: _Key) -> str:
    # the PDF and the HTML export of one snapshot share the drawing of the charts
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    return _env().get_template("report.html.j2").render(
        r=view(key.snapshot, pending=key.pending), css=css)


def render_pdf(snapshot: Snapshot, *, pending: dict[str, Any] | None = None) -> bytes:
    """The report as PDF (WeasyPrint; no network: only ``data:`` URIs are fetched)."""
    try:
        import weasyprint
    except (ModuleNotFoundError, OSError) as exc:  # OSError: Pango missing (apt install libpango-1.0-0)
        raise MissingDependency(f'the PDF report needs WeasyPrint and Pango ({exc}): pip install "weasyprint>=70" '
                                "and, on Debian, apt-get install libpango-1.0-0 libpangoft2-1.0-0") from None
    html = render_html(snapshot, pending=pending)
    fetcher = weasyprint.URLFetcher(allowed_protocols=("data",))
    return weasyprint.HTML(string=html, url_fetcher=fetcher, base_url=None).write_pdf()


def _billing_rows(b: dict[str, Any] | None, cur: str) -> list[tuple[str, str]]:
    """The two parts of a cost read from the bill, labelled (empty without [cost_source])."""
    if not b:
        return []
    through = f" through {b['settled_through']}" if b["settled_through"] else ""
    return [(f"of which billed, settled{through} ({b['billed_days']} days)", money_exact(b["billed"], cur)),
            (f"of which estimated, not settled ({b['estimated_days']} days)", money_exact(b["estimated"], cur)),
            ("the estimate for the billed days", money_exact(b["estimate_on_billed_days"], cur))]


_BILLING_METRICS = ("cost_billed", "cost_estimated", "cost_estimate_on_billed_days")
CSV_METRICS = (
    ("gross", "money"), ("cost", "money"), ("net", "money"), ("net_ci_lo", "money"), ("net_ci_hi", "money"),
    ("roi", "fraction"), ("roi_ci_lo", "fraction"), ("roi_ci_hi", "fraction"),
    # the fully loaded view: one-off costs amortised (docs/methods-value.md)
    ("amortisation", "money"), ("cost_fully_loaded", "money"), ("net_fully_loaded", "money"),
    ("roi_fully_loaded", "fraction"), ("prob_positive", "probability"),
    ("expected_loss", "money"), ("treated_units", "count"), ("predictions", "count"), ("effect_abs", "kpi"),
    ("effect_se", "kpi"), ("effect_rel", "fraction"), ("p_value", "probability"), ("srm_p_value", "probability"),
    ("provisional", "bool"), ("trusted", "bool"), ("flags", "count"),
    # a classifier's decisions, beside the causal figures (only for models with [decisions])
    ("decisions_total", "money"), ("decisions_realised", "money"), ("decisions_estimate", "money"),
    # cost from the bill: the settled billed part and the estimated part of ``cost`` (only with [cost_source])
    ("cost_billed", "money"), ("cost_estimated", "money"), ("cost_estimate_on_billed_days", "money"),
    # overrides agreed with finance (D37): the adjusted net value and how much of it they make
    ("override_amount", "money"), ("net_adjusted", "money"),
)


def tidy_rows(snapshot: Snapshot, pending: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per model and metric (plus the portfolio's rows, model ``(portfolio)``); a final
    month adds its version, an applied restatement (``restated_*``: reason, the per-model
    differences) and a pending one (``pending_*``: not applied; the figures above are the final ones)."""
    c = snapshot.content
    base = {"snapshot_id": snapshot.id, "month": c["month"], "status": c["status"], "as_of": c["as_of"],
            "currency": c["currency"]}
    flags = {}
    for f in c["flags"]:
        flags[f["model"]] = flags.get(f["model"], 0) + 1
    rows = []
    for m in c["models"]:
        if not m["active_in_month"]:
            continue
        values = {**m, "net_ci_lo": (m["ci_net"] or [None, None])[0], "net_ci_hi": (m["ci_net"] or [None, None])[1],
                  "roi_ci_lo": (m.get("ci_roi") or [None, None])[0], "roi_ci_hi": (m.get("ci_roi") or [None, None])[1],
                  "flags": flags.get(m["model"], 0)}
        d = m.get("decisions") or {}
        for metric in ("total", "realised", "estimate"):
            values[f"decisions_{metric}"] = d.get(metric)
        b = m.get("cost_billing") or {}
        for metric in ("billed", "estimated", "estimate_on_billed_days"):
            values[f"cost_{metric}"] = b.get(metric)
        for metric, unit in CSV_METRICS:
            if (metric.startswith("decisions_") and not d) or (metric in _BILLING_METRICS and not b):
                continue
            v = values.get(metric)
            money_unit = (m.get("model_currency") or c["currency"]) if metric.startswith("decisions_") else c["currency"]
            rows.append({**base, "model": m["model"], "display_name": m["display_name"], "team": m["team"],
                         "metric": metric, "value": int(v) if isinstance(v, bool) else v,
                         "unit": money_unit if unit == "money" else (m.get("kpi_unit") if unit == "kpi" else unit)})
        n = m.get("native")
        if n:  # a model in another currency: its own figures, and the rates, each row with its unit
            own = n["currency"]
            for metric, v, unit in (("native_gross", n.get("gross"), own), ("native_cost", n.get("cost"), own),
                                    ("native_net", n.get("net"), own),
                                    ("fx_rate_mean", n.get("rate_mean"), f"{c['currency']} per {own}")):
                rows.append({**base, "model": m["model"], "display_name": m["display_name"], "team": m["team"],
                             "metric": metric, "value": v, "unit": unit})
        for g in m.get("guardrails") or []:  # per guardrail: its harm against its tolerance, its money
            for metric, v, unit in (("harm_per_unit", g["harm_per_unit"], g["unit"]), ("tolerance", g["tolerance"], g["unit"]),
                                    ("value", g["value"], c["currency"]), ("in_net", int(g["in_net"]), "bool")):
                rows.append({**base, "model": m["model"], "display_name": m["display_name"], "team": m["team"],
                             "metric": f"guardrail_{g['name']}_{metric}", "value": v, "unit": unit})
        rows += _note_csv_rows(base, m, c["currency"])
    t = c["totals"]
    ci = t.get("ci_net") or [None, None]
    r = t.get("reconciliation") or {}
    for metric, v, unit in (("gross", t["gross"], c["currency"]), ("cost", t["cost"], c["currency"]),
                            ("reconciliation_rows", r.get("rows"), c["currency"]),
                            ("reconciliation_overlap", r.get("overlap"), c["currency"]),
                            ("reconciliation_no_estimate_cost", r.get("no_estimate_cost"), c["currency"]),
                            ("double_counted_se", t.get("double_counted_se"), c["currency"]),
                            ("net", t["net"], c["currency"]),
                            ("cost_fully_loaded", t.get("cost_fully_loaded"), c["currency"]),
                            ("net_fully_loaded", t.get("net_fully_loaded"), c["currency"]),
                            ("override_amount", t.get("override_amount", 0.0), c["currency"]),
                            ("net_adjusted", t.get("net_adjusted", t["net"]), c["currency"]),
                            ("net_ci_lo", ci[0], c["currency"]),
                            ("net_ci_hi", ci[1], c["currency"]), ("prob_positive", t.get("prob_positive"), "probability"),
                            ("models", t.get("models"), "count"), ("flagged", t.get("flagged"), "count")):
        rows.append({**base, "model": "(portfolio)", "display_name": "Portfolio total", "team": "",
                     "metric": metric, "value": v, "unit": unit})
    var = c.get("var") or {}
    for h, r in (var.get("horizons") or {}).items():
        for metric in ("expected", "var", "es"):
            rows.append({**base, "model": "(portfolio)", "display_name": "Portfolio total", "team": "",
                         "metric": f"{metric}_{h}", "value": r[metric], "unit": c["currency"]})
    portfolio = {**base, "model": "(portfolio)", "display_name": "Portfolio total", "team": ""}
    if c.get("final_version"):
        rows.append({**portfolio, "metric": "final_version", "value": c["final_version"], "unit": "count"})
    names = {m["model"]: (m["display_name"], m["team"]) for m in c["models"]}
    for prefix, d in (("restated", c.get("restatement") if (c.get("restatement") or {}).get("kind") == "restatement"
                       else None), ("pending", pending)):
        if not d:
            continue
        if prefix == "restated":
            rows.append({**portfolio, "metric": "restated_reason", "value": d["reason"], "unit": "text"})
            rows.append({**portfolio, "metric": "restated_by", "value": d["by"], "unit": "text"})
        else:
            rows.append({**portfolio, "metric": "pending_as_of", "value": d["as_of"], "unit": "date"})
        rows.append({**portfolio, "metric": f"{prefix}_net_before", "value": d["net_before"], "unit": c["currency"]})
        rows.append({**portfolio, "metric": f"{prefix}_net_after", "value": d["net_after"], "unit": c["currency"]})
        rows.append({**portfolio, "metric": f"{prefix}_delta", "value": d["delta"], "unit": c["currency"]})
        for r in d["models"]:
            display, team = names.get(r["model"], (r.get("display_name") or r["model"], ""))
            for metric in ("net_before", "net_after", "delta"):
                rows.append({**base, "model": r["model"], "display_name": display, "team": team,
                             "metric": f"{prefix}_{metric}", "value": r[metric], "unit": c["currency"]})
    return rows


CSV_COLUMNS = ("snapshot_id", "month", "status", "as_of", "currency", "model", "display_name", "team", "metric",
               "value", "unit", "note")


def _note_csv_rows(base: dict[str, Any], m: dict[str, Any], cur: str) -> list[dict[str, Any]]:
    """A row per override counted in the month (value: its part of the adjustment), per excluded
    window and per annotation (value empty), each with its text in ``note``."""
    from valuetrack import notes_text

    head = {**base, "model": m["model"], "display_name": m["display_name"], "team": m["team"]}
    rows = [{**head, "metric": f"override_{o['id']}", "value": o.get("effect"), "unit": cur,
             "note": notes_text.clean(f"{notes_text.what({'kind': 'override', **o}, cur)}: {o.get('text')} (by {o.get('by')})")}
            for o in m.get("overrides") or []]
    for n in m.get("model_notes") or []:
        if n.get("kind") in ("annotation", "exclusion"):
            rows.append({**head, "metric": f"{n['kind']}_{n['id']}", "value": None, "unit": "",
                         "note": notes_text.clean(f"{notes_text.what(n, cur)}: {n.get('text')} (by {n.get('created_by')})")})
    return rows


def render_csv(snapshot: Snapshot, *, pending: dict[str, Any] | None = None) -> bytes:
    """Tidy CSV: one row per model and metric; full precision (repr of the stored float). Text that a
    spreadsheet would run as a formula is neutralised (valuetrack.safetext.csv_cell)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in tidy_rows(snapshot, pending):
        w.writerow({k: ("" if row.get(k) is None else csv_cell(row.get(k))) for k in CSV_COLUMNS})
    return buf.getvalue().encode("utf-8")


def render_xlsx(snapshot: Snapshot, *, pending: dict[str, Any] | None = None) -> bytes:
    """Workbook: Summary, Flags, one sheet per live model, Provenance. Numbers are numbers; text is
    text, never a formula (valuetrack.safetext.text_not_formulas)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    c = snapshot.content
    cur = c["currency"]
    sym = symbol(cur)
    money_fmt = f'"{sym}"#,##0.00;-"{sym}"#,##0.00'
    pct_fmt, prob_fmt, int_fmt = "0.0%", "0%", "#,##0"  # a probability as the pages and the PDF show it
    bold = Font(bold=True)
    head_fill = PatternFill("solid", fgColor="1F4E79")
    head_font = Font(bold=True, color="FFFFFF")

    wb = Workbook()
    ws = wb.active
    ws.title = "Summary"
    ws.append([c["title"]])
    ws["A1"].font = Font(bold=True, size=14)
    info = [("Status", c["status"]), ("Period", f"{c['period_start']} to {c['period_end']}"), ("As of", c["as_of"]),
            ("Currency", cur), ("Snapshot", snapshot.id), ("Inputs hash", c["provenance"]["inputs_hash"])]
    if c.get("final_version"):
        info.append(("Version", c["final_version"]))
    rs = c.get("restatement") or {}
    if rs.get("kind") == "restatement":
        info.append(("Restated", f"version {rs['version']} replaces version {rs['version_before']}: by {rs['by']} "
                                 f"on {str(rs['at'])[:16].replace('T', ' ')} UTC; reason: {rs['reason']}"))
    if pending:
        info.append(("PENDING RESTATEMENT", f"not applied: the valuation as of {pending['as_of']} values the month at "
                                            f"{money_exact(pending['net_after'], cur)} ({_signed(pending['delta'], cur)}); "
                                            "see the sheet 'Pending restatement'"))
    for k, v in info:
        ws.append([k, v])
    if c.get("provisional_reasons"):
        ws.append(["Provisional because", "; ".join(c["provisional_reasons"])])
    ws.append([])
    t = c["totals"]
    ci = t.get("ci_net") or [None, None]
    ws.append([f"Total {NET_RUNNING[0].lower()}{NET_RUNNING[1:]}", t["net"]])
    ws.cell(ws.max_row, 2).number_format = money_fmt
    ws.cell(ws.max_row, 1).font = bold
    for label, v, f in (("95% interval (fixed-horizon), low", ci[0], money_fmt), ("95% interval (fixed-horizon), high", ci[1], money_fmt),
                        ("Gross value", t["gross"], money_fmt), ("Running costs", t["cost"], money_fmt),
                        (f"Total {NET_LOADED[0].lower()}{NET_LOADED[1:]}", t.get("net_fully_loaded"), money_fmt),
                        ("Running costs + one-off costs amortised", t.get("cost_fully_loaded"), money_fmt),
                        ("From overrides agreed with finance", t.get("override_amount", 0.0), money_fmt),
                        ("Total net value, adjusted", t.get("net_adjusted", t["net"]), money_fmt),
                        ("P(net value > 0)", t.get("prob_positive"), prob_fmt)):
        ws.append([label, v])
        ws.cell(ws.max_row, 2).number_format = f
    recon = _reconciliation(t, cur)
    if recon is not None:  # from the rows to the total, at full precision
        for step, v in zip(recon["steps"], (t["reconciliation"][k] for k in ("rows", "overlap", "no_estimate_cost", "total"))):
            ws.append([f"Reconciliation: {step['label']}", v])
            ws.cell(ws.max_row, 2).number_format = money_fmt
        for w in recon["warnings"]:
            ws.append(["Overlap warning", w])
    for h, r in ((c.get("var") or {}).get("horizons") or {}).items():
        span = "next 12 months" if h == "12m" else "next month"
        for label, key in (("expected net value", "expected"), ("5% value at risk", "var"),
                           ("expected shortfall", "es")):
            ws.append([f"Portfolio, {span}: {label}", r[key]])
            ws.cell(ws.max_row, 2).number_format = money_fmt
    ws.append([])
    header = ["Model", "Display name", "Team", "Status", "Method", "Gross", "Running costs", NET_RUNNING, "Net CI low",
              "Net CI high", ROI_RUNNING, "ROI CI low", "ROI CI high", "P(net > 0)", "Provisional", "Trusted",
              "Health", "Risk", "Flags", "Notes", "One-off costs amortised", NET_LOADED, ROI_LOADED]
    ws.append(header)
    hr = ws.max_row
    for col in range(1, len(header) + 1):
        ws.cell(hr, col).font, ws.cell(hr, col).fill = head_font, head_fill
    fmts = {6: money_fmt, 7: money_fmt, 8: money_fmt, 9: money_fmt, 10: money_fmt, 11: pct_fmt, 12: pct_fmt,
            13: pct_fmt, 14: prob_fmt, 21: money_fmt, 22: money_fmt, 23: pct_fmt}
    flags_by = {}
    for f in ordered(c["flags"]):
        flags_by.setdefault(f["model"], []).append(FLAG_LABELS.get(f["type"], f["type"]))
    for m in c["models"]:
        ci_n, ci_r = m["ci_net"] or [None, None], m.get("ci_roi") or [None, None]
        ws.append([m["model"], m["display_name"], m["team"], m["status"], m["method"],
                   m["gross"] if m["active_in_month"] else None, m["cost"], m["net"] if m["active_in_month"] else None,
                   ci_n[0], ci_n[1], m["roi"], ci_r[0], ci_r[1], m["prob_positive"], m["provisional"], m["trusted"],
                   (m.get("health") or {}).get("status") if isinstance(m.get("health"), dict) else None,
                   (m.get("risk") or {}).get("level") if isinstance(m.get("risk"), dict) else None,
                   ", ".join(flags_by.get(m["model"], [])), " ".join(m["notes"]), m.get("amortisation"),
                   m.get("net_fully_loaded") if m["active_in_month"] else None, m.get("roi_fully_loaded")])
        for col, f in fmts.items():
            ws.cell(ws.max_row, col).number_format = f
    widths = [26, 30, 14, 9, 11, 14, 13, 14, 14, 14, 9, 10, 10, 10, 11, 8, 9, 8, 26, 60, 14, 14, 10]
    for i, w in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(i)].width = w
    ws.column_dimensions["A"].width = 26
    ws.freeze_panes = ws.cell(hr + 1, 2)

    fl = wb.create_sheet("Flags")
    fl.append(["Model", "Flag", f"At stake ({cur})", "Reason", "Recommended action", "p-value"])
    for col in range(1, 7):
        fl.cell(1, col).font, fl.cell(1, col).fill = head_font, head_fill
    for f in ordered(c["flags"]):  # the worst first, as on the pages
        fl.append([f["model"], FLAG_LABELS.get(f["type"], f["type"]), f.get("at_stake"), f["reason"], f["action"],
                   f.get("p_value")])
        fl.cell(fl.max_row, 3).number_format = money_fmt
    for col, w in zip("ABCDEF", (26, 18, 14, 90, 70, 10)):
        fl.column_dimensions[col].width = w
    for row in fl.iter_rows(min_row=2):
        for cell in row[3:5]:
            cell.alignment = Alignment(wrap_text=True, vertical="top")

    used: set[str] = {"Summary", "Flags", "Provenance", "Restatement", "Pending restatement"}
    for m in c["models"]:
        if not m["active_in_month"]:
            continue
        sheet = wb.create_sheet(_sheet_name(m["model"], used))
        sheet.append([m["display_name"]])
        sheet["A1"].font = Font(bold=True, size=13)
        rows = [("Model", m["model"], None), ("Team", m["team"], None), ("Owner", m["owner"], None),
                ("Status", m["status"], None), ("Method", m["method"], None), ("KPI", m["kpi"], None),
                ("Period start", m["period_start"], None), ("Period end", m["period_end"], None),
                (NET_RUNNING, m["net"], money_fmt), ("Net CI low (fixed-horizon)", (m["ci_net"] or [None])[0], money_fmt),
                ("Net CI high (fixed-horizon)", (m["ci_net"] or [None, None])[1], money_fmt), ("Gross value", m["gross"], money_fmt),
                ("Running costs", m["cost"], money_fmt),
                *([("Cost billed (settled)", m["cost_billing"]["billed"], money_fmt),
                   ("Cost estimated (not settled)", m["cost_billing"]["estimated"], money_fmt),
                   ("Billed through", m["cost_billing"]["settled_through"], None)] if m.get("cost_billing") else []),
                (ROI_RUNNING, m["roi"], pct_fmt),
                ("ROI CI low", (m.get("ci_roi") or [None])[0], pct_fmt),
                ("ROI CI high", (m.get("ci_roi") or [None, None])[1], pct_fmt),
                ("One-off costs amortised", m.get("amortisation"), money_fmt),
                (NET_LOADED, m.get("net_fully_loaded"), money_fmt), (ROI_LOADED, m.get("roi_fully_loaded"), pct_fmt),
                ("Amortisation period (months)", m.get("amortisation_months"), None),
                ("P(net value > 0)", m["prob_positive"], prob_fmt), ("Expected loss", m.get("expected_loss"), money_fmt),
                ("Treated units", m.get("treated_units"), int_fmt), ("Predictions", m.get("predictions"), int_fmt),
                ("Effect per unit", m.get("effect_abs"), None), ("Effect s.e.", m.get("effect_se"), None),
                ("Relative effect", m.get("effect_rel"), "0.00%"), ("p-value", m.get("p_value"), None),
                ("SRM p-value", m.get("srm_p_value"), None), ("Provisional", m["provisional"], None),
                ("Trusted", m["trusted"], None), ("Reason", m.get("reason"), None), ("Verdict", m["verdict"], None),
                ("Health", (m.get("health") or {}).get("status") if isinstance(m.get("health"), dict) else None, None),
                ("Risk", (m.get("risk") or {}).get("level") if isinstance(m.get("risk"), dict) else None, None),
                ("Registry revision", m["registry_revision"], None), ("Notes", " ".join(m["notes"]) or None, None),
                ("From overrides agreed with finance", m.get("override_amount") or 0.0, money_fmt),
                ("Net value, adjusted", m.get("net_adjusted"), money_fmt)]
        rows += _note_xlsx_rows(m, cur)
        own = m.get("model_currency") or cur
        own_fmt = money_fmt if own == cur else f'"{symbol(own)}"#,##0.00;-"{symbol(own)}"#,##0.00'
        n = m.get("native")
        if n:  # a model in another currency: its own figures beside the reporting ones
            rows += [(f"Gross value ({own})", n.get("gross"), own_fmt), (f"Running costs ({own})", n.get("cost"), own_fmt),
                     (f"Net value ({own})", n.get("net"), own_fmt),
                     (f"Mean rate ({cur} per 1 {own})", n.get("rate_mean"), "0.0000")]
        d = m.get("decisions")
        if d:  # beside the causal figures, never added to them
            rows += [("Decisions' value (part estimated)", d["total"], own_fmt),
                     ("Decisions, realised (labelled)", d["realised"], own_fmt),
                     ("Decisions, estimated (labels pending)", d["estimate"], own_fmt),
                     ("Decisions, labelled / predictions", f"{d['labelled']} / {d['predictions']}", None),
                     ("Decisions, estimate flagged", d["reason"] if d["flagged"] else "no", None)]
        for g in m.get("guardrails") or []:  # its money is inside gross only when in_net
            rows += [(f"Guardrail {g['name']}: harm per treated unit ({g['unit']})", g["harm_per_unit"], None),
                     (f"Guardrail {g['name']}: tolerance", g["tolerance"], None),
                     (f"Guardrail {g['name']}: money", g["value"], money_fmt),
                     (f"Guardrail {g['name']}: money in net value", g["in_net"], None)]
        for label, v, f in rows:
            sheet.append([label, v])
            if f:
                sheet.cell(sheet.max_row, 2).number_format = f
        sheet.append([])
        sheet.append(["Month", "Gross", "Cost", "Net value", "Net CI low", "Net CI high", "Provisional"])
        r0 = sheet.max_row
        for col in range(1, 8):
            sheet.cell(r0, col).font, sheet.cell(r0, col).fill = head_font, head_fill
        for r in m.get("months") or []:
            ci_m = r["ci_net"] or [None, None]
            sheet.append([r["month"], r["gross"], r["cost"], r["net"], ci_m[0], ci_m[1], r["provisional"]])
            for col in range(2, 7):
                sheet.cell(sheet.max_row, col).number_format = money_fmt
        sheet.column_dimensions["A"].width = 20
        sheet.column_dimensions["B"].width = 40
        for col in "CDEFG":
            sheet.column_dimensions[col].width = 14

    for title, d in (("Restatement", rs if rs.get("kind") == "restatement" else None),
                     ("Pending restatement", pending)):
        if not d:
            continue
        sheet = wb.create_sheet(title)
        if title == "Restatement":
            sheet.append([f"Version {d['version']} replaces version {d['version_before']} (snapshot {d['snapshot_id']})"])
            sheet.append(["By", d["by"]])
            sheet.append(["At (UTC)", str(d["at"])[:19].replace("T", " ")])
            sheet.append(["Reason", d["reason"]])
        else:
            sheet.append([f"Not applied: the valuation as of {d['as_of']} values the month differently; "
                          "the report's figures are the final version's"])
        sheet["A1"].font = bold
        sheet.append([])
        sheet.append(["Model", "Display name", "Change", "Net before", "Net after", "Difference", "Cost before",
                      "Cost after"])
        for col in range(1, 9):
            sheet.cell(sheet.max_row, col).font, sheet.cell(sheet.max_row, col).fill = head_font, head_fill
        for r in d["models"]:
            sheet.append([r["model"], r.get("display_name"), r.get("change"), r["net_before"], r["net_after"],
                          r["delta"], r.get("cost_before"), r.get("cost_after")])
        other = d.get("portfolio_adjustment")
        if other is not None and abs(other) >= 0.005:
            sheet.append(["(portfolio)", "Overlap deduction and other portfolio-level changes", "", None, None, other])
        sheet.append(["(portfolio)", "Total", "", d["net_before"], d["net_after"], d["delta"]])
        for row in sheet.iter_rows(min_row=4):
            for cell in row[3:8]:
                cell.number_format = money_fmt
        for col, w in zip("ABCDEFGH", (26, 32, 12, 14, 14, 14, 14, 14)):
            sheet.column_dimensions[col].width = w

    pv = wb.create_sheet("Provenance")
    p = c["provenance"]
    for k, v in (("As of", p["as_of"]), ("Data window start", p["data_window"][0]), ("Data window end", p["data_window"][1]),
                 ("Last refresh", p.get("refreshed_at")), ("Queries", (p.get("query_cost") or {}).get("queries")),
                 ("Query time (s)", (p.get("query_cost") or {}).get("elapsed_s")),
                 ("Bytes scanned", (p.get("query_cost") or {}).get("bytes_scanned")),
                 ("valuetrack version", p["library_version"]), ("Inputs hash", p["inputs_hash"]),
                 ("Snapshot id", snapshot.id), ("Supersedes", snapshot.supersedes)):
        pv.append([k, v])
    pv.append([])
    pv.append(["Model", "Registry revision"])
    for name, rev in p["registry_revisions"].items():
        pv.append([name, rev])
    pv.column_dimensions["A"].width = 26
    pv.column_dimensions["B"].width = 70
    text_not_formulas(wb)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _note_xlsx_rows(m: dict[str, Any], cur: str) -> list[tuple[str, Any, Any]]:
    """The model sheet's lines for its overrides, excluded windows (with vs without) and annotations."""
    from valuetrack import notes_text

    rows: list[tuple[str, Any, Any]] = []
    for what, text, by, effect in notes_text.override_rows(m.get("overrides"), cur):
        rows.append((f"{what} (by {by}): {effect}", text, None))
    for kind in ("exclusion", "annotation"):
        for what, text, by, when in notes_text.note_rows([n for n in m.get("model_notes") or []
                                                         if n.get("kind") == kind], cur):
            rows.append((f"{what} (by {by}, {when})", text, None))
    for label, with_, without in notes_text.exclusion_rows(m.get("exclusions"), cur):
        rows.append((f"{label}: with the exclusion / without", f"{with_} / {without}", None))
    return rows


def _sheet_name(name: str, used: set[str]) -> str:
    base = "".join(ch for ch in name if ch not in '[]:*?/\\')[:31] or "model"
    candidate, i = base, 2
    while candidate.lower() in {u.lower() for u in used}:
        suffix = f"~{i}"
        candidate, i = base[: 31 - len(suffix)] + suffix, i + 1
    used.add(candidate)
    return candidate
