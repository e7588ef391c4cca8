"""The monthly report as data: a definition (month + as-of date) run against the app database gives
an immutable :class:`Snapshot` holding everything needed to re-render the report without the
warehouse or the aggregates cache (numbers, flags, health, risk, provenance, small chart series).

The figures are read from the valuation ledger (valuetrack.ledger), never computed here, so the
report shows exactly the numbers of ``valuetrack value --month`` and the app.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from valuetrack import __version__
from valuetrack.jsonsafe import num
from valuetrack.context import Context, today_utc
from valuetrack.errors import ValidationError

TIMELINE_POINTS = 120  # chart series are downsampled to at most this many points per model
HISTORY_MONTHS = 12  # monthly net values shown per model (up to the report month)


@dataclass(frozen=True)
class Snapshot:
    """One issue of the monthly report.

    Attributes:
        month: the report month, YYYY-MM.
        status: "provisional" (some cohorts of the month not yet mature, or the month not over) or
            "final".
        as_of: the date the figures were computed as of.
        inputs_hash: sha256 of everything the numbers depend on (month, as-of date, registry
            revisions and specs, the stored aggregates read, library version). Same hash, same
            numbers.
        content: the report as JSON-ready data (see :func:`build_snapshot`); never changes.
        id: the row id in ``report_snapshots``, or None before it is stored.
        created_at: when it was built.
        created_by: who built it.
        version: valuetrack version that built it.
        supersedes: id of the previous snapshot of the same month, or None.
    """

    month: str
    status: str
    as_of: dt.date
    inputs_hash: str
    content: dict[str, Any]
    id: int | None = None
    created_at: dt.datetime | None = None
    created_by: str = ""
    version: str = __version__
    supersedes: int | None = None

    @property
    def provisional(self) -> bool:
        return self.status == "provisional"

    @property
    def content_hash(self) -> str:
        return sha256_json(self.content)

    @property
    def totals(self) -> dict[str, Any]:
        return self.content["totals"]

    @property
    def models(self) -> list[dict[str, Any]]:
        return self.content["models"]

    def export(self, fmt: str, *, pending: dict[str, Any] | None = None) -> bytes:
        """The report in ``fmt`` ("pdf", "html", "csv" or "xlsx") as bytes (for downloads);
        ``pending``: the month's pending restatement, shown beside the final figures
        (valuetrack.reports.export.pending_for)."""
        from valuetrack.reports.render import render

        return render(self, fmt, pending=pending)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "month": self.month, "status": self.status, "as_of": self.as_of,
                "created_at": self.created_at, "created_by": self.created_by, "version": self.version,
                "inputs_hash": self.inputs_hash, "supersedes": self.supersedes, "content": self.content}


# ------------------------------------------------------------------------------------------------
# building


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """First and last day of ``month`` (YYYY-MM); ValidationError naming --month otherwise."""
    try:
        first = dt.datetime.strptime(month, "%Y-%m").date()
    except (TypeError, ValueError):
        raise ValidationError(f"--month: {month!r} is not a month YYYY-MM") from None
    return first, dt.date(first.year, first.month, calendar.monthrange(first.year, first.month)[1])


def previous_month(month: str) -> str:
    first, _ = month_bounds(month)
    return (first - dt.timedelta(days=1)).strftime("%Y-%m")


def check_month(month: str, as_of: dt.date) -> tuple[dt.date, dt.date]:
    first, last = month_bounds(month)
    if first > as_of - dt.timedelta(days=1):
        raise ValidationError(f"--month {month} has not started as of {as_of} (figures run to the day before "
                              f"the as-of date): there is nothing to report yet")
    return first, last


def inputs_hash(ctx: Context, *, month: str, as_of: dt.date, alpha: float = 0.05) -> str:
    """sha256 over what the report's numbers depend on: the month, and the ledger valuation it reads
    (whose input hash covers every model's spec, revision and stored aggregates, the as-of date,
    alpha and the library version). Same hash, same numbers."""
    from valuetrack import ledger

    row = ledger.asof(ctx, as_of, alpha=alpha)
    return sha256_json({"month": month, "as_of": row["as_of"], "valuation": row["input_hash"], "alpha": alpha,
                        "currency": row["currency"], "version": __version__, "var": ctx.var.latest(row["as_of"])})


def build_snapshot(ctx: Context, *, month: str, as_of: dt.date | None = None, alpha: float = 0.05,
                   previous: Snapshot | None = None, inputs: str | None = None,
                   restatement: dict[str, Any] | None = None) -> Snapshot:
    """Run the report definition for ``month`` as of ``as_of`` (default: today, UTC).

    Args:
        ctx: the context (settings, registry, app database).
        month: the report month, YYYY-MM. A month that has not started raises ValidationError; a
            month with no live model gives a report that says so.
        as_of: the date the figures are computed as of.
        alpha: 1 − interval level.
        previous: the previous snapshot of the same month (default: the latest stored one), whose
            figures this one's are compared with (provisional → final).
        inputs: the inputs hash when already computed.
        restatement: a restatement a person applies (valuetrack.reports.restate): the figures are
            the newest valuation's, not the final version's, and the content records it (version,
            who, when, why, the per-model differences) instead of comparing with ``previous``.

    Returns:
        An unsaved :class:`Snapshot` (``SnapshotStore.save`` stores it).
    """
    from valuetrack import ledger

    as_of = as_of or today_utc()
    first, last = check_month(month, as_of)
    inputs = inputs or inputs_hash(ctx, month=month, as_of=as_of, alpha=alpha)
    snapshots = ctx.snapshots
    if previous is None:
        previous = snapshots.latest(month)

    # read, never valued here; a restatement reads the newest valuation, not the final version in force
    pv = ledger.portfolio(ctx, as_of=as_of, month=month, alpha=alpha, frozen=restatement is None)
    as_of = pv.as_of
    records = {r["model_name"]: r for r in ctx.ledger.models(pv.asof_id)}
    live_months: dict[str, list[Any]] = {}
    for row in ctx.ledger.monthly(pv.asof_id, live=True):
        live_months.setdefault(row["model_name"], []).append(ledger.ModelValue.from_dict(row["figures"]))
    registered = {r.name: r for r in ctx.registry.list()}
    currency = pv.currency
    prev_month = previous_month(month)
    prev_first, _ = month_bounds(prev_month)

    models: list[dict[str, Any]] = []
    prev_nets: dict[str, float | None] = {}
    refreshes: dict[str, dict[str, Any]] = {}
    not_valued = []
    for mv in pv.models:
        reg = registered[mv.model]
        record = records.get(mv.model)
        if record is None or mv.state != "ok":  # not valued this time: the report says why, the totals leave it out
            not_valued.append({"model": mv.model, "display_name": mv.display_name, "error": mv.error,
                               "last_valued": _iso(mv.last_valued)})
            continue
        detail = record["detail"]
        months = live_months.get(mv.model, [])
        live_from = ledger.parse_date(detail.get("live_from"))
        live_to = ledger.parse_date(detail.get("live_to"))
        d = _jsonable(mv.to_dict())
        d["live_from"] = _iso(live_from)
        d["live_to"] = _iso(live_to)
        d["registered_at"] = _iso(reg.created_at.date() if reg.created_at else None)
        d["kpi_unit"] = reg.spec.kpi.unit
        d["model_currency"] = reg.spec.currency or pv.currency  # of the manifest's amounts, design and decisions
        d.update(_amounts(reg.spec, live_from, mv.period_end))
        d["higher_is_better"] = reg.spec.kpi.higher_is_better
        source = reg.spec.cost_source
        d["cost_source"] = ({"table": source.table, "settle_days": source.settle_days, "share": source.share,
                             "price_per_unit": source.price_per_unit} if source is not None else None)
        d["window_days"] = reg.spec.attribution.window_days
        d["outcome_lag_days"] = reg.spec.attribution.outcome_lag_days
        d["active_in_month"] = bool(live_from is not None and live_from <= mv.period_end
                                    and (live_to is None or live_to >= first))
        d["months"] = [_month_row(m) for m in months if m.period_start <= last][-HISTORY_MONTHS:]
        prev = next((m for m in months if m.period_start.strftime("%Y-%m") == prev_month), None)
        prev_nets[mv.model] = None if prev is None else (prev.net if prev.net is not None else -prev.cost)
        d["timeline"] = _timeline(ctx.ledger.timeline(pv.asof_id, mv.model), last, as_of)
        d["to_date"] = _to_date(record["figures"])
        # annotations, excluded windows and overrides as the valuation used them (D36, D37); the
        # month's overrides and adjusted net value are in the month's figures
        # the manifest's own annotations (new versions) too, as the model page draws them: numbered m1, m2 ...
        from_manifest = [{"kind": "annotation", "id": f"m{i}", "category": "release", "start": a.date.isoformat(),
                          "text": a.label, "created_by": "the manifest", "created_at": None}
                         for i, a in enumerate(reg.spec.annotations, 1)]
        d["model_notes"] = [n for n in [*from_manifest, *(detail.get("notes") or [])]
                            if n.get("kind") != "annotation" or (n.get("start") or "") <= _iso(last)]
        d["exclusions"] = record["figures"].get("exclusions")
        d["notes"] = _notes(d, first, last, month)
        status = detail.get("refresh") or {}
        ok = status.get("last_ok") or {}
        refreshes[mv.model] = ok
        d["refresh"] = {"finished_at": _iso(ok.get("finished_at")), "as_of": _iso(ok.get("as_of")),
                        "mature_through": _iso(ok.get("mature_through")), "cost": _jsonable(ok.get("cost")),
                        "stale": bool(status.get("stale")), "stale_reason": status.get("reason")}
        d["flags"] = [_jsonable(f.to_dict()) for f in pv.flags if f.model == mv.model]
        d["verdict"] = _verdict(d)
        models.append(d)

    totals = _jsonable(pv.totals)
    reasons = _provisional_reasons(models, first, last, pv.period_end, pv.as_of)
    status = "provisional" if reasons else "final"
    order = sorted(models, key=lambda m: (not m["active_in_month"], -(m["net"] if m["net"] is not None else -m["cost"])))
    active = [m for m in order if m["active_in_month"]]
    # top and bottom lists only rank estimates that can be relied on
    with_net = [m for m in active if m["net"] is not None and m["trusted"]
                and not any(f["type"] == "untrustworthy" for f in m["flags"])]

    prev_snap = snapshots.latest(prev_month)
    # the totals the sentence compares are the headline's: after the overlap deduction (the previous
    # month's as its snapshot, or this valuation, gives it)
    periods = (ctx.ledger.asof_by_id(pv.asof_id) or {}).get("periods") or {}
    prev_period = (prev_snap.totals if prev_snap is not None
                   else (periods.get(prev_month) or {}).get("totals"))
    changes = _changes(models, prev_nets, prev_snap, pv.flags, prev_month, first, prev_first,
                       totals=(None if prev_period is None else prev_period.get("net"), totals["net"]))
    restated = restatement or (_restatement(previous, models, totals) if previous is not None else None)

    content = {
        "kind": "valuetrack.monthly_report",
        "schema": 1,
        "month": month,
        "title": f"Model value report: {first.strftime('%B %Y')}",
        "status": status,
        "provisional_reasons": reasons,
        "period_start": _iso(pv.period_start if pv.period_end >= pv.period_start else first),
        "period_end": _iso(pv.period_end),
        "month_start": _iso(first),
        "month_end": _iso(last),
        "as_of": _iso(as_of),
        "asof_id": pv.asof_id,  # the ledger valuation whose figures these are (a final month's version pins it)
        "final_version": restatement["version"] if restatement else None,  # set when the snapshot is issued final
        "currency": currency,
        "alpha": alpha,
        "prior": pv.prior,
        "totals": totals,
        "models": order,
        "flags": [_jsonable(f.to_dict()) for f in pv.flags],
        "not_valued": not_valued,
        "summary": {
            "live_models": len(active),
            "registered_models": len(models),
            "top": [m["model"] for m in with_net[:3] if (m["net"] or 0) > 0],
            "bottom": [m["model"] for m in reversed(with_net[-3:]) if (m["net"] or 0) < 0],
            "no_activity": [m["model"] for m in order if not m["active_in_month"]],
            "flagged": sorted({f.model for f in pv.flags}),
        },
        "changes": changes,
        "restatement": restated,
        # the portfolio's value at risk as the last refresh at or before the as-of date stored it
        "var": _jsonable(ctx.var.latest(as_of)),
        "provenance": _provenance(models, refreshes, as_of, inputs, ctx),
    }
    return Snapshot(month=month, status=status, as_of=as_of, inputs_hash=inputs, content=content,
                    created_at=dt.datetime.now(dt.timezone.utc), created_by=getattr(ctx.actor, "name", "") or "",
                    supersedes=previous.id if previous is not None else None)


# ------------------------------------------------------------------------------------------------
# helpers


def _amounts(spec: Any, launch: dt.date | None, end: dt.date) -> dict[str, Any]:
    """The registered amounts as the report shows them: those in effect at the period's end (a
    number each), each dated amount's history, and the one-off costs (total and events)."""
    from valuetrack.registry.spec import AMORTISATION_MONTHS, amount_on, one_off_events, one_off_total, steps

    out: dict[str, Any] = {"value_per_unit": amount_on(spec.kpi.value_per_unit, end),
                           "monthly_cost": amount_on(spec.monthly_cost, end),
                           "cost_per_1k_predictions": amount_on(spec.cost_per_1k_predictions, end),
                           "one_off_costs": one_off_total(spec.one_off_costs),
                           "amortisation_months": spec.amortisation_months or AMORTISATION_MONTHS}
    history = []
    for key, value in (("monthly_cost", spec.monthly_cost), ("cost_per_1k_predictions", spec.cost_per_1k_predictions),
                       ("value_per_unit", spec.kpi.value_per_unit)):
        if isinstance(value, tuple):
            history += [{"field": key, "from": _iso(s.start), "amount": s.amount} for s in steps(value)]
    out["amount_history"] = history
    out["one_off_events"] = [{"on": _iso(e.on), "amount": e.amount, "label": e.label}
                             for e in one_off_events(spec.one_off_costs, launch)] if launch else []
    return out


