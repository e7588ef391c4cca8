"""The ledger's read API: what pages, ``value``, ``flags``, ``models show`` and the reports show,
read from one stored valuation (docs/architecture.md). Nothing here computes a figure: every
number comes back exactly as the valuation (valuetrack.valuation) wrote it.

    pv = portfolio(ctx)                          # to date, the newest valuation
    pv = portfolio(ctx, month="2026-05")         # one month of the same valuation
    pv = portfolio(ctx, as_of=date, exact=True)  # what was valued on that date
    rec = model(ctx, "churn-save-offers")        # one model: figures, months, timeline, flag history
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import pandas as pd

from valuetrack.context import Context
from valuetrack.errors import NotFound, ValidationError, ValuetrackError
from valuetrack.value.flags import Flag, ordered
from valuetrack.value.overlap import Overlap
from valuetrack.value.portfolio import ModelValue, PortfolioValue

TO_DATE = "to-date"
LEGACY_TOTALS: dict[str, Any] = {"gross_se": None, "double_counted_se": None, "overlap_warnings": [],
                                 "reconciliation": None}
"""Totals a valuation stored before overlap patterns (migration 0017) lacks: read back as unknown."""


class NotValued(ValuetrackError):
    """No valuation exists for what was asked (the message says which command records one)."""

    code = "not_valued"


@dataclass(frozen=True)
class StoredPortfolio(PortfolioValue):
    """A PortfolioValue read back from the ledger: its totals are the stored ones, not recomputed."""

    stored_totals: dict[str, Any] = field(default_factory=dict)
    asof_id: int = 0
    raised_on: dict[tuple[str, str], dt.date] = field(default_factory=dict, repr=False, compare=False)
    months: tuple[str, ...] = ()
    """Every month the valuation holds figures for, oldest first."""
    final: dict[str, Any] | None = None
    """A final month: the version in force (version, snapshot_id, as_of, created_at/by, reason, delta)
    whose figures these are; None for to date and for months whose report is not final yet."""
    pending: dict[str, Any] | None = None
    """A final month that a newer valuation values differently: that valuation's figures and the
    per-model differences, waiting for a person to apply them (valuetrack.reports.restate_month)."""
    read_id: int = 0
    """The newest valuation the read was made at (``asof_id`` unless a final month pins an older one)."""

    @property
    def totals(self) -> dict[str, Any]:  # type: ignore[override]
        return self.stored_totals

    def flag_dicts(self) -> list[dict[str, Any]]:
        """The flags with the day each was first raised (its history lives in the ledger)."""
        return [{**f.to_dict(), "raised_on": self.raised_on.get((f.model, f.type))} for f in self.flags]

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "flags": self.flag_dicts(), "final": self.final,
                "pending_restatement": self.pending}


@dataclass(frozen=True)
class ModelRecord:
    """One model in one valuation, as stored.

    Attributes:
        value: the figures to date (with health, risk, holdout, payback).
        months: the figures per calendar month, oldest first.
        detail: effect verdict, the method's diagnostics, live span, refresh status.
        timeline: daily series ("timeline", "cumulative", "daily" frames); None when this as-of's
            timeline is not kept (only the newest as-of and month-ends keep theirs).
        flags: the model's flags at this look.
        history: every look at its flags (raised and cleared), oldest first.
        asof: the ledger as-of row (id, as_of, valued_at, reason, provenance).
        state, error, input_hash, refresh_id: the record's state and provenance.
    """

    value: ModelValue
    months: list[ModelValue]
    detail: dict[str, Any]
    timeline: dict[str, pd.DataFrame] | None
    flags: list[Flag]
    history: list[dict[str, Any]]
    asof: dict[str, Any]
    state: str
    error: str | None
    input_hash: str
    refresh_id: int | None
    restated_months: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Final months whose figures here are the final version's, not this valuation's: month →
    {"version", "net" (this valuation's, pending until a person applies it), "final_net"}."""


def asof(ctx: Context, as_of: dt.date | None = None, *, exact: bool = False, alpha: float = 0.05) -> dict[str, Any]:
    """The newest valuation: overall, on or before ``as_of``, or (``exact``) on ``as_of``."""
    row = ctx.ledger.asof(as_of, exact=exact, alpha=alpha)
    if row is None:
        if as_of is not None and ctx.ledger.asof(alpha=alpha) is not None:
            raise NotValued(f"--as-of {as_of}: nothing was valued as of {'that date' if exact else 'that date or earlier'}"
                            + (f" at alpha {alpha}" if alpha != 0.05 else "")
                            + f"; `valuetrack revalue --as-of {as_of}"
                            + (f" --alpha {alpha}" if alpha != 0.05 else "") + "` values it now")
        raise NotValued("nothing has been valued yet: `valuetrack refresh` pulls the data and values every model "
                        "(or `valuetrack revalue` values what is stored)")
    return row


