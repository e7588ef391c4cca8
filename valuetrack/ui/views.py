"""What the pages show, shaped from library results: pure functions, no Streamlit, tested alone.

Every money figure here is the library's number unchanged (rounded to the cent only for tables);
text for people comes from :mod:`valuetrack.formatting` (re-exported here for the pages).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Iterable, Mapping

import pandas as pd

from valuetrack import costviews
from valuetrack.ui.safe import md
from valuetrack.attribution import methods
from valuetrack.design_text import design_rows  # noqa: F401 (the model page uses it)
from valuetrack.guardrail_text import HEAD as GUARDRAIL_HEAD, guardrail_rows  # noqa: F401 (the model page uses them)
from valuetrack.value.flags import RULES, ordered, truncate
from valuetrack.formatting import interval, kpi_amount, money, money_column, money_compact, number, p_value, pct, plain  # noqa: F401 (pages use them)

# from the one table of flag rules (valuetrack.value.flags.RULES); Markdown icons: Streamlit's
# bundled Material icons render everywhere, emoji fonts do not
FLAG_LABELS = {r.type: r.label for r in RULES}
FLAG_ICONS = {r.type: r.icon for r in RULES}
FLAG_KINDS_WORST_FIRST = tuple(r.type for r in sorted(RULES, key=lambda r: -r.severity))
"""The kinds of flag in the order every list of flags takes: the most severe first."""
HEALTH_ICONS = {"ok": ":green[● ok]", "warning": ":orange[● warning]", "problem": ":red[● problem]",
                "unknown": ":gray[● unknown]"}
RISK_ICONS = {"low": ":green[● low]", "medium": ":orange[● medium]", "high": ":red[● high]"}
# Table cells: text, coloured by ``cell_colour``
CELL_COLOURS = {"ok": "#1a7f37", "low": "#1a7f37", "warning": "#9a6700", "medium": "#9a6700", "problem": "#cf222e",
                "high": "#cf222e", "unknown": "#6e7781"}


def cell_colour(value: Any) -> str:
    """CSS for a health/risk/flag cell: green/amber/red text, nothing for an empty cell."""
    if not isinstance(value, str) or not value or value == "—":
        return ""
    colour = CELL_COLOURS.get(value)
    if colour is None:  # a flag
        colour = "#6e7781" if value == FLAG_LABELS["unproven"] else "#cf222e"
    return f"color: {colour}; font-weight: 600"


def cents(value: float | None) -> float | None:
    """A money figure rounded to the cent (None/NaN → None)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return round(float(value), 2)


def last_full_day(as_of: dt.date) -> dt.date:
    return as_of - dt.timedelta(days=1)


def current_month(as_of: dt.date) -> str:
    """The month of the last day with data (as_of − 1): 'this month' on the portfolio."""
    return last_full_day(as_of).strftime("%Y-%m")


def month_label(month: str) -> str:
    return dt.datetime.strptime(month, "%Y-%m").strftime("%B %Y")


# -- portfolio --------------------------------------------------------------------------------


def period_label(period: str) -> str:
    """'to-date' → 'to date'; '2026-03' → 'March 2026'; '2026-01..2026-03' → 'January – March 2026'."""
    if period in ("to-date", "To date"):
        return "to date"
    if ".." not in period:
        return month_label(period)
    first, last = (dt.datetime.strptime(p, "%Y-%m") for p in period.split("..", 1))
    if first.year == last.year:
        return f"{first:%B} – {last:%B %Y}"
    return f"{first:%B %Y} – {last:%B %Y}"


def period_key(choice: str, first: str | None = None, last: str | None = None) -> str | None:
    """The period the filter asks for: None (to date), a month, or a range 'YYYY-MM..YYYY-MM' of
    whole months (one month when both ends are the same; the ends in either order)."""
    if choice == "To date":
        return None
    if choice != RANGE:
        return choice
    if not first or not last:
        return None
    first, last = sorted((first, last))
    return first if first == last else f"{first}..{last}"


RANGE = "A range of months…"
"""The period filter's choice that opens the From and To months."""


def headline(to_date: Any, this_month: Any, shown: Any = None) -> dict[str, dict[str, str]]:
    """The four tiles. To date (``shown`` None or to date): net value this month and to date (with
    intervals), models, flagged. For a month or a range of months (``shown``, the period the filter
    chose): its net value, its gross value and cost, models, flagged — the ledger's figures for that
    period, so the tiles follow the filter like the table (docs/decisions.md D43).
    Tiles are narrow: their money is compact ('$171.2K'), and the full figure goes in ``full``."""
    if shown is not None and shown.period != "to-date":
        return _period_tiles(to_date, shown)
    cur = to_date.currency
    t = to_date.totals
    if this_month is None:  # no model live yet
        month = {"label": "Net value this month", "value": "—", "full": "—", "caption": "no model is live yet"}
    else:
        m = this_month.totals
        month = {"label": f"Net value, {month_label(this_month.period)}", "value": money_compact(m["net"], cur),
                 "full": money(m["net"], cur), "exact": exact(m["net"]), "key": "month",
                 "caption": f"95% interval {interval(m['ci_net'], cur, compact=True)}" + _p(m["prob_positive"])
                 + _loaded({"override_amount": m.get("override_amount"), "net_adjusted": m.get("net_adjusted")}, cur)}
    return {
        "month": month,
        "to_date": {"label": "Net value to date", "value": money_compact(t["net"], cur), "full": money(t["net"], cur),
                    "exact": exact(t["net"]), "key": "to-date",
                    "caption": f"95% interval {interval(t['ci_net'], cur, compact=True)}" + _p(t["prob_positive"])
                    + _loaded(t, cur)},
        "models": {"label": "Models", "value": str(t["models"]),
                   "caption": f"{sum(1 for x in to_date.models if x.status == 'active')} active"
                   + (f" · {t['not_valued']} not valued (left out of the totals)" if t["not_valued"] else "")},
        "flagged": {"label": "Flagged", "value": str(t["flagged"]),
                    "caption": "need a decision" if t["flagged"] else "nothing to worry about"},
    }


def exact(value: float | None) -> str:
    """A money figure at full precision (the shortest text that reads back as the same float), for
    a title or aria-label: what a person or a test checks the rounded figures against."""
    return "—" if value is None else repr(float(value))


def reconciliation(totals: Mapping[str, Any], currency: str) -> list[dict[str, Any]] | None:
    """The steps from the rows to the total, as the valuation stored them (``totals.reconciliation``):
    the sum of the rows' net values, the overlap deduction, the cost of the models without an
    estimate, and the total; None for a valuation stored before it existed."""
    r = totals.get("reconciliation")
    if r is None:
        return None
    without = len(r["models_without_estimate"])
    steps = [("rows", "Sum of the rows", r["rows"], "absolute"),
             ("overlap", "Overlap counted once", r["overlap"], "relative"),
             ("no_estimate", f"Cost of {without} model{'s' if without != 1 else ''} without an estimate",
              r["no_estimate_cost"], "relative"),
             ("total", "Net value", r["total"], "total")]
    return [{"key": k, "label": label, "amount": amount, "measure": measure, "text": money(amount, currency),
             "exact_text": f"{money(amount, currency, cents=True)} ({exact(amount)} {currency})"}
            for k, label, amount, measure in steps]