def _month_row(m: Any) -> dict[str, Any]:
    return {"month": m.period_start.strftime("%Y-%m"), "start": _iso(m.period_start), "end": _iso(m.period_end),
            "gross": num(m.gross), "cost": num(m.cost), "net": num(m.net) if m.net is not None else num(-m.cost),
            "ci_net": [num(x) for x in m.ci_net] if m.ci_net else None, "provisional": bool(m.provisional),
            "estimated": m.net is not None, "amortisation": num(m.amortisation),
            "net_fully_loaded": num(m.net_fully_loaded) if m.net_fully_loaded is not None else num(-m.cost_fully_loaded)}


def _timeline(series: dict[str, Any] | None, last: dt.date, as_of: dt.date) -> dict[str, Any] | None:
    """The uplift chart's series from the ledger, up to the end of the report month, downsampled."""
    if series is None:
        return {"kind": "none", "reason": f"no chart: the daily timeline of the valuation as of {as_of} is not kept "
                                          "(the ledger keeps it for the newest valuation and month-ends)"}
    columns = series.get("timeline") or {}
    if not columns or not columns.get("day"):
        return None
    frame = pd.DataFrame(columns)
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    frame = frame[frame["day"] <= last]
    if not len(frame):
        return None
    step = max(1, math.ceil(len(frame) / TIMELINE_POINTS))
    keep = list(range(0, len(frame), step))
    if keep[-1] != len(frame) - 1:
        keep.append(len(frame) - 1)
    frame = frame.iloc[keep]
    if "cum_gross" in frame.columns or "ci_lo" in frame.columns:
        cols = ["day", "effect", "ci_lo", "ci_hi", "cs_lo", "cs_hi", "provisional", "cum_gross", "cum_gross_se"]
        kind = "ab"
    else:
        cols = ["day", "actual", "counterfactual", "lower", "upper", "cum_value", "cum_lower", "cum_upper"]
        kind = "ts"
    cols = [c for c in cols if c in frame.columns]
    return {"kind": kind, **{c: [_cell(v) for v in frame[c].tolist()] for c in cols}}