def portfolio(ctx: Context, *, as_of: dt.date | None = None, month: str | None = None, exact: bool = False,
              alpha: float = 0.05, frozen: bool = True) -> StoredPortfolio:
    """Every model's figures to date (or for ``month``), totals, flags and overlaps of one valuation.

    A month whose report is final (``ledger_finals``) reads the valuation its current version pins,
    not the newest one, while the as-of date asked for is not earlier than the version's: a later
    registry change or refresh does not rewrite it. When the newest valuation values the month
    differently, ``pending`` carries those figures and the per-model differences, to be applied by
    a person (valuetrack.reports.restate). ``frozen=False`` reads the newest valuation's figures
    (what a restatement applies)."""
    if month is not None:
        _check_month(month)
    row = asof(ctx, as_of, exact=exact, alpha=alpha)
    fin = ctx.ledger.final(month) if month is not None and frozen else None
    if fin is None or fin["alpha"] != row["alpha"] or parse_date(fin["as_of"]) > row["as_of"]:
        return _read(ctx, row, month)
    pinned = _read(ctx, ctx.ledger.asof_by_id(fin["asof_id"]), month)
    pending = None
    if fin["asof_id"] != row["id"]:
        pending = differences(pinned, _read(ctx, row, month), version=fin["version"])
    return dataclasses.replace(pinned, final=_final_info(fin), pending=pending, read_id=row["id"])


def _final_info(fin: Mapping[str, Any]) -> dict[str, Any]:
    return {"month": fin["month"], "version": fin["version"], "snapshot_id": fin["snapshot_id"],
            "as_of": parse_date(fin["as_of"]), "asof_id": fin["asof_id"], "created_at": fin["created_at"],
            "created_by": fin["created_by"], "reason": fin["reason"], "net_before": fin["net_before"],
            "net_after": fin["net_after"], "delta": fin["delta"]}


def finals(ctx: Context, month: str) -> list[dict[str, Any]]:
    """Every version of a final month, oldest first (version 1: the first final report; then each
    restatement with who, when, why, by how much and the per-model differences)."""
    return [{**_final_info(f), "differences": f["differences"]} for f in ctx.ledger.finals(month)]


CENT = 0.005  # differences under half a cent are rounding, not a restatement


def counted_net(m: ModelValue | None) -> float:
    """What a model adds to the month's total: its net value, or minus its cost while it has no
    estimate (the totals count the cost of a model without an estimate)."""
    if m is None or m.state != "ok":
        return 0.0
    return m.net if m.net is not None else -m.cost