def reconciliation_html(steps: list[Mapping[str, Any]], currency: str) -> str:
    """The waterfall's figures as a table: each amount to the cent, at full precision in its title
    and aria-label (a screen reader and a test read these; the chart draws them)."""
    from markupsafe import escape

    rows = "".join(
        f"<tr data-step='{escape(s['key'])}'><td>{escape(s['label'])}</td>"
        f"<td class='num' title='{escape(exact(s['amount']))} {escape(currency)}' "
        f"aria-label='{escape(s['label'])}: {escape(exact(s['amount']))} {escape(currency)}'>"
        f"{escape(money(s['amount'], currency, cents=True))}</td></tr>" for s in steps)
    return (f"<table class='vt-table' data-testid='reconciliation'><thead><tr><th>Step</th>"
            f"<th class='num'>Amount ({escape(currency)})</th></tr></thead><tbody>{rows}</tbody></table>")


def _loaded(t: Mapping[str, Any], cur: str) -> str:
    """The fully loaded net value beside a running-costs figure (when one-off costs are amortised),
    and the net value adjusted for overrides agreed with finance (when any counts; D37)."""
    out = ""
    loaded = t.get("net_fully_loaded")
    if loaded is not None and t.get("cost_fully_loaded") not in (None, t.get("cost")):
        out = f" · {costviews.FULLY_LOADED} {money_compact(loaded, cur)}"
    if t.get("override_amount"):
        out += (f" · adjusted for overrides {money_compact(t.get('net_adjusted'), cur)} "
                f"({money_compact(t['override_amount'], cur)} from overrides)")
    return out


NET_HELP = f"{costviews.NET_RUNNING}. {costviews.RUNNING_HELP} The caption gives the {costviews.FULLY_LOADED} net value: {costviews.LOADED_HELP}"
"""The portfolio's net value tiles: which costs they deduct."""


def _period_tiles(to_date: Any, shown: Any) -> dict[str, dict[str, str]]:
    cur, t, label = shown.currency, shown.totals, period_label(shown.period)
    if t.get("ci_net"):
        sure = f"95% interval {interval(t['ci_net'], cur, compact=True)}" + _p(t.get("prob_positive"))
    elif ".." in shown.period:
        sure = (f"the sum of {t.get('months', '')} months; intervals are per month or to date "
                "(the months' errors are correlated)")
    else:
        sure = "no estimate: only costs are counted"
    deducted = t.get("double_counted") or 0.0
    valued = [m for m in shown.models if m.state == "ok" and m.gross is not None]
    return {
        "month": {"label": f"Net value, {label}", "value": money_compact(t["net"], cur), "full": money(t["net"], cur),
                  "exact": exact(t["net"]), "key": "period-net", "caption": sure},
        "to_date": {"label": f"Gross value, {label}", "value": money_compact(t["gross"], cur),
                    "full": money(t["gross"], cur), "exact": exact(t["gross"]), "key": "period-gross",
                    "caption": f"cost {money_compact(t['cost'], cur)}"
                    + (f" · overlap deducted {money_compact(deducted, cur)}" if deducted else "") + _loaded(t, cur)},
        "models": {"label": "Models", "value": str(t["models"]),
                   "caption": f"{len(valued)} with an estimate in {label}"
                   + (f" · {t['not_valued']} not valued (left out of the totals)" if t.get("not_valued") else "")},
        "flagged": {"label": "Flagged", "value": str(to_date.totals["flagged"]),
                    "caption": "judged on figures to date" if to_date.totals["flagged"] else "nothing to worry about"},
    }


def failures(pv: Any) -> list[dict[str, str]]:
    """The models that could not be valued, each with why and its last good figures (plain text:
    the page shows it with st.text, so nothing in it is read as markdown)."""
    out = []
    for m in pv.failures:
        if m.last_valued is not None:
            last = (f"Last valued {m.last_valued:%d %b %Y}: net {money(m.net, m.currency)} to then "
                    "(left out of the totals).")
        else:
            last = "Never valued."
        out.append({"model": m.model, "name": m.display_name, "why": f"Not valued: {m.error}", "last": last})
    return out


def _p(p: float | None) -> str:
    return f" · P(net > 0) {pct(p)}" if p is not None else ""


VAR_HORIZONS = {"12m": "Next 12 months", "1m": "Next month"}


def var_tiles(var: Mapping[str, Any] | None, currency: str) -> dict[str, list[dict[str, str]]] | None:
    """Tiles of the portfolio's value at risk per horizon: expected, 5 % VaR, expected shortfall
    (None when no value at risk is stored, or it failed: see :func:`var_message`)."""
    if not var or "error" in var or not var.get("horizons"):
        return None
    pct = f"{var['level']:.0%}"
    out = {}
    for h, label in VAR_HORIZONS.items():
        r = var["horizons"].get(h)
        if r:
            out[label] = [
                {"label": "Expected net value", "value": money_compact(r["expected"], currency),
                 "full": money(r["expected"], currency), "caption": f"{r['start']} to {r['end']}"},
                {"label": f"{pct} value at risk", "value": money_compact(r["var"], currency),
                 "full": money(r["var"], currency),
                 "caption": f"worse in {pct} of simulated {'years' if h == '12m' else 'months'}"},
                {"label": "Expected shortfall", "value": money_compact(r["es"], currency),
                 "full": money(r["es"], currency), "caption": f"mean of the worst {pct}"},
            ]
    return out


def var_message(var: Mapping[str, Any] | None) -> str:
    """Why there is no value at risk to show."""
    if not var:
        return "No value at risk has been computed yet: refresh the models to simulate it."
    if "error" in var:
        return str(var["error"])
    return "No active model has a value estimate yet, so there is no value at risk to simulate."


def var_frame(var: Mapping[str, Any], horizon: str = "12m") -> pd.DataFrame:
    """Per model: expected net value, its own VaR and its mean net value in the portfolio's worst paths."""
    rows = var["horizons"][horizon]["models"]
    loadings = var.get("factor", {}).get("loadings", {})
    return pd.DataFrame([{"Model": r["model"], "Expected": r["expected"], "Own VaR": r["var"],
                          "In the worst paths": r["shortfall_contribution"],
                          "Demand loading": loadings.get(r["model"])} for r in rows])


def decision_tiles(d: Mapping[str, Any], currency: str) -> list[dict[str, str]]:
    """Tiles of a classifier's decisions: their value (part estimated), realised, estimated, per prediction."""
    est = d["estimate"]
    pending = d["predictions"] - d["labelled"]
    return [
        {"label": "Decisions' value", "value": money_compact(d["total"], currency), "full": money(d["total"], currency),
         "caption": (f"95% interval {interval(d['ci_total'], currency, compact=True)}" if d["ci_total"]
                     else "no estimate for unlabelled cases (no score column)")},
        {"label": "Realised (labelled)", "value": money_compact(d["realised"], currency),
         "full": money(d["realised"], currency), "caption": f"{d['labelled']:,} of {d['predictions']:,} predictions"},
        {"label": "Estimate, labels pending", "value": money_compact(est, currency), "full": money(est, currency),
         "caption": f"an estimate from the scores of {pending:,} predictions ({pct(d['estimated_share'])})"},
        {"label": "Per prediction", "value": money(d["per_prediction"], currency),
         "caption": f"threshold {d['threshold']:.2f}" if d["threshold"] is not None else "decision column"},
    ]