def _to_date(v: dict[str, Any]) -> dict[str, Any] | None:
    """The model's figures from launch to the as-of date (what flags and payback are judged on), as
    the ledger holds them."""
    if v.get("live_days", 0) <= 0 and v.get("gross") is None and not v.get("cost"):
        return None
    return {k: v.get(k) for k in ("period_start", "period_end", "gross", "cost", "net", "ci_net", "roi",
                                  "prob_positive", "payback_date", "live_days", "amortisation", "cost_fully_loaded",
                                  "net_fully_loaded", "roi_fully_loaded", "net_adjusted", "override_amount")}


def _notes(d: dict[str, Any], first: dt.date, last: dt.date, month: str) -> list[str]:
    """Plain-language notes on what the model's figures for the month cover."""
    notes = []
    live_from = dt.date.fromisoformat(d["live_from"]) if d["live_from"] else None
    live_to = dt.date.fromisoformat(d["live_to"]) if d["live_to"] else None
    days = (last - first).days + 1
    if live_from is None:
        notes.append("No data has arrived for this model yet: there is no value or cost to report.")
    elif live_from > last:
        notes.append(f"Not live in {month}: it went live on {live_from}. No value or cost is counted this month.")
    elif live_from > first:
        covered = (min(last, dt.date.fromisoformat(d["period_end"])) - live_from).days + 1
        notes.append(f"Went live mid-month, on {live_from}: the month covers {covered} of its {days} days, "
                     "and the monthly cost is pro-rated from that day.")
    if d["status"] == "retired":
        if live_to is None:
            notes.append("Retired.")
        elif live_to < first:
            notes.append(f"Retired: it last served on {live_to}, before {month}. No value or cost is counted this month.")
        elif live_to <= last:
            notes.append(f"Retired during the month: it last served on {live_to}; its cost stops on that day.")
        else:
            notes.append(f"Retired after {month} (last served on {live_to}).")
    if d["active_in_month"] and d["net"] is None:
        notes.append(f"No value estimate yet ({d['reason'] or 'no estimate'}): only its cost is counted.")
    b, source = d.get("cost_billing"), d.get("cost_source")
    if d["active_in_month"] and b and source:
        lag = f"a day counts once {source['settle_days']} days old"
        if not b["billed_days"]:
            notes.append(f"Its cost is the manifest's estimate: no day of the bill ({source['table']}) has settled yet "
                         f"({lag}).")
        elif b["estimated_days"]:
            notes.append(f"Its cost is the bill ({source['table']}) through {b['settled_through']}, and the manifest's "
                         f"estimate for the {b['estimated_days']} days after, not settled yet ({lag}).")
        else:
            notes.append(f"Its cost is the bill ({source['table']}), every day settled.")
    if d["provisional"]:
        notes.append(f"Provisional: some of this month's cohorts are not yet mature (outcomes are counted for "
                     f"{d['window_days']} days after exposure and may land {d['outcome_lag_days']} days late).")
    return notes