def differences(before: StoredPortfolio, after: StoredPortfolio, *, version: int | None = None) -> dict[str, Any] | None:
    """How ``after`` (a newer valuation) values the month against ``before`` (the final version in
    force): the models whose figures changed, each with its net value (as counted in the total),
    gross value and cost before and after, and the portfolio-level rest (overlap deductions); None
    when nothing differs by half a cent or more. The one computation behind the pending
    restatement shown on the pages, in ``value --month``, in every report format and applied."""
    b = {m.model: m for m in before.models}
    a = {m.model: m for m in after.models}
    rows = []
    for name in sorted(set(b) | set(a)):
        mb, ma = b.get(name), a.get(name)
        nb, na = counted_net(mb), counted_net(ma)
        gb, ga = (mb.gross if mb else None), (ma.gross if ma else None)
        cb, ca = (mb.cost if mb and mb.state == "ok" else 0.0), (ma.cost if ma and ma.state == "ok" else 0.0)
        cib, cia = (mb.ci_net if mb else None), (ma.ci_net if ma else None)
        ob = (getattr(mb, "override_amount", 0.0) or 0.0) if mb else 0.0  # overrides agreed with finance (D37)
        oa = (getattr(ma, "override_amount", 0.0) or 0.0) if ma else 0.0
        moved = (abs(na - nb) >= CENT or abs(ca - cb) >= CENT or abs((ga or 0.0) - (gb or 0.0)) >= CENT
                 or (gb is None) != (ga is None) or _ci_moved(cib, cia) or abs(oa - ob) >= CENT)
        if not moved:
            continue
        change = "new" if mb is None else "removed" if ma is None else "changed"
        rows.append({"model": name, "display_name": (ma or mb).display_name, "change": change,
                     "net_before": nb if mb is not None else None, "net_after": na if ma is not None else None,
                     "delta": na - nb, "estimated_before": bool(mb and mb.net is not None),
                     "estimated_after": bool(ma and ma.net is not None), "gross_before": gb, "gross_after": ga,
                     "cost_before": cb if mb is not None else None, "cost_after": ca if ma is not None else None,
                     "ci_net_before": list(cib) if cib else None, "ci_net_after": list(cia) if cia else None,
                     "override_before": ob, "override_after": oa})
    tb, ta = before.totals["net"], after.totals["net"]
    delta = ta - tb
    if not rows and abs(delta) < CENT:
        return None
    rows.sort(key=lambda r: (-abs(r["delta"]), r["model"]))
    return {"month": after.period, "version": version, "as_of": after.as_of, "asof_id": after.asof_id,
            "as_of_before": before.as_of, "asof_id_before": before.asof_id,
            "net_before": tb, "net_after": ta, "delta": delta,
            "ci_net_before": before.totals.get("ci_net"), "ci_net_after": after.totals.get("ci_net"),
            "gross_before": before.totals.get("gross"), "gross_after": after.totals.get("gross"),
            "cost_before": before.totals.get("cost"), "cost_after": after.totals.get("cost"),
            "portfolio_adjustment": delta - sum(r["delta"] for r in rows), "models": rows}


def _ci_moved(x: Any, y: Any) -> bool:
    if not x or not y:
        return bool(x) != bool(y)
    return abs(x[0] - y[0]) >= CENT or abs(x[1] - y[1]) >= CENT


def _read(ctx: Context, row: dict[str, Any], month: str | None) -> StoredPortfolio:
    """One valuation's figures to date or for ``month``, as stored."""
    store = ctx.ledger
    periods = row["periods"]
    months = tuple(k for k in periods if k != TO_DATE)
    key = month or TO_DATE
    to_date = {r["model_name"]: r for r in store.models(row["id"], detail=False)}
    if key not in periods:
        last_day = row["as_of"] - dt.timedelta(days=1)
        if month > f"{last_day:%Y-%m}":
            raise ValidationError(f"--month {month} has not started as of {row['as_of']}, the newest valuation on or "
                                  f"before the as-of asked (figures run to {last_day}). To read a later day, value "
                                  "it first: `valuetrack refresh`, or `valuetrack revalue --as-of DATE`.")
        period, values = _before_launch(month, to_date)  # a month before any model went live
    elif month is None:
        period = periods[key]
        values = [ModelValue.from_dict(r["figures"]) for r in to_date.values()]
    else:
        period, values = periods[key], []
        for r in store.monthly(row["id"], month=month):
            total = to_date[r["model_name"]]["figures"] if r["model_name"] in to_date else {}
            # a model not valued this time says so in every period (its months are of its last good data)
            failed = {k: total.get(k) for k in ("state", "error", "last_valued")} if total.get("state", "ok") != "ok" else {}
            values.append(ModelValue.from_dict({**r["figures"], "health": total.get("health"), **failed}))
        shown = {v.model for v in values}
        values += [ModelValue.from_dict(r["figures"]) for name, r in to_date.items()  # not valued: no months at all
                   if name not in shown and r["figures"].get("state", "ok") != "ok"]
    flag_rows = store.flags(row["id"])
    if period["totals"].get("flagged") is None:
        period["totals"]["flagged"] = len({f["model_name"] for f in flag_rows})
    if period.get("prior") is None:
        period["prior"] = periods[TO_DATE]["prior"]
    for k, empty in LEGACY_TOTALS.items():  # valuations stored before these existed say so (null), never guess
        period["totals"].setdefault(k, empty)
    return StoredPortfolio(
        as_of=row["as_of"], period=key, period_start=parse_date(period["start"]), period_end=parse_date(period["end"]),
        currency=row["currency"], alpha=row["alpha"], models=values, flags=ordered([_flag(f) for f in flag_rows]),
        overlaps=[Overlap(**o) for o in period["overlaps"]], prior=period["prior"], stored_totals=period["totals"],
        overlap_patterns=list(period.get("overlap_patterns", [])),
        asof_id=row["id"], raised_on={(f["model_name"], f["type"]): f["raised_on"] for f in flag_rows}, months=months,
        read_id=row["id"])