DECISION_CHECK_COLUMNS = ["Month", "Labelled", "Estimated", "Realised", "Gap", "p-value", "Flagged"]


def decision_check_rows(d: Mapping[str, Any], currency: str) -> list[list[str]]:
    """The monthly check of the score-based estimate against realised value, newest first: money at
    one precision per column, p-values as everywhere (two significant digits)."""
    checks = list(d["checks"])[::-1]
    money_cols = [money_column([c[k] for c in checks], currency) for k in ("estimated", "realised", "gap")]
    return [[plain(c["month"]), number(c["labelled"]), est, real, gap, p_value(c["p_value"]),
             "yes" if c["flagged"] else "no"] for c, est, real, gap in zip(checks, *money_cols)]


def flags_by_model(flags: Iterable[Any]) -> dict[str, list[Any]]:
    """The flags of each model, models in the order of their worst flag (the flags' own order:
    valuetrack.value.flags.ordered)."""
    out: dict[str, list[Any]] = {}
    for f in ordered(flags):
        out.setdefault(f.model, []).append(f)
    return out


ATTENTION = 5
"""Flags "Needs attention" lists on the portfolio page; the rest are on the flags page."""


def attention(pv: Any, limit: int = ATTENTION) -> dict[str, Any]:
    """"Needs attention": the worst ``limit`` flags, one row each (model, flag, money at stake, net to
    date), cut from the least severe end so no flag it leaves out is more severe than one it shows
    (valuetrack.value.flags.truncate). ``hidden``: how many flags are left out."""
    shown, hidden = truncate(pv.flags, limit)
    by_name = {m.model: m for m in pv.models}
    cur = pv.currency
    stakes = money_column([f.at_stake for f in shown], cur)
    nets = money_column([getattr(by_name.get(f.model), "net", None) for f in shown], cur)
    rows = [{"model": f.model, "name": getattr(by_name.get(f.model), "display_name", f.model), "type": f.type,
             "label": FLAG_LABELS.get(f.type, f.type), "icon": FLAG_ICONS.get(f.type, ""), "at_stake": stakes[i],
             "net": nets[i], "reason": f.reason} for i, f in enumerate(shown)]
    return {"rows": rows, "hidden": len(hidden), "flags": len(pv.flags), "models": len({f.model for f in pv.flags})}


def flag_hover(flags: Iterable[Any]) -> str:
    """Why a model's figures are shown dimmed: each flag's label and reason, one per line (plain text
    for a title attribute or a tooltip; the caller escapes it for its context)."""
    return "\n".join(f"{FLAG_LABELS.get(f.type, f.type)}: {f.reason}" for f in flags)


CHECK_LABELS = {"srm": "SRM, all cohorts"}
"""Health checks whose name alone is ambiguous: the SRM of the health panel tests every stored
cohort (is the split healthy now?); the method's SRM p-value tests the mature cohorts the effect is
estimated on. Both are shown, each named by the cohorts it covers."""


def check_label(name: str) -> str:
    """A health check's label on the model page."""
    return CHECK_LABELS.get(name, name.replace("_", " "))


def health_status(m: Any) -> str | None:
    h = getattr(m, "health", None)
    return h.get("status") if isinstance(h, Mapping) else None


def risk_level(m: Any) -> str | None:
    r = getattr(m, "risk", None)
    return r.get("level") if isinstance(r, Mapping) else None


def portfolio_frame(pv: Any, sparks: Mapping[str, list[float]] | None = None) -> pd.DataFrame:
    """One row per model for the portfolio table (money to the cent, as ``value --json``)."""
    flagged = flags_by_model(pv.flags)
    rows = []
    for m in pv.models:
        fl = flagged.get(m.model, [])
        rows.append({
            "model": m.model, "name": m.display_name, "team": m.team, "owner": m.owner, "status": m.status,
            "net": cents(m.net), "net_lo": cents(m.ci_net[0]) if m.ci_net else None,
            "net_hi": cents(m.ci_net[1]) if m.ci_net else None, "gross": cents(m.gross), "cost": cents(m.cost),
            "roi": m.roi, "p_positive": m.prob_positive,
            "health": health_status(m) or "—", "risk": risk_level(m) or "—",
            "flag": ", ".join(FLAG_LABELS.get(f.type, f.type) for f in fl) if fl else "",
            "flag_reason": flag_hover(fl),
            "trend": list(sparks.get(m.model, [])) if sparks else [],
            "provisional": m.provisional, "method": m.method,
            # full precision for the cell's title: the rows, the tiles and the reconciliation add up to the cent
            "net_exact": m.net, "cost_exact": m.cost, "state": m.state,
        })
    cols = ["model", "name", "team", "owner", "status", "net", "net_lo", "net_hi", "gross", "cost", "roi",
            "p_positive", "health", "risk", "flag", "flag_reason", "trend", "provisional", "method", "net_exact",
            "cost_exact", "state"]
    return pd.DataFrame(rows, columns=cols)


SORTS = {"net": "Net value", "roi": "ROI", "p_positive": "P(net > 0)", "name": "Name", "team": "Team"}