def _verdict(d: dict[str, Any]) -> str:
    """One sentence: can the estimate be relied on, and what does it say."""
    if d["net"] is None:
        return "No estimate yet."
    if not d["trusted"]:
        return "Do not rely on this estimate: the method failed its checks (see below)."
    if any(f["type"] == "untrustworthy" for f in d.get("flags", [])):
        return "Do not rely on this estimate: the measurement is not trustworthy (see flags)."
    lo, hi = d["ci_net"] or (None, None)
    pct = round(100 * (1 - d["alpha"]))
    if lo is not None and lo > 0:
        return f"Creates value net of its cost ({pct}% interval above zero)."
    if hi is not None and hi < 0:
        return f"Loses money net of its cost ({pct}% interval below zero)."
    return f"Not conclusive this month: the {pct}% interval includes zero."


def _provisional_reasons(models: list[dict[str, Any]], first: dt.date, last: dt.date, period_end: dt.date,
                         as_of: dt.date) -> list[str]:
    reasons = []
    if period_end < last:
        reasons.append(f"the month is not over: figures run to {period_end}")
    immature = [m["model"] for m in models if m["active_in_month"] and m["provisional"]]
    if immature:
        reasons.append("cohorts of the month are not yet mature for " + ", ".join(immature))
    unrefreshed = []
    for m in models:
        mt = m["refresh"]["mature_through"]
        # the last cohort day a refresh as of this date would find mature: a refresh as of an earlier
        # date found fewer (one as of this date leaves nothing more to mature: no advice to refresh)
        possible = as_of - dt.timedelta(days=m["window_days"] + m["outcome_lag_days"])
        if (m["active_in_month"] and m["status"] == "active" and m["method"] == "ab" and mt
                and dt.date.fromisoformat(mt) < min(last, period_end, possible) and m["model"] not in immature):
            unrefreshed.append(m["model"])
    if unrefreshed:
        reasons.append("the last refresh predates the maturity of the month's cohorts for " + ", ".join(unrefreshed)
                       + " (run `valuetrack refresh`)")
    return reasons