RANGE_ADDITIVE = ("gross", "cost", "net", "double_counted", "cost_fully_loaded", "net_fully_loaded",
                  "override_amount", "net_adjusted")
"""Portfolio totals that add up across months (money of disjoint periods): a range of months sums them.
A total that is a money amount of the month (an overlap deduction, the cost of models without an
estimate) belongs here; intervals, probabilities and counts do not add up and are left out."""
_MODEL_ADDITIVE = ("treated_units", "predictions", "cost", "cost_one_off", "amortisation", "cost_fully_loaded",
                   "override_amount")


def months_between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` (YYYY-MM, inclusive)."""
    for month in (first, last):
        _check_month(month)
        if not re.fullmatch(r"\d{4}-\d{2}", month):
            raise ValidationError(f"month {month!r} is not a month YYYY-MM (two digits for the month, e.g. 2026-04)")
    if last < first:
        raise ValidationError(f"the range {first} to {last} ends before it starts: give the earlier month first")
    out, m = [], dt.date.fromisoformat(f"{first}-01")
    while f"{m:%Y-%m}" <= last:
        out.append(f"{m:%Y-%m}")
        m = (m + dt.timedelta(days=32)).replace(day=1)
    return out


def portfolio_range(ctx: Context, first: str, last: str, *, as_of: dt.date | None = None,
                    alpha: float = 0.05) -> StoredPortfolio:
    """The portfolio over the whole months ``first`` … ``last`` of one valuation (docs/decisions.md D43).

    One month is :func:`portfolio` of that month, exactly as stored. A range of months sums what the
    ledger stored per month, computing nothing else: per model gross, cost, net, treated units and
    predictions (ROI = net ÷ cost of those sums); the totals in ``RANGE_ADDITIVE``. A range has no
    interval and no P(net > 0): the months' errors are correlated (one effect estimate, a time
    series' shared path), so their variances do not add, and the ledger stores intervals per month
    and to date only. The period key is ``"YYYY-MM..YYYY-MM"``.
    """
    months = months_between(first, last)
    if len(months) == 1:
        return portfolio(ctx, as_of=as_of, month=first, alpha=alpha)
    row = asof(ctx, as_of, alpha=alpha)
    parts = [portfolio(ctx, as_of=row["as_of"], month=m, exact=True, alpha=alpha) for m in months]
    # a final month reads the valuation its version pins (D34); a valuation landed while reading: read again
    if len({p.read_id for p in parts}) > 1:
        return portfolio_range(ctx, first, last, as_of=as_of, alpha=alpha)
    by_model: dict[str, list[ModelValue]] = {}
    for p in parts:
        for v in p.models:
            by_model.setdefault(v.model, []).append(v)
    values = [_sum_months(vs) for vs in by_model.values()]
    totals = {k: sum(float(p.totals.get(k) or 0.0) for p in parts) for k in RANGE_ADDITIVE
              if any(k in p.totals for p in parts)}
    newest = parts[-1]
    totals.update(ci_net=None, prob_positive=None, models=len(values), flagged=newest.totals.get("flagged"),
                  not_valued=sum(1 for v in values if v.state != "ok"), last_valued_included=False,
                  months=len(months))
    totals.update(_range_reconciliation([p.totals for p in parts]))
    return dataclasses.replace(newest, period=f"{first}..{last}", period_start=parts[0].period_start,
                               period_end=newest.period_end, models=values, overlaps=[], stored_totals=totals,
                               final=None, pending=None, asof_id=newest.read_id)


def _range_reconciliation(months: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A range's reconciliation: each step summed over its months (money of disjoint periods, as
    stored), so the range reconciles as each month does; the months' overlap warnings, once each."""
    recs = [t.get("reconciliation") for t in months]
    out: dict[str, Any] = {"gross_se": None, "double_counted_se": None,
                           "overlap_warnings": list(dict.fromkeys(w for t in months for w in t.get("overlap_warnings") or [])),
                           "reconciliation": None}
    if recs and all(r is not None for r in recs):
        out["reconciliation"] = {k: sum(float(r[k]) for r in recs) for k in ("rows", "overlap", "no_estimate_cost")}
        out["reconciliation"]["total"] = sum(float(t["net"]) for t in months)  # the range's net, summed the same way
        out["reconciliation"]["models_without_estimate"] = sorted({m for r in recs for m in r["models_without_estimate"]})
    return out


def _sum_months(months: list[ModelValue]) -> ModelValue:
    """One model over several months: the sums of its stored monthly figures (no interval)."""
    last = months[-1]
    sums = {k: float(sum(getattr(v, k) or 0.0 for v in months)) for k in _MODEL_ADDITIVE}
    grosses = [v.gross for v in months if v.gross is not None]
    gross = float(sum(grosses)) if grosses else None
    net = gross - sums["cost"] if gross is not None else None
    roi = net / sums["cost"] if net is not None and sums["cost"] > 0 else None
    loaded = gross - sums["cost_fully_loaded"] if gross is not None else None
    roi_loaded = loaded / sums["cost_fully_loaded"] if loaded is not None and sums["cost_fully_loaded"] > 0 else None
    adjusted = [v.net_adjusted for v in months if v.net_adjusted is not None]
    overrides = [o for v in months for o in v.overrides or ()]
    # what does not add up across months is left out: intervals, probabilities, the month's risk,
    # the decisions' and the bill's own summaries
    return dataclasses.replace(last, period_start=months[0].period_start, gross=gross, gross_se=None, net=net,
                               ci_net=None, roi=roi, ci_roi=None, prob_positive=None, expected_loss=None,
                               net_fully_loaded=loaded, ci_net_fully_loaded=None, roi_fully_loaded=roi_loaded,
                               ci_roi_fully_loaded=None, risk=None, decisions=None, cost_billing=None,
                               net_adjusted=float(sum(adjusted)) if adjusted else None, overrides=overrides or None,
                               provisional=any(v.provisional for v in months), **sums)


def model(ctx: Context, name: str, *, as_of: dt.date | None = None, exact: bool = False,
          alpha: float = 0.05) -> ModelRecord:
    """One model's record in the newest valuation (or the one of ``as_of``)."""
    row = asof(ctx, as_of, exact=exact, alpha=alpha)
    store = ctx.ledger
    found = store.models(row["id"], name)
    if not found:
        ctx.registry.get(name)  # NotFound with the registry's message when it is not registered at all
        raise NotValued(f"model {name!r} is not in the valuation as of {row['as_of']} (registered since): "
                        "`valuetrack revalue` values it now")
    r = found[0]
    months = [ModelValue.from_dict({**m["figures"], "health": r["figures"].get("health")})
              for m in store.monthly(row["id"], name=name, live=True)]
    months, restated = _final_months(ctx, row, name, months)
    series = store.timeline(row["id"], name)
    timeline = None if series is None else {k: _frame(v) for k, v in series.items()}
    flags = ordered([_flag(f) for f in store.flags(row["id"]) if f["model_name"] == name])
    return ModelRecord(ModelValue.from_dict(r["figures"]), months, r["detail"], timeline, flags, store.flag_history(name),
                       row, r["state"], r["error"], r["input_hash"], r["refresh_id"], restated)


def _final_months(ctx: Context, row: Mapping[str, Any], name: str,
                  months: list[ModelValue]) -> tuple[list[ModelValue], dict[str, dict[str, Any]]]:
    """A model's months with each final month's figures read from the valuation its final version
    pins (as the portfolio's month does), and which of them the newest valuation values differently."""
    current: dict[str, dict[str, Any]] = {}
    for fin in ctx.ledger.finals():  # oldest first: the last row of a month is its version in force
        current[fin["month"]] = fin
    by_month = {f"{m.period_start:%Y-%m}": m for m in months}
    restated: dict[str, dict[str, Any]] = {}
    for month, fin in current.items():
        if fin["asof_id"] == row["id"] or fin["alpha"] != row["alpha"] or parse_date(fin["as_of"]) > row["as_of"]:
            continue
        health = by_month[month].health if month in by_month else None
        pinned = [ModelValue.from_dict({**m["figures"], "health": health})
                  for m in ctx.ledger.monthly(fin["asof_id"], month=month, name=name, live=True)]
        now = by_month.get(month)
        if pinned:
            by_month[month] = pinned[0]
        # a model the final version does not have keeps its newer row, marked as not in the final month
        before, after = counted_net(pinned[0] if pinned else None), counted_net(now)
        if abs(after - before) >= CENT:
            restated[month] = {"version": fin["version"], "final_net": before if pinned else None,
                               "net": after if now is not None else None, "delta": after - before,
                               "in_final": bool(pinned)}
    return [by_month[k] for k in sorted(by_month)], restated


def monthly_nets(ctx: Context, asof_id: int) -> dict[str, list[float | None]]:
    """Net value per live month of every model in the valuation ``asof_id`` (sparklines); a final
    month's figure is its final version's, as everywhere else (D34)."""
    store = ctx.ledger
    current: dict[str, dict[str, Any]] = {}
    for fin in store.finals():  # oldest first: the last row of a month is its version in force
        current[fin["month"]] = fin
    row = store.asof_by_id(asof_id) if current else None
    pinned = {m: f for m, f in current.items() if row is not None and f["asof_id"] != asof_id
              and f["alpha"] == row["alpha"] and parse_date(f["as_of"]) <= row["as_of"]}
    if not pinned:
        return store.monthly_nets(asof_id)
    final = {(name, month): net for month, f in pinned.items()
             for name, _, net in store.monthly_net_rows(f["asof_id"], month=month)}
    out: dict[str, list[float | None]] = {}
    for name, month, net in store.monthly_net_rows(asof_id):
        out.setdefault(name, []).append(final.get((name, month), net) if month in pinned else net)
    return out


def _before_launch(month: str, to_date: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, Any], list[ModelValue]]:
    """A month before any model of the valuation went live: no value, no cost, no estimate."""
    first = dt.date.fromisoformat(f"{month}-01")
    last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    empty = {"period_start": first, "period_end": last, "treated_units": 0.0, "predictions": 0.0, "gross": None,
             "gross_se": None, "cost": 0.0, "net": None, "ci_net": None, "roi": None, "ci_roi": None,
             "net_adjusted": None, "override_amount": 0.0, "overrides": None, "exclusions": None,
             "prob_positive": None, "expected_loss": None, "provisional": False, "payback_date": None}
    values = [dataclasses.replace(ModelValue.from_dict(r["figures"]), **empty) for r in to_date.values()]
    totals = {"gross": 0.0, "gross_se": None, "cost": 0.0, "net": 0.0, "ci_net": None, "prob_positive": None,
              "double_counted": 0.0, "double_counted_se": 0.0, "overlap_warnings": [],
              "reconciliation": {"rows": 0.0, "overlap": 0.0, "no_estimate_cost": 0.0, "total": 0.0,
                                 "models_without_estimate": []},
              "override_amount": 0.0, "net_adjusted": 0.0,
              "models": len(values), "flagged": None, "not_valued": sum(1 for v in values if v.state != "ok"),
              "last_valued_included": False}
    return {"start": first, "end": last, "totals": totals, "overlaps": [], "overlap_patterns": [], "prior": None}, values


def data_version(ctx: Context) -> tuple:
    """Changes whenever the registry changes, a refresh starts or finishes, or a valuation (and its
    value at risk) lands: the readers' cache key (a few indexed lookups)."""
    from valuetrack.store.db import data_version as store_version

    return (*store_version(ctx.engine), latest_id(ctx))


def latest_id(ctx: Context) -> int | None:
    """Id of the newest valuation (a cheap cache key for readers), or None."""
    row = ctx.ledger.asof()
    return row["id"] if row else None


def history(ctx: Context, limit: int = 50) -> list[dict[str, Any]]:
    """The newest valuations with their provenance, newest first."""
    return ctx.ledger.asofs(limit)


# ------------------------------------------------------------------------------------------------


def _flag(row: Mapping[str, Any]) -> Flag:
    return Flag(row["model_name"], row["type"], row["reason"], row["action"], row["p_value"], row["evidence"],
                row.get("at_stake"))


def parse_date(value: Any) -> dt.date | None:
    """A date from the ledger's JSON (ISO text) or a date, or None."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _frame(columns: Mapping[str, list[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(dict(columns))
    if "day" in frame.columns:
        frame["day"] = pd.to_datetime(frame["day"]).dt.date
    return frame


def _check_month(month: str) -> None:
    try:
        dt.datetime.strptime(month, "%Y-%m")
    except (TypeError, ValueError):
        raise ValidationError(f"--month: {month!r} is not a month YYYY-MM") from None


__all__ = ["ModelRecord", "NotFound", "NotValued", "StoredPortfolio", "asof", "counted_net", "data_version", "differences",
           "finals", "history", "latest_id", "model", "months_between", "monthly_nets", "parse_date", "portfolio",
           "portfolio_range"]