def sort_frame(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """Rows in the order a person asked for: figures highest first, names A to Z, missing last."""
    return frame.sort_values(by, ascending=by in ("name", "team"), na_position="last", kind="stable")


def portfolio_table_html(frame: pd.DataFrame, currency: str) -> str:
    """The portfolio table as HTML: every model (the height follows the rows), every column
    visible (text wraps rather than being cut off), one precision per column, names linking to
    the model page, registry text escaped."""
    from markupsafe import escape

    net = money_column(frame["net"], currency)
    ends = money_column([*frame["net_lo"], *frame["net_hi"]], currency)
    n = len(frame)
    spark = [x for xs in frame["trend"] for x in xs if x is not None and x == x]
    lo, hi = min([0.0, *spark]), max([0.0, *spark])
    head = ("<thead><tr><th>Model</th><th>Team</th><th class='num wrap' title='{net_help}'>Net value ({cur})</th>"
            "<th class='num wrap'>95% interval</th><th class='num' title='{roi_help}'>ROI</th><th class='num wrap'>P(net &gt; 0)</th>"
            "<th class='spark'>By month</th><th>Health / risk</th><th>Flag</th></tr></thead>").format(
        cur=escape(currency), net_help=escape(f"{costviews.NET_RUNNING}. {costviews.RUNNING_HELP}"),
        roi_help=escape(f"{costviews.ROI_RUNNING}: {costviews.NET_RUNNING} ÷ running costs. The model page also "
                        f"shows {costviews.ROI_LOADED}."))
    rows = []
    for i, r in enumerate(frame.itertuples(index=False)):
        has_ci = r.net_lo is not None and r.net_lo == r.net_lo
        interval_text = f"<span class='amount'>{ends[i]}</span> to <span class='amount'>{ends[n + i]}</span>" if has_ci else "—"
        # a flagged model's figures carry the flag: dimmed and hatched, the reason on hover (D42)
        flagged = bool(r.flag_reason)
        cls = " flagged" if flagged else ""
        tip = f" title='{escape(r.flag_reason)}'" if flagged else ""
        rows.append(
            f"<tr data-model='{escape(r.model)}'" + (" data-flagged='1'" if flagged else "") + ">"
            f"<td><a href='model?model={escape(r.model)}' target='_self'>{escape(r.name)}</a></td>"
            f"<td>{escape(r.team or '—')}</td>{_net_cell(r, net[i], currency, cls)}"
            f"<td class='num wrap{cls}'{tip}>{interval_text}</td>"
            f"<td class='num{cls}'{tip}>{pct(r.roi)}</td><td class='num{cls}'{tip}>{pct(r.p_positive)}</td>"
            f"<td class='spark{cls}'{tip}>{sparkline_html(r.trend, lo, hi)}</td>"
            f"<td class='tag'><span style='{cell_colour(r.health)}'>{escape(r.health or '—')}</span> / "
            f"<span style='{cell_colour(r.risk)}'>{escape(r.risk or '—')}</span></td>"
            f"<td class='tag' style='{cell_colour(r.flag)}'{tip}>{escape(r.flag or '—')}</td></tr>")
    return f"<table class='vt-table' data-testid='portfolio-table'>{head}<tbody>{''.join(rows)}</tbody></table>"


def _net_cell(r: Any, net_text: str, currency: str, cls: str = "") -> str:
    """A row's net value. Its aria-label holds the figure at full precision and says how the total
    counts it (a flagged model's title gives its flags' reasons, D42); a model without an estimate
    shows its cost, which the total counts, instead."""
    from markupsafe import escape

    reason = getattr(r, "flag_reason", "") or ""
    if r.state != "ok":
        text, shown, attrs = "not valued: left out of the totals", net_text, ""
    elif r.net_exact is None or r.net_exact != r.net_exact:
        text = f"no estimate; cost {exact(r.cost_exact)} {currency} counted in the total"
        shown, attrs, cls = f"no estimate · cost {escape(money(r.cost_exact, currency))}", " data-estimate='no'", f" wrap{cls}"
    else:
        text, shown, attrs = f"net {exact(r.net_exact)} {currency}", net_text, " data-estimate='yes'"
    title = f" title='{escape(reason)}'" if reason else ""
    return f"<td class='num{cls}'{attrs}{title} aria-label='{escape(text)}'>{shown}</td>"


def table_html(head: list[str], rows: Iterable[Iterable[Any]], *, numeric: Iterable[int] = (),
               testid: str | None = None) -> str:
    """A small table as HTML (st.html): the height follows the rows, long text wraps instead of
    being cut off, and every cell is escaped and shown with :func:`plain` (no raw None/False)."""
    from markupsafe import escape

    num = set(numeric)
    cls = lambda i: " class='num'" if i in num else ""  # noqa: E731
    th = "".join(f"<th{cls(i)}>{escape(h)}</th>" for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{escape(c if isinstance(c, str) else plain(c))}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    tid = f" data-testid='{escape(testid)}'" if testid else ""
    return f"<table class='vt-table'{tid}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def sparkline_html(values: Iterable[float | None], lo: float, hi: float, *, width: int = 84, height: int = 24) -> str:
    """Net value per month as tiny bars on one scale for every row (zero included): blue above
    the axis, red below. Plain positioned spans: st.html's sanitiser removes inline SVG."""
    xs = [0.0 if v is None or v != v else float(v) for v in values]
    if not xs:
        return "—"
    span = (hi - lo) or 1.0
    zero = height * hi / span
    bw = max(width / len(xs), 2.0)
    bars = []
    for i, v in enumerate(xs):
        h = abs(v) * height / span
        top = zero - h if v >= 0 else zero
        colour = "#0969da" if v >= 0 else "#cf222e"
        bars.append(f"<span style='position:absolute;left:{i * bw:.1f}px;width:{bw * 0.8:.1f}px;top:{top:.1f}px;"
                    f"height:{max(h, 0.5):.1f}px;background:{colour}'></span>")
    return (f"<span role='img' aria-label='net value by month' style='display:inline-block;position:relative;"
            f"width:{bw * len(xs):.0f}px;height:{height}px'>{''.join(bars)}</span>")


def filter_frame(frame: pd.DataFrame, *, teams: list[str] | None = None, owners: list[str] | None = None,
                 statuses: list[str] | None = None) -> pd.DataFrame:
    out = frame
    if teams:
        out = out[out["team"].isin(teams)]
    if owners:
        out = out[out["owner"].isin(owners)]
    if statuses:
        out = out[out["status"].isin(statuses)]
    return out


def verdict(m: Any, flags: list[Any]) -> tuple[str, str]:
    """(level, sentence): one line a head of data reads first. level: good | bad | neutral."""
    cur = m.currency
    if flags:
        worst = flags[0]
        return "bad", f"{FLAG_LABELS[worst.type]}. {worst.reason}"
    if m.net is None:
        return "neutral", m.reason or "No estimate yet: refresh the model once its first cohorts mature."
    if m.ci_net and m.ci_net[0] > 0:
        return "good", (f"Earns its keep: {money(m.net, cur)} net to date "
                        f"(95% interval {interval(m.ci_net, cur)}), P(net > 0) = {pct(m.prob_positive)}.")
    return "neutral", (f"Net value {money(m.net, cur)} to date, not yet conclusive "
                       f"(95% interval {interval(m.ci_net, cur)}, P(net > 0) = {pct(m.prob_positive)}).")


_MONEY_KEYS = ("gross", "gross_se", "cost", "net", "detectable_gross")


def evidence_line(evidence: Mapping[str, Any] | None, p: float | None, currency: str) -> str:
    """A flag's numbers in one line: 'gross $1.2k · cost $4k · net interval −$9k to −$1k · p = 0.003'."""
    parts = []
    for k, v in (evidence or {}).items():
        if v is None:
            continue
        label = k.replace("_", " ").replace("net ci", "net 95% interval").replace("gross se", "gross std. error")
        if isinstance(v, (list, tuple)) and v and all(isinstance(r, Mapping) for r in v):  # a guardrail_breach's guardrails
            parts += [_guardrail_numbers(r) for r in v]
        elif isinstance(v, (list, tuple)):
            parts.append(f"{label} {interval(v, currency)}")
        elif k in _MONEY_KEYS:
            parts.append(f"{label} {money(v, currency)}")
        elif k.endswith("p_value"):
            parts.append(_p_part("SRM p" if k == "srm_p_value" else label, v))
        else:
            parts.append(f"{label} {plain(v)}")
    if p is not None:
        parts.append(_p_part("one-sided p", p))
    return " · ".join(parts)


def _p_part(label: str, p: float) -> str:
    """'p = 0.003', or 'p < 0.0001' below the floor (not 'p = < 0.0001')."""
    shown = p_value(p)
    return f"{label} {shown}" if shown.startswith("<") else f"{label} = {shown}"


def _guardrail_numbers(row: Mapping[str, Any]) -> str:
    """'refunds harm 0.75 points (always-valid 95% interval 0.59 to 0.92 points), tolerance 0.5 points'."""
    unit, lo_hi = row.get("unit"), row.get("interval") or [None, None]
    return (f"{plain(row.get('name'))} harm {kpi_amount(row.get('harm_per_unit'), unit)} per treated unit "
            f"(always-valid 95% interval {kpi_amount(lo_hi[0], unit)} to {kpi_amount(lo_hi[1], unit)}), "
            f"tolerance {kpi_amount(row.get('tolerance'), unit)}")


# -- model page -------------------------------------------------------------------------------


def flag_history_rows(history: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    """Every look at a model's flags, newest first: raised at that look, or cleared since the last."""
    return [[plain(h["as_of"]), FLAG_LABELS.get(h["type"], h["type"]), h["status"], plain(h["raised_on"]),
             plain(h["cleared_on"]) if h["cleared_on"] else "—", p_value(h["p_value"])]
            for h in reversed(list(history))]


def month_rows(months: Iterable[Any]) -> list[dict[str, Any]]:
    """Value per calendar month of one model (the ledger's months; for the monthly chart and table)."""
    return [{"month": v.period_start.strftime("%Y-%m"), "start": v.period_start, "end": v.period_end,
             "gross": v.gross, "gross_se": v.gross_se, "cost": v.cost, "net": v.net,
             "net_lo": v.ci_net[0] if v.ci_net else None, "net_hi": v.ci_net[1] if v.ci_net else None,
             "treated_units": v.treated_units, "predictions": v.predictions, "provisional": v.provisional,
             "amortisation": v.amortisation, "cost_one_off": v.cost_one_off, "net_fully_loaded": v.net_fully_loaded,
             "cost_basis": cost_basis(v.cost_billing)}
            for v in months]


def cost_basis(billing: Mapping[str, Any] | None) -> str | None:
    """Where a period's cost comes from, as a label: "billed", "estimated" or "billed + estimated";
    None for a model without [cost_source] (its cost is always the manifest's estimate)."""
    if not billing:
        return None
    if billing["estimated_days"] == 0:
        return "billed"
    return "estimated" if billing["billed_days"] == 0 else "billed + estimated"


def _day(value: Any) -> str:
    day = dt.date.fromisoformat(value[:10]) if isinstance(value, str) else value
    return f"{day:%d %b %Y}" if day else "—"


def billing_lines(m: Any, source: Any) -> tuple[str, list[str]] | None:
    """The model page's labels for a cost read from the bill: a short caption for the cost tile and
    the Costs tab's lines (plain text: the caller escapes them). None without [cost_source]."""
    b = m.cost_billing
    if source is None or not b:
        return None
    cur = m.currency
    if b["billed_days"]:
        tile = (f"running costs {money(m.cost, cur)}: billed through {_day(b['settled_through'])}"
                + (", estimated after" if b["estimated_days"] else ""))
    else:
        tile = f"running costs {money(m.cost, cur)}: estimated (no billed day has settled yet)"
    lines = [
        f"Cost from the bill: {source.table} ({'per unit × ' + money(source.price_per_unit, cur) + ', ' if source.price_per_unit != 1 else ''}"
        f"share {pct(source.share)}; a day counts once {source.settle_days} days old)",
        f"Billed, settled ({b['billed_days']} days, {_day(b['settled_from'])} to {_day(b['settled_through'])}): "
        f"{money(b['billed'], cur)} (the manifest's estimate for those days: {money(b['estimate_on_billed_days'], cur)})"
        if b["billed_days"] else "Billed, settled: no day yet",
        f"Estimated, not settled yet ({b['estimated_days']} days): {money(b['estimated'], cur)}",
    ]
    return tile, lines


_EMPTY = {"timeline": [], "cumulative": ["day", "net", "net_lo", "net_hi", "cost", "provisional", "one_off"],
          "daily": ["day", "arm", "n_exposures"]}


def model_view(ctx: Any, record: Any) -> dict[str, Any]:
    """Everything the model page shows besides the portfolio figures (picklable, for caching), from
    the model's ledger record and its registry entry."""
    from valuetrack.registry.manifest import ManifestEntry, dump_manifest

    reg = ctx.registry.get(record.value.model)
    series = record.timeline or {}
    frames = {k: series.get(k) if series.get(k) is not None and len(series[k].columns) else pd.DataFrame(columns=cols)
              for k, cols in _EMPTY.items()}
    effect = record.detail.get("effect") or {}
    refresh = record.detail.get("refresh") or {}
    return {
        "name": reg.name, "spec": reg.spec, "revision": reg.revision,
        "created": (reg.created_at, reg.created_by), "updated": (reg.updated_at, reg.updated_by),
        "manifest": dump_manifest([ManifestEntry(reg.spec, reg.revision)]),
        "method": effect.get("method", record.value.method), "is_ts": bool(effect.get("is_ts")),
        "effect": {"trusted": effect.get("trusted", record.value.trusted), "reason": effect.get("reason"),
                   "mature_through": effect.get("mature_through")},
        "details": record.detail.get("details") or {}, "timeline": frames["timeline"],
        "segments": segment_rows(record.detail.get("segments") or [], reg.spec.kpi.unit),
        "months": [{**r, "pending": getattr(record, "restated_months", {}).get(r["month"])}
                   for r in month_rows(record.months)], "cumulative": frames["cumulative"], "daily": frames["daily"],
        "timeline_kept": record.timeline is not None,
        "audit": [a.to_dict() for a in ctx.registry.audit(reg.name, limit=100)],
        "refresh": {"stale": refresh.get("stale", False), "reason": refresh.get("reason"),
                    "last_ok": refresh.get("last_ok"), "last_attempt": refresh.get("last_attempt")},
        "valuation": {"as_of": record.asof["as_of"], "valued_at": record.asof["valued_at"],
                      "state": record.state, "error": record.error, "input_hash": record.input_hash,
                      "library_version": record.asof["library_version"], "refresh_id": record.refresh_id},
        "flag_history": record.history,
        # what the valuation used (charts) and every note with its history (the Notes tab; D36, D37)
        "chart_notes": record.detail.get("notes") or [],
        "notes": [n.to_dict() for n in ctx.notes.list(reg.name, include_withdrawn=True)],
    }


def segment_rows(segments: Iterable[Mapping[str, Any]], unit: str | None) -> list[list[str]]:
    """[segment, holdout units, model units, uplift per treated unit, 95% interval, relative, p] per
    segment of an A/B model (its ledger record's breakdown)."""
    rows = []
    for s in segments:
        ci = s.get("ci_abs")
        rows.append([plain(s["segment"]) or "(none)", number(s["n_control"]), number(s["n_treatment"]),
                     kpi_amount(s.get("effect_abs"), unit) if s.get("effect_abs") is not None else "no estimate",
                     f"{kpi_amount(ci[0], unit)} to {kpi_amount(ci[1], unit)}" if ci else "—",
                     pct(s.get("effect_rel"), 1) if s.get("effect_rel") is not None else "—", p_value(s.get("p_value"))])
    return rows


def chart_marks(spec: Any, notes: Iterable[Mapping[str, Any]]) -> tuple[list[Any], list[tuple[Any, Any, str]]]:
    """The markers every chart of the model draws: the manifest's annotations and the stored ones
    (objects with ``date`` and ``label``), and the excluded windows (first day, last day, label)."""
    from types import SimpleNamespace

    marks = [SimpleNamespace(date=a.date, label=a.label) for a in getattr(spec, "annotations", ()) or ()]
    windows = []
    for n in notes:
        if n.get("kind") == "annotation" and n.get("start"):
            marks.append(SimpleNamespace(date=dt.date.fromisoformat(n["start"]), label=f"#{n['id']} {n.get('text') or ''}"[:60]))
        elif n.get("kind") == "exclusion":
            windows.append((dt.date.fromisoformat(n["start"]), dt.date.fromisoformat(n["end"]), f"excluded: {n.get('text') or ''}"[:60]))
    return marks, windows


def figures_rows(m: Any) -> list[tuple[str, str]]:
    """The model's money figures to date, one precision for the column (what `valuetrack value --json` prints);
    with overrides, how much they add and the adjusted net value (D37)."""
    labels = ["Gross value", "Cost", "Net value", "Net value, 95% low", "Net value, 95% high"]
    values = [m.gross, m.cost, m.net, m.ci_net[0] if m.ci_net else None, m.ci_net[1] if m.ci_net else None]
    labels = [*labels[:1], "Running costs", costviews.NET_RUNNING, f"{costviews.NET_RUNNING}, 95% low",
              f"{costviews.NET_RUNNING}, 95% high", "One-off costs amortised", costviews.NET_LOADED]
    values += [m.amortisation, m.net_fully_loaded]
    if getattr(m, "overrides", None) or getattr(m, "override_amount", 0.0):
        labels += ["From overrides agreed with finance", "Net value, adjusted"]
        values += [m.override_amount, m.net_adjusted]
    return list(zip(labels, money_column(values, m.currency)))


def one_off_total(spec: Any) -> float:
    """All the model's one-off costs (a number, or the sum of its dated events)."""
    from valuetrack.registry.spec import one_off_total as total

    return total(spec.one_off_costs)


def _amounts(value: Any, currency: str, *, exact: bool = False) -> str:
    """A number, or dated amounts as 'A from DATE, B from DATE'."""
    from valuetrack.registry.spec import steps

    fmt = (lambda x: money(x, currency)) if not exact else (lambda x: money(x, currency, cents=True))
    found = steps(value)
    if len(found) == 1 and found[0].start is None:
        return f"**{fmt(found[0].amount)}**"
    return ", ".join(f"**{fmt(s.amount)}** from {s.start:%d %b %Y}" for s in found)


def cost_lines(spec: Any, currency: str) -> str:
    """The Costs tab's registered amounts (markdown list), dated amounts as their history."""
    from valuetrack.registry.spec import AMORTISATION_MONTHS

    one_off = spec.one_off_costs
    if isinstance(one_off, tuple):
        events = "; ".join(f"**{money(e.amount, currency)}** on {e.on:%d %b %Y}" + (f" ({md(e.label)})" if e.label else "")
                           for e in one_off)
    else:
        events = f"**{money(one_off, currency)}**" + (" on the launch date" if one_off else "")
    months = spec.amortisation_months or AMORTISATION_MONTHS
    return (f"- Monthly cost: {_amounts(spec.monthly_cost, currency)} (serving, licences, people share)\n"
            f"- Per 1,000 predictions: {_amounts(spec.cost_per_1k_predictions, currency, exact=True)}\n"
            f"- Value per KPI unit: {_amounts(spec.kpi.value_per_unit, currency, exact=True)}\n"
            f"- One-off costs: {events}; amortised over {months} months in the fully loaded view"
            + ("" if spec.amortisation_months else " (the default)"))


def cost_steps(spec: Any, months: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The registered amounts as steps over the months shown (for the cost chart): the monthly cost
    in effect, and the one-off costs as dated events."""
    from valuetrack.registry.spec import amount_on, one_off_events

    if not months:
        return {"days": [], "monthly_cost": [], "one_off": []}
    launch = spec.interventions[0].start if spec.interventions else months[0]["start"]
    first, last = max(months[0]["start"], launch), months[-1]["end"]  # from the launch: no cost before it
    changes = sorted({first, last, *(s.start for s in _steps(spec.monthly_cost) if s.start and first < s.start <= last)})
    return {"days": changes, "monthly_cost": [amount_on(spec.monthly_cost, d) for d in changes],
            "one_off": [{"on": max(e.on, first), "amount": e.amount, "label": e.label}
                        for e in one_off_events(spec.one_off_costs, launch)]}


def _steps(value: Any) -> Any:
    from valuetrack.registry.spec import steps

    return steps(value)


def native_rows(m: Any) -> list[tuple[str, str, str]]:
    """A model in another currency: its figures in its own currency beside the reporting ones."""
    n = m.native or {}
    if not n:
        return []
    labels = ["Gross value", "Running costs", "Net value"]
    own = money_column([n.get("gross"), n.get("cost"), n.get("net")], n["currency"])
    rep = money_column([m.gross, m.cost, m.net], m.currency)
    return list(zip(labels, own, rep))


def rates_caption(m: Any) -> str:
    """How a model's own currency was converted, in a sentence."""
    n = m.native or {}
    if not n or n.get("rate_mean") is None:
        return ""
    own, cur = n["currency"], m.currency
    return (f"Amounts in {own}, converted at each day's rate ({cur} per 1 {own}: first {n['rate_first']:.4f}, "
            f"last {n['rate_last']:.4f}, mean {n['rate_mean']:.4f}; a weekend or holiday takes the last rate "
            "published, for at most 4 days).")


def month_table_rows(months: list[Mapping[str, Any]], currency: str, *, logs_predictions: bool) -> list[list[str]]:
    """The Costs tab's months, newest first: money at one precision per column; predictions shown
    only for a model whose exposures are logged (a time-series model has no per-prediction count).
    A final month's figures are its final version's; a newer valuation's differing figure is named
    as a pending restatement (``pending``: valuetrack.ledger.ModelRecord.restated_months)."""
    months = list(months)[::-1]
    cols = {k: money_column([x.get(k) for x in months], currency)
            for k in ("cost", "amortisation", "gross", "net", "net_fully_loaded")}
    return [[month_label(x["month"]), number(x.get("predictions")) if logs_predictions else "not logged",
             cols["cost"][i] + (f" ({x['cost_basis']})" if x.get("cost_basis") else ""), cols["amortisation"][i], cols["gross"][i], cols["net"][i], cols["net_fully_loaded"][i],
             _month_status(x, currency)]
            for i, x in enumerate(months)]


def _month_status(x: Mapping[str, Any], currency: str) -> str:
    p = x.get("pending")
    if p:
        where = f"final (version {p['version']})" if p.get("in_final", True) else f"not in final version {p['version']}"
        return (f"{where}; pending restatement {money(p['delta'], currency, signed=True, cents=True)}"
                f" to {money(p['net'], currency, cents=True)}, not applied")
    return "provisional" if x.get("provisional") else "final"


def final_note(pv: Any) -> str | None:
    """For a final month: which version the figures are, and the pending restatement if a newer
    valuation values the month differently (markdown, every figure and name escaped; None for to
    date or a month not final)."""
    from valuetrack.ui.safe import md  # registry text and "$" figures in markdown: shown as typed

    f = getattr(pv, "final", None)
    if not f:
        return None
    cur = pv.currency
    text = (f"**{md(month_label(pv.period))} is final** (version {f['version']}, report snapshot {f['snapshot_id']}): "
            "these are its issued figures.")
    p = getattr(pv, "pending", None)
    if p:
        names = ", ".join(md(r.get("display_name") or r["model"]) for r in p["models"][:5])
        more = f" and {len(p['models']) - 5} more" if len(p["models"]) > 5 else ""
        text += (f" **Pending restatement:** the valuation as of {p['as_of']} values it at "
                 f"{md(money(p['net_after'], cur, cents=True))} "
                 f"({md(money(p['delta'], cur, signed=True, cents=True))}; {names}{more}). Not applied: an editor "
                 "applies it with a reason on the Reports page.")
    return text


def restatement_rows(d: Mapping[str, Any], currency: str) -> list[list[str]]:
    """A restatement's (pending or applied) per-model differences, to the cent, and its total."""
    rows = [[r.get("display_name") or r["model"], r["change"], money(r["net_before"], currency, cents=True),
             money(r["net_after"], currency, cents=True), money(r["delta"], currency, signed=True, cents=True),
             "; ".join(x for x in (
                 "" if r.get("estimated_after", True) or r["net_after"] is None else "no estimate: its cost only",
                 f"overrides {money(r.get('override_before') or 0.0, currency, cents=True)} → "
                 f"{money(r.get('override_after') or 0.0, currency, cents=True)}"
                 if abs((r.get("override_after") or 0.0) - (r.get("override_before") or 0.0)) >= 0.005 else "") if x)]
            for r in d["models"]]
    other = d.get("portfolio_adjustment")
    if other is not None and abs(other) >= 0.005:
        rows.append(["Overlap deduction and other portfolio-level changes", "", "", "",
                     money(other, currency, signed=True, cents=True), ""])
    rows.append(["Total", "", money(d["net_before"], currency, cents=True), money(d["net_after"], currency, cents=True),
                 money(d["delta"], currency, signed=True, cents=True), ""])
    return rows


def diagnostics_rows(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The method's own checks as (label, value) lines, for the diagnostics panel."""
    out: list[tuple[str, str]] = []
    keys = [("method", "Method"), ("metric", "Metric"), ("effect_rel", "Relative effect"), ("ci_rel", "95% interval (relative)"),
            ("cs_rel", "Always-valid interval (relative)"), ("p_value", "p-value"), ("p_value_seq", "Sequential p-value"),
            ("srm_p_value", "SRM p-value, mature cohorts"), ("cuped", "CUPED"), ("variance_reduction", "Variance reduction (CUPED)"),
            ("n_control", "Units in holdout"), ("n_treatment", "Units served"), ("n_pre", "Pre-period days"),
            ("n_post", "Post-period days"), ("pre_period_fit", "Pre-period fit"), ("inference", "Inference"),
            ("horizon_capped", "Horizon capped")]
    for key, label in keys:
        if key not in details or details[key] is None:
            continue
        v = details[key]
        if key in ("effect_rel", "variance_reduction"):
            text = pct(v, 1)
        elif key in ("ci_rel", "cs_rel") and isinstance(v, (list, tuple)) and len(v) == 2:
            text = f"{pct(v[0], 1)} to {pct(v[1], 1)}"
        elif key.endswith("p_value") or key == "p_value_seq":
            text = p_value(v)
        elif key == "cuped":
            text = "on" if v else "off"
        else:
            text = plain(v)
        out.append((label, text))
    placebo = details.get("diagnostics", {}).get("placebo") if isinstance(details.get("diagnostics"), dict) else None
    if isinstance(placebo, dict) and placebo.get("status"):
        out.append(("Placebo calibration", placebo_text(placebo)))
    return out


def placebo_text(placebo: Mapping[str, Any]) -> str:
    """A time-series fit's placebo check in words: its factor, windows and what it did."""
    if placebo["status"] == "unchecked":
        return f"unchecked: {placebo.get('note') or 'too few placebo windows'}"
    what = {"ok": "interval kept", "widened": f"interval widened ×{placebo['widened_by']:.2f}",
            "untrusted": "untrusted"}.get(placebo["status"], placebo["status"])
    return (f"factor {placebo['factor']:.2f} over {placebo['windows']} windows of {placebo['window_days']} days "
            f"({what})")


# -- registration form ------------------------------------------------------------------------

_WHERE = re.compile(r"""^(?:model (?:'[^']*'|"[^"]*")|model|models\[\d+\])(?:\.(?P<path>[A-Za-z0-9_.\[\]]+))?: (?P<msg>.*)$""",
                    re.S)


def problems_by_field(problems: Iterable[str], fields: Iterable[str]) -> dict[str, list[str]]:
    """Map validation problems ("model 'x'.kpi.value_per_unit: must be >= 0") to form fields.

    A problem goes to its dotted field when the form has it, else to the nearest enclosing
    section ("attribution.exposures.table" → "attribution.exposures"), else to "" (the form as a whole).
    """
    known = set(fields)
    out: dict[str, list[str]] = {}
    for p in problems:
        m = _WHERE.match(p)
        path, msg = (m.group("path") or "", m.group("msg")) if m else ("", p)
        path = re.sub(r"\[\d+\]", "", path)
        target = ""
        parts = path.split(".") if path else []
        while parts:
            cand = ".".join(parts)
            if cand in known:
                target = cand
                break
            parts.pop()
        out.setdefault(target, []).append(msg if target else p)
    return out


_SECTIONS = {"exposures": "the Exposures fields", "outcomes": "the Outcomes fields", "series": "the Daily series fields",
             "panel": "the Panel fields"}
_PREFIX = re.compile(r"""^(?:model (?:'[^']*'|"[^"]*")|model|models\[\d+\])(?:\.[A-Za-z0-9_.\[\]]+)?: """)


def plain_problem(message: str) -> str:
    """A validation message in the form's words, without manifest paths: 'must be >= 0 (got -500.0)'
    → 'Must be 0 or more (you entered -500).'"""
    msg = _PREFIX.sub("", message.strip())
    msg = re.sub(r"\[model\.attribution\.(\w+)\]", lambda m: _SECTIONS.get(m.group(1), m.group(1)), msg)
    msg = re.sub(r"method '(\w+)' needs", lambda m: f"The method “{methods.label(m.group(1))}” needs", msg)
    if msg in ("must not be empty", "must be a non-empty name"):
        return "Required."
    if msg.startswith("'' must be 3-64 characters"):
        return "Required: 3 to 64 lowercase letters, digits and dashes."
    m = re.fullmatch(r"'(.*)' must be 3-64 characters of a-z, 0-9 and '-', starting and ending with a letter or digit", msg)
    if m:
        return f"Use 3 to 64 lowercase letters, digits and dashes, starting and ending with a letter or digit (not “{m.group(1)}”)."
    def num(x: str) -> str:
        return number(float(x), None) if re.fullmatch(r"-?[\d.]+(e-?\d+)?", x) else x

    def bound(m: re.Match[str]) -> str:
        b = num(m.group(2))
        words = {">=": f"{b} or more", "<=": f"{b} or less", ">": f"more than {b}", "<": f"less than {b}"}[m.group(1)]
        return f"must be {words} (you entered {num(m.group(3))})"

    msg = re.sub(r"must be (>=|<=|>|<) (\S+) \(got ([^)]+)\)", bound, msg)
    msg = re.sub(r"\(got ([^)]+)\)", lambda m: f"(you entered {num(m.group(1))})", msg)
    msg = msg.replace("use higher_is_better = false", "turn off “Higher is better”")
    return msg[:1].upper() + msg[1:] + ("" if msg.endswith(".") else ".")


def spec_to_form(spec: Any) -> dict[str, Any]:
    """A registered spec → the form's flat field values."""
    d = spec.to_dict()
    flat: dict[str, Any] = {}

    def walk(prefix: str, obj: Any) -> None:
        for k, v in obj.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(key + ".", v)
            else:
                flat[key] = v

    walk("", {k: v for k, v in d.items() if k != "interventions"})
    flat.update(_dated_to_form(spec))
    ivs = list(spec.interventions)
    if ivs:
        flat["launch"] = ivs[0].start
        flat["launch_label"] = ivs[0].label
        flat["relaunches"] = "\n".join(f"{iv.start.isoformat()} {iv.label}".strip() for iv in ivs[1:])
    for key in ("attribution.series.controls", "attribution.panel.treated"):
        if key in flat:
            flat[key] = ", ".join(flat[key])
    return flat


def form_to_data(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The form's flat values → manifest data for ``ModelSpec.from_dict`` (plus problems the
    form itself finds, e.g. a relaunch line that is not a date). Empty optional fields are omitted;
    the A/B or series sections are included by the method chosen."""
    problems: list[str] = []
    data: dict[str, Any] = {}

    def put(path: str, value: Any) -> None:
        if value is None or (isinstance(value, str) and not value.strip()
                             and (path.count(".") >= 1 or path == "currency") and path not in _KEEP_EMPTY):
            return
        if isinstance(value, str):
            value = value.strip()
        node = data
        *head, last = path.split(".")
        for h in head:
            node = node.setdefault(h, {})
        node[last] = value

    method = values.get("attribution.method") or "ab"
    sections = methods.get(method).form_sections if method in methods.names() else ()
    for key, value in values.items():
        if key in ("launch", "launch_label", "relaunches") or key in DATED_FORM_KEYS or not key:
            continue
        parts = key.split(".")
        if parts[0] == "attribution" and len(parts) == 3 and parts[1] not in sections:
            continue
        if key in ("attribution.series.controls", "attribution.panel.treated"):
            value = [c.strip() for c in str(value or "").split(",") if c.strip()]
        put(key, value)
    if method == "auto":  # only the sections the user filled
        att = data.get("attribution", {})
        for sec in ("exposures", "outcomes", "series", "panel"):
            if sec in att and not any(v for k, v in att[sec].items() if k not in ("treatment", "control", "controls")):
                att.pop(sec)
    ivs = []
    if values.get("launch"):
        ivs.append({"start": values["launch"], "label": str(values.get("launch_label") or "").strip()})
    for i, line in enumerate(str(values.get("relaunches") or "").splitlines()):
        line = line.strip()
        if not line:
            continue
        day, _, label = line.partition(" ")
        try:
            ivs.append({"start": dt.date.fromisoformat(day), "label": label.strip()})
        except ValueError:
            problems.append(f"model.interventions: line {i + 1} of the relaunches, {line!r}, does not start with a date YYYY-MM-DD")
    if ivs:
        data["interventions"] = ivs
    if "cost_source" in data and not data["cost_source"].get("table"):
        data.pop("cost_source")  # no billing table: no cost source (its numbers alone are the defaults)
    _dated_from_form(values, data, problems)
    return data, problems


DATED_FIELDS = ("monthly_cost", "cost_per_1k_predictions", "kpi.value_per_unit")
"""The amounts that may change on a date: the form shows a number and, below it, the dated amounts."""
DATED_FORM_KEYS = (*(f"history:{f}" for f in DATED_FIELDS), "history:one_off_costs", "amortisation_months")


def _dated_to_form(spec: Any) -> dict[str, Any]:
    """Dated amounts → one line per step ('2025-06-15 6200'); the number shows the newest amount.
    One-off costs given as dated events → one line each ('2025-05-01 15000 retraining')."""
    from valuetrack.registry.spec import AMORTISATION_MONTHS

    out: dict[str, Any] = {"amortisation_months": spec.amortisation_months or AMORTISATION_MONTHS}
    for path in DATED_FIELDS:
        value = spec.kpi.value_per_unit if path == "kpi.value_per_unit" else getattr(spec, path)
        if isinstance(value, tuple):
            out[path] = value[-1].amount
            out[f"history:{path}"] = "\n".join(f"{s.start.isoformat()} {s.amount:g}" for s in value)
        else:
            out[f"history:{path}"] = ""
    if isinstance(spec.one_off_costs, tuple):
        out["one_off_costs"] = 0.0
        out["history:one_off_costs"] = "\n".join(f"{e.on.isoformat()} {e.amount:g} {e.label}".strip()
                                                  for e in spec.one_off_costs)
    else:
        out["history:one_off_costs"] = ""
    return out


def _dated_from_form(values: Mapping[str, Any], data: dict[str, Any], problems: list[str]) -> None:
    """The form's dated lines → manifest lists. Lines given replace the number; none: the number."""
    from valuetrack.registry.spec import AMORTISATION_MONTHS

    for path in (*DATED_FIELDS, "one_off_costs"):
        lines = [x.strip() for x in str(values.get(f"history:{path}") or "").splitlines() if x.strip()]
        if not lines:
            continue
        key = "on" if path == "one_off_costs" else "from"
        items = []
        for i, line in enumerate(lines):
            day, _, rest = line.partition(" ")
            amount, _, label = rest.strip().partition(" ")
            try:
                item = {key: dt.date.fromisoformat(day), "amount": float(amount.replace(",", ""))}
            except ValueError:
                problems.append(f"model.{path}: line {i + 1}, {line!r}, is not 'YYYY-MM-DD amount'")
                continue
            if label.strip() and path == "one_off_costs":
                item["label"] = label.strip()
            items.append(item)
        if len(items) < len(lines):  # a line that does not read is the problem above: the list is not used
            continue
        number = values.get(path)
        if path != "one_off_costs" and items and number not in (None, "") and float(number) != items[-1]["amount"]:
            # the number shows the newest amount: a different one typed there would be lost silently
            problems.append(f"model.{path}: the amount {float(number):g} differs from the last dated line "
                            f"({items[-1]['amount']:g}); add a line 'YYYY-MM-DD {float(number):g}' for a new amount "
                            "from its date, or clear the dated lines to use one number since launch")
        node = data.setdefault("kpi", {}) if path == "kpi.value_per_unit" else data
        node[path.rpartition(".")[2]] = items
    months = values.get("amortisation_months")
    if months not in (None, "", AMORTISATION_MONTHS):
        data["amortisation_months"] = int(months)


_KEEP_EMPTY = {"display_name", "owner", "team", "kpi.name", "attribution.exposures.table", "attribution.exposures.unit",
               "attribution.exposures.timestamp", "attribution.exposures.arm", "attribution.outcomes.table",
               "attribution.outcomes.unit", "attribution.outcomes.timestamp", "attribution.outcomes.value",
               "attribution.series.table", "attribution.series.date", "attribution.series.value",
               "attribution.panel.table", "attribution.panel.unit", "attribution.panel.date", "attribution.panel.value"}