def _changes(models: list[dict[str, Any]], prev_nets: dict[str, float | None], prev_snap: Snapshot | None,
             flags: list[Any], prev_month: str, first: dt.date, prev_first: dt.date,
             totals: tuple[float | None, float | None] = (None, None)) -> dict[str, Any]:
    """What changed since the previous month: net per model, and flags raised or cleared.
    ``totals``: the portfolio's total net value of the previous month and of this one, as their
    headlines show it (after the overlap deduction); without one, the sum of the models' rows."""
    source = "computed"
    if prev_snap is not None:
        stored = {m["model"]: (m["net"] if m["net"] is not None else -m["cost"]) for m in prev_snap.models
                  if m.get("active_in_month", True)}
        prev_nets = {name: stored.get(name) for name in {*stored, *prev_nets}}
        source = f"snapshot {prev_snap.id} ({prev_snap.status}, as of {prev_snap.as_of})"
    rows = []
    for m in models:
        now = (m["net"] if m["net"] is not None else -m["cost"]) if m["active_in_month"] else None
        before = prev_nets.get(m["model"])
        if now is None and before is None:
            continue
        rows.append({"model": m["model"], "net_previous": before, "net": now,
                     "delta": (now or 0.0) - (before or 0.0),
                     "change": "new" if before is None else ("stopped" if now is None else "changed")})
    rows.sort(key=lambda r: -abs(r["delta"]))
    prev_total = sum(v for v in prev_nets.values() if v is not None) if any(v is not None for v in prev_nets.values()) else None
    now_total = sum(r["net"] for r in rows if r["net"] is not None)
    if prev_total is not None and totals[0] is not None:
        prev_total = totals[0]
    if totals[1] is not None:
        now_total = totals[1]
    flagged_now = {(f.model, f.type) for f in flags}
    new_flags = cleared = None
    if prev_snap is not None:
        flagged_before = {(f["model"], f["type"]) for f in prev_snap.content.get("flags", [])}
        new_flags = [{"model": m, "type": t} for m, t in sorted(flagged_now - flagged_before)]
        cleared = [{"model": m, "type": t} for m, t in sorted(flagged_before - flagged_now)]
    return {"previous_month": prev_month, "source": source, "net_previous": prev_total, "net": now_total,
            "delta": None if prev_total is None else now_total - prev_total, "models": rows,
            "new_flags": new_flags, "cleared_flags": cleared}


def _counted(m: dict[str, Any] | None) -> float:
    """What a model adds to the month's total: its net value, or minus its cost without an estimate."""
    if m is None or not m.get("active_in_month", True):
        return 0.0
    return m["net"] if m["net"] is not None else -(m.get("cost") or 0.0)


def _restatement(previous: Snapshot, models: list[dict[str, Any]], totals: dict[str, Any]) -> dict[str, Any]:
    """How this issue's figures differ from the previous issue of the same month (provisional →
    final): the models whose figures moved, with their net value as counted in the total (minus
    the cost of a model without an estimate), in the shape of valuetrack.ledger.differences."""
    before = {m["model"]: m for m in previous.models}
    after = {m["model"]: m for m in models}
    rows = []
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        nb, na = _counted(b), _counted(a)
        cb, ca = (b or {}).get("cost") or 0.0, (a or {}).get("cost") or 0.0
        cib, cia = (b or {}).get("ci_net"), (a or {}).get("ci_net")
        if abs(na - nb) < 0.005 and abs(ca - cb) < 0.005 and (b is None) == (a is None) and cib == cia:
            continue
        rows.append({"model": name, "display_name": (a or b)["display_name"],
                     "change": "new" if b is None else "removed" if a is None else "changed",
                     "net_before": nb if b is not None else None, "net_after": na if a is not None else None,
                     "delta": na - nb, "estimated_before": bool(b and b["net"] is not None),
                     "estimated_after": bool(a and a["net"] is not None),
                     "gross_before": (b or {}).get("gross"), "gross_after": (a or {}).get("gross"),
                     "cost_before": cb if b is not None else None, "cost_after": ca if a is not None else None,
                     "ci_net_before": cib, "ci_net_after": cia})
    rows.sort(key=lambda r: (-abs(r["delta"]), r["model"]))
    tb, ta = previous.totals.get("net"), totals.get("net")
    delta = None if tb is None or ta is None else ta - tb
    return {"kind": "issue", "snapshot_id": previous.id, "status": previous.status, "as_of": _iso(previous.as_of),
            "created_at": _iso(previous.created_at), "net_before": tb, "net_after": ta, "delta": delta,
            "ci_net_before": previous.totals.get("ci_net"), "ci_net_after": totals.get("ci_net"),
            "portfolio_adjustment": None if delta is None else delta - sum(r["delta"] for r in rows), "models": rows}


def _provenance(models: list[dict[str, Any]], refreshes: dict[str, dict[str, Any]], as_of: dt.date, inputs: str,
                ctx: Context) -> dict[str, Any]:
    starts = [m["data_window"][0] for m in models if m["data_window"] and m["data_window"][0]]
    ends = [m["data_window"][1] for m in models if m["data_window"] and m["data_window"][1]]
    finished = [r["finished_at"] for r in refreshes.values() if r.get("finished_at")]
    elapsed = queries = 0.0
    bytes_scanned = 0.0
    for r in refreshes.values():
        total = (r.get("cost") or {}).get("total") or {}
        elapsed += float(total.get("elapsed_s") or 0.0)
        queries += float(total.get("queries") or 0.0)
        bytes_scanned += float(total.get("bytes_processed") or total.get("bytes_scanned") or 0.0)
    return {
        "as_of": _iso(as_of),
        "data_window": [min(starts) if starts else None, max(ends) if ends else None],
        "refreshed_at": _iso(max(finished)) if finished else None,
        "refreshed_first_at": _iso(min(finished)) if finished else None,
        "query_cost": {"queries": int(queries), "elapsed_s": round(elapsed, 3),
                       "bytes_scanned": bytes_scanned or None},
        "library_version": __version__,
        "registry_revisions": {m["model"]: m["registry_revision"] for m in models},
        "inputs_hash": inputs,
        "store": _redacted_store(ctx),
    }


def _redacted_store(ctx: Context) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(ctx.settings.store_url).render_as_string(hide_password=True)
    except Exception:  # provenance only; never fail the report on it
        return "?"


def sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _iso(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    return v.isoformat() if hasattr(v, "isoformat") else str(v)


def _cell(v: Any) -> Any:
    if isinstance(v, (bool,)) or v is None:
        return v
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return num(v)
    return _iso(v) if isinstance(v, (dt.date, dt.datetime, pd.Timestamp)) else v


def _jsonable(value: Any) -> Any:
    """JSON-safe copy: NaN/inf → None, dates → ISO strings, numpy scalars → Python, tuples → lists."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return _iso(value)
    if hasattr(value, "to_dict") and not isinstance(value, (str, bytes, pd.DataFrame)):
        return _jsonable(value.to_dict())
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
