"""Flags: models delivering no value, each a decision about money tested against its own null.

Rules (docs/methods-value.md has the reasoning and the calibration):

- ``untrustworthy``: the measurement cannot be trusted (sample-ratio mismatch by the sequential
  beta-binomial e-value of value/anytime.py, a time-series estimate whose diagnostics failed, or
  stale data: no exposures for more than ``STALE_AFTER_DAYS``). Money flags are not raised on an
  untrusted estimate.
- ``destroying_value``: the value per treated unit confidently below zero (H0: value per unit ≥ 0).
- ``not_covering_cost``: the value per treated unit confidently below the break-even per unit,
  (1 + min_roi) × cost ÷ treated units (H0: value per unit ≥ break-even); not raised on a model
  flagged ``destroying_value``.
- ``guardrail_breach``: a guardrail KPI (``[[guardrails]]``) harmed beyond its tolerance: one-sided
  mixture e-values of H0: harm per treated unit ≤ tolerance, the model's guardrails one family (their
  mean e-value), e-BH across the portfolio at ``q`` (value/anytime.py::guardrail_flags).
- ``unproven``: live for at least ``unproven_after_days``, the interval of gross value (the
  always-valid one for A/B models) still holds both 0 and break-even, and the detectable gross value
  at 80 % power is larger than break-even: a statement about power, not an effect.

The money flags stay valid under daily looks: A/B models by one-sided mixture e-values with e-BH
over both flags of every model at ``q``; time-series models at scheduled looks after launch, BH at
``q / 12`` per type (value/anytime.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri  # the normal quantile: scipy.stats.norm.ppf's own function, without importing scipy.stats

from valuetrack.attribution.sequential import cs_multiplier
from valuetrack.formatting import kpi_amount, p_value, plain
from valuetrack.jsonsafe import num
from valuetrack.value import anytime
from valuetrack.value.roi import one_sided_p_below



@dataclass(frozen=True)
class FlagRule:
    """One kind of flag: the one table pages, reports, the JSON schema and the docs read.

    Attributes:
        type: the flag's id in JSON and the ledger.
        label: how pages name it ("Destroying value").
        short: how report sentences name it ("destroys value").
        icon: Markdown icon for pages (Streamlit's bundled Material icons).
        severity: how bad it is, higher is worse (a model's flag getting worse is an "escalated"
            notification; reports list the worst first).
        null: the null hypothesis it tests (or that it is rule-based).
        action: the recommended action in general (each flag's own ``action`` adds its numbers).
    """

    type: str
    label: str
    short: str
    icon: str
    severity: int
    null: str
    action: str


RULES: tuple[FlagRule, ...] = (
    FlagRule("untrustworthy", "Untrustworthy measurement", "untrustworthy", ":orange[:material/report:]", 4,
             "SRM: the planned split; otherwise rule-based (stale exposures, failed method checks)",
             "fix the measurement first (logging, arms, the method's diagnostics); no money flag is raised on it"),
    FlagRule("destroying_value", "Destroying value", "destroys value", ":red[:material/trending_down:]", 5,
             "H0: value per treated unit ≥ 0",
             "switch the model off or roll back, then investigate why it hurts its KPI"),
    FlagRule("not_covering_cost", "Not covering its cost", "not covering cost", ":red[:material/money_off:]", 3,
             "H0: value per treated unit ≥ break-even per unit, (1 + min_roi) × cost ÷ treated units",
             "cut its cost (serving, licences, people) or retire it"),
    FlagRule("guardrail_breach", "Guardrail breached", "breaches a guardrail", ":red[:material/gpp_bad:]", 6,
             "H0: harm per treated unit ≤ tolerance, for every guardrail of the model (one family)",
             "roll back or fix what harms the guardrail KPI; raise the tolerance only if the business accepts the harm"),
    FlagRule("methods_disagree", "Methods disagree", "methods disagree", ":orange[:material/call_split:]", 2,
             "H0: the holdout's and the time series' totals over the same days are equal (two-sided, α/6 at each scheduled look)",
             "find which measurement is biased (a leaking control series, a broken holdout, a concurrent launch) before trusting either"),
    FlagRule("unproven", "Unproven", "unproven", ":gray[:material/help:]", 1,
             "none: a statement about power (the interval holds 0 and break-even, the detectable value exceeds break-even)",
             "enlarge the holdout or run longer, or decide on other grounds"),
)
"""Every flag type, in display order."""
RULE = {r.type: r for r in RULES}
FLAG_TYPES = tuple(r.type for r in RULES)
FLAG_SEVERITY = {r.type: r.severity for r in RULES}
SRM_ALPHA = 0.001
STALE_AFTER_DAYS = 7
POWER = 0.8


@dataclass(frozen=True)
class Flag:
    """One flag on one model.

    Attributes:
        model: the model's name.
        type: one of FLAG_TYPES.
        reason: plain-language reason with the numbers behind it.
        action: what to do next.
        p_value: the one-sided p-value of the test behind it (None for rule-based flags).
        evidence: the numbers behind the flag.
        at_stake: the money at stake (:func:`at_stake`), set by the valuation and stored with the
            flag in the ledger; orders flags of one severity (:func:`ordered`).
    """

    model: str
    type: str
    reason: str
    action: str
    p_value: float | None
    evidence: dict[str, Any]
    at_stake: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "type": self.type, "reason": self.reason, "action": self.action,
                "p_value": self.p_value, "evidence": self.evidence, "at_stake": self.at_stake}


REQUIRED = ("model", "family", "live_days", "gross", "gross_se", "cost", "net", "min_roi", "unproven_after_days",
            "units", "n_total", "tuning", "n_treatment", "n_control", "treatment_share", "srm_p_value",
            "look", "look_gross", "look_gross_se", "look_cost",
            "method_trusted", "method_reason", "days_since_exposure", "has_data", "currency")
"""Columns of the frame ``evaluate_flags`` takes, one row per active model:

- ``family``: "ab" (tested with e-values) or "ts" (tested at scheduled looks).
- ``gross``, ``gross_se``, ``cost``, ``net``: to-date money; ``units``: treated units behind ``gross``
  (A/B); ``n_total``: units in both arms of the mature cohorts; ``tuning``: planned units at the
  decision horizon (anytime.planned_units); ``n_treatment``, ``n_control``, ``treatment_share``: all
  exposed units per arm and the planned share, for SRM.
- optional ``triangulation``: the holdout-vs-time-series comparison of the model's design (a dict;
  ``methods_disagree`` is raised when it disagrees).
- optional ``srm_log_e``: the model's own sequential SRM log e-value when its design has one (a
  ramp's schedule, a challenger's three arms); otherwise it is computed from the counts and share.
- optional ``guardrails``: per model a list of dicts (valuetrack.value.guardrails.flag_inputs): name,
  harm, unit, tolerance, harm_per_unit, harm_se, n_total; ``guardrail_breach`` tests them.
- ``look``: the last scheduled look reached (time series; 0 before the first) and the gross value,
  its standard error and the cost over launch … launch + look (``look_*``).
"""


def detectable_value(gross_se: Any, alpha: float = 0.05, power: float = POWER) -> np.ndarray:
    """Smallest gross value a two-sided test at ``alpha`` detects with ``power``."""
    return (ndtri(1 - alpha / 2) + ndtri(power)) * np.asarray(gross_se, dtype=float)


def evaluate_flags(portfolio: pd.DataFrame, *, q: float = 0.05, alpha: float = 0.05) -> list[Flag]:
    """Flags for a portfolio given one row per model with the columns in ``REQUIRED``.

    Args:
        portfolio: to-date figures per model (money in the reporting currency).
        q: false discovery rate of the money flags (both types together).
        alpha: interval level for the unproven rule.
    """
    missing = [c for c in REQUIRED if c not in portfolio.columns]
    if missing:
        raise KeyError(f"portfolio lacks columns {missing}")
    df = portfolio.reset_index(drop=True)
    if not len(df):
        return []
    col = lambda c: df[c].to_numpy(dtype=float)  # noqa: E731
    is_ab = (df["family"] == "ab").to_numpy()
    flags: list[Flag] = []

    n_t, n_c, share = col("n_treatment"), col("n_control"), col("treatment_share")
    srm_testable = is_ab & (n_t + n_c > 0) & (share > 0) & (share < 1)
    srm_log_e = np.where(srm_testable, anytime.srm_log_e(n_t, n_c, np.where(srm_testable, share, 0.5)), 0.0)
    # designs with their own sequential SRM (a ramp's schedule, a challenger's three arms) pass it in
    given = col("srm_log_e") if "srm_log_e" in df.columns else np.full(len(df), np.nan)
    srm_log_e = np.where(is_ab & np.isfinite(given), given, srm_log_e)
    srm_testable = srm_testable | (is_ab & np.isfinite(given))
    srm_bad = anytime.srm_flags(srm_log_e, srm_testable)
    stale = df["days_since_exposure"].fillna(0).to_numpy() > STALE_AFTER_DAYS
    method_bad = ~df["method_trusted"].fillna(True).astype(bool).to_numpy() & df["has_data"].to_numpy()
    untrusted = srm_bad | stale | method_bad
    for i in np.flatnonzero(untrusted):
        row = df.iloc[i]
        reasons = []
        if srm_bad[i]:
            planned = (f"{int(n_t[i]):,} treated, {int(n_c[i]):,} control against a planned {share[i]:.0%} treated"
                       if np.isfinite(share[i]) else "against the planned allocation of its arms")
            reasons.append(f"the split between arms does not match the planned one ({planned}; sequential SRM "
                           f"e-value {_e(srm_log_e[i])})")
        if stale[i]:
            reasons.append(f"no exposures have arrived for {int(row['days_since_exposure'])} days")
        if method_bad[i]:
            reasons.append(f"the estimate failed its checks: {row['method_reason']}")
        flags.append(Flag(row["model"], "untrustworthy", "Measurement not trustworthy: " + "; ".join(reasons) + ".",
                          _untrusted_action(srm_bad[i], stale[i], method_bad[i]), None,
                          {"srm_p_value": num(row["srm_p_value"]), "srm_log_e_value": num(srm_log_e[i]),
                           "days_since_exposure": num(row["days_since_exposure"])}))

    gross, se, cost, net, units = (col(c) for c in ("gross", "gross_se", "cost", "net", "units"))
    min_roi = col("min_roi")
    eligible = df["has_data"].to_numpy(dtype=bool) & ~untrusted & np.isfinite(gross) & np.isfinite(se)

    # A/B: per-unit value against 0 and against the per-unit break-even, e-values, one e-BH family
    ab = eligible & is_ab & (units > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_unit, per_unit_se, breakeven_unit = gross / units, se / units, (1 + min_roi) * cost / units
    tuning = col("tuning")
    fa = anytime.ab_money_flags(per_unit, per_unit_se, breakeven_unit, col("n_total"), tuning, ab, cost > 0, q)
    # time series: decided at the last scheduled look, on the window launch … launch + look
    look, lg, lse, lc = col("look"), col("look_gross"), col("look_gross_se"), col("look_cost")
    ts = eligible & ~is_ab & (look > 0) & np.isfinite(lg) & np.isfinite(lse)
    p_look_d = one_sided_p_below(lg, lse, 0.0)
    p_look_c = one_sided_p_below(lg - lc, lse, min_roi * lc)
    ft = anytime.ts_money_flags(p_look_d, p_look_c, ts, lc > 0, q)
    destroy = fa["destroying_value"] | ft["destroying_value"]
    not_cover = (fa["not_covering_cost"] | ft["not_covering_cost"]) & ~destroy

    zf = ndtri(1 - alpha / 2)
    z_cs = np.where(is_ab, cs_multiplier(col("n_total"), alpha, tuning), zf)
    z_cs = np.where(np.isfinite(z_cs), z_cs, zf)
    hurdle = min_roi * cost
    breakeven = cost * (1 + min_roi)
    lo, hi = gross - z_cs * se, gross + z_cs * se
    mde = detectable_value(se, alpha)
    old_enough = col("live_days") >= col("unproven_after_days")
    unproven = (eligible & old_enough & ~destroy & ~not_cover & (lo < 0) & (hi > 0) & (lo < breakeven)
                & (hi > breakeven) & (mde > breakeven))

    for i in np.flatnonzero(destroy | not_cover | unproven):  # rows with a money flag only: fast on big portfolios
        row = df.iloc[i]
        cur = row["currency"]
        ev = {"gross": num(gross[i]), "gross_se": num(se[i]), "cost": num(cost[i]), "net": num(net[i]),
              "net_ci": [num(net[i] - zf * se[i]), num(net[i] + zf * se[i])]}
        if is_ab[i]:
            ev.update(decision="always-valid e-value", units=num(units[i]), value_per_unit=num(per_unit[i]),
                      breakeven_per_unit=num(breakeven_unit[i]), log_e_destroying=num(fa["log_e_destroying"][i]),
                      log_e_cost=num(fa["log_e_cost"][i]))
            how_d = f"e-value {_e(fa['log_e_destroying'][i])}, always valid, FDR-controlled across the portfolio"
            how_c = f"e-value {_e(fa['log_e_cost'][i])}, always valid, FDR-controlled across the portfolio"
            p_d, p_c = _p_from_log_e(fa["log_e_destroying"][i]), _p_from_log_e(fa["log_e_cost"][i])
        else:
            ev.update(decision=f"scheduled look at day {int(look[i])}", look=int(look[i]), look_gross=num(lg[i]),
                      look_gross_se=num(lse[i]), look_cost=num(lc[i]))
            how_d = (f"decided at the day-{int(look[i])} look on the first {int(look[i])} days: "
                     f"one-sided p = {p_value(p_look_d[i])}, FDR-controlled across the portfolio")
            how_c = (f"decided at the day-{int(look[i])} look on the first {int(look[i])} days: "
                     f"one-sided p = {p_value(p_look_c[i])}")
            p_d, p_c = float(p_look_d[i]), float(p_look_c[i])
        if destroy[i]:
            flags.append(Flag(row["model"], "destroying_value",
                              f"The model lowers its KPI: gross value {_m(gross[i], cur)} "
                              f"(95% interval {_m(gross[i] - zf * se[i], cur)} to {_m(gross[i] + zf * se[i], cur)}), "
                              f"confidently below zero ({how_d}).",
                              "Switch it off or roll back to the previous version, then investigate why it hurts.",
                              p_d, ev))
        if not_cover[i]:
            target = "its cost" if min_roi[i] == 0 else f"its cost plus the required ROI of {min_roi[i]:.0%}"
            flags.append(Flag(row["model"], "not_covering_cost",
                              f"The model does not cover {target}: net value {_m(net[i], cur)} "
                              f"(95% interval {_m(ev['net_ci'][0], cur)} to {_m(ev['net_ci'][1], cur)}) against "
                              f"a hurdle of {_m(hurdle[i], cur)} ({how_c}).",
                              "Cut its cost (serving, licences, people) or retire it; if the KPI misses value it "
                              "creates, revisit the KPI's value per unit.", p_c, ev))
        if unproven[i]:
            kind = "an always-valid 95% interval" if is_ab[i] else "a 95% interval"
            flags.append(Flag(row["model"], "unproven",
                              f"After {int(row['live_days'])} days the value is still unknown: gross value "
                              f"{_m(gross[i], cur)} with {kind} from {_m(lo[i], cur)} to {_m(hi[i], cur)}, "
                              f"holding both zero and break-even ({_m(breakeven[i], cur)}); only a gross value of "
                              f"{_m(mde[i], cur)} or more would be detected.",
                              "Enlarge the holdout or run longer (see the holdout sizing on the model page), or "
                              "decide on other grounds.", None, {**ev, "detectable_gross": num(mde[i]),
                                                                 "interval": [num(lo[i]), num(hi[i])]}))
    if "guardrails" in df.columns:
        flags += _guardrail_flags(df, eligible & is_ab, tuning, q, alpha)
    if "triangulation" in df.columns:  # a holdout and a time series of the same launch (issue 19)
        for i, tri in enumerate(df["triangulation"]):
            if isinstance(tri, dict) and tri.get("status") == "compared" and tri.get("disagree"):
                flags.append(Flag(df.iloc[i]["model"], "methods_disagree",
                                  f"The holdout and the time series disagree about the first {tri['look']} days: the holdout "
                                  f"puts the total effect at {tri['ab_total']:,.0f} KPI units, the time series at "
                                  f"{tri['ts_total']:,.0f} (difference {tri['difference']:,.0f} ± {1.96 * tri['se']:,.0f}, "
                                  f"p = {tri['p_value']:.2g} against a per-look level of {tri['level']:.3g}).",
                                  "Find which measurement is biased (a leaking control series, a broken holdout, a "
                                  "concurrent launch) before trusting either; the value shown is the holdout's.",
                                  float(tri["p_value"]), {k: tri.get(k) for k in ("look", "ab_total", "ab_se", "ts_total",
                                                                                   "ts_se", "difference", "se", "p_value",
                                                                                   "level")}))
    return ordered(flags)


# -- the worst problem first (docs/decisions.md D42) ----------------------------------------------


def at_stake(expected_loss: float | None, cost: float | None) -> float:
    """The money at stake on a flagged model: its expected loss to date, E[max(0, −net value)] under
    the posterior behind P(net > 0) (``ModelValue.expected_loss``); for a model without an estimate,
    its cost to date (none of it is shown to be earned back)."""
    if expected_loss is not None and math.isfinite(expected_loss):
        return float(expected_loss)
    return float(cost or 0.0)


def with_stakes(flags: list[Flag], values: Any) -> list[Flag]:
    """``flags`` with ``at_stake`` set from each model's to-date figures (``values``: ModelValue
    rows, or anything with ``model``, ``expected_loss`` and ``cost``), in the order of :func:`ordered`."""
    import dataclasses

    by_model = {v.model: at_stake(v.expected_loss, v.cost) for v in values}
    return ordered([dataclasses.replace(f, at_stake=by_model.get(f.model)) for f in flags])


def sort_key(flag: Any) -> tuple:
    """Where a flag goes in every list of flags: the severity of its rule (worst first), then the money
    at stake (most first), then the model's name and the rule's place in ``RULES`` (a stable tie-break).
    Takes a :class:`Flag` or its ``to_dict()`` (a report snapshot's flags); a type no rule knows goes last."""
    get = flag.get if isinstance(flag, dict) else lambda k, d=None: getattr(flag, k, d)
    kind = get("type")
    stake = get("at_stake")
    stake = float(stake) if isinstance(stake, (int, float)) and math.isfinite(stake) else 0.0
    return (-FLAG_SEVERITY.get(kind, -1), -stake, str(get("model")), _PLACE.get(kind, len(_PLACE)))


def ordered(flags: Any) -> list[Any]:
    """The flags worst first (:func:`sort_key`): the one order of the portfolio page, the flags page,
    ``valuetrack flags`` and the reports."""
    return sorted(flags, key=sort_key)


def truncate(flags: Any, limit: int) -> tuple[list[Any], list[Any]]:
    """(shown, hidden): the first ``limit`` flags in :func:`ordered` order and the rest. Cutting from
    the least severe end, no hidden flag is more severe than a shown one ("Needs attention")."""
    flags = ordered(flags)
    return flags[:limit], flags[limit:]


_PLACE = {t: k for k, t in enumerate(FLAG_TYPES)}


def _guardrail_flags(df: pd.DataFrame, eligible: np.ndarray, tuning: np.ndarray, q: float,
                     alpha: float) -> list[Flag]:
    """``guardrail_breach``: each model's guardrails one family, e-BH across the portfolio."""
    lists = [g if isinstance(g, list) else [] for g in df["guardrails"]]
    width = max((len(g) for g in lists), default=0)
    if not width:
        return []
    shape = (len(df), width)
    harm, se, tol, n = (np.full(shape, np.nan) for _ in range(4))
    for i, gs in enumerate(lists):
        for j, g in enumerate(gs):
            harm[i, j], se[i, j] = _nan(g.get("harm_per_unit")), _nan(g.get("harm_se"))
            tol[i, j], n[i, j] = _nan(g.get("tolerance")), _nan(g.get("n_total"))
    ok = eligible[:, None] & ~np.isnan(tol) & (n > 0)
    f = anytime.guardrail_flags(harm, se, tol, n, tuning[:, None], ok, q)
    z_cs = cs_multiplier(n, alpha, tuning[:, None])
    out = []
    for i in np.flatnonzero(f["breach"]):
        rows = []
        for j, g in enumerate(lists[i]):
            half = z_cs[i, j] * se[i, j]
            rows.append({"name": g["name"], "harm": g.get("harm"), "unit": g.get("unit"), "tolerance": num(tol[i, j]),
                         "harm_per_unit": num(harm[i, j]), "harm_se": num(se[i, j]),
                         "interval": [num(harm[i, j] - half), num(harm[i, j] + half)],
                         "log_e_value": num(f["log_e"][i, j]), "breached": bool(f["named"][i, j])})
        named = [r for r in rows if r["breached"]] or sorted(rows, key=lambda r: -(r["log_e_value"] or -np.inf))[:1]
        parts = [f"{r['name']} {'rises' if r['harm'] == 'increase' else 'falls'} by {kpi_amount(abs(r['harm_per_unit']), r['unit'])} "
                 f"per treated unit (always-valid 95% interval of the harm {kpi_amount(r['interval'][0], r['unit'])} "
                 f"to {kpi_amount(r['interval'][1], r['unit'])}) against a tolerance of {kpi_amount(r['tolerance'], r['unit'])}"
                 for r in named]
        joint = "" if any(r["breached"] for r in rows) else (
            " No guardrail clears the bar alone; the evidence is their joint one, led by the one shown.")
        log_e_model = float(f["log_e_model"][i])
        out.append(Flag(df.iloc[i]["model"], "guardrail_breach",
                        "A guardrail is harmed beyond its tolerance: " + "; ".join(parts)
                        + f" (e-value of the model's guardrails {_e(log_e_model)}, always valid, FDR-controlled "
                        f"across the portfolio).{joint}",
                        "Roll back or fix what harms the guardrail KPI; raise its tolerance only if the business "
                        "accepts that harm.", _p_from_log_e(log_e_model),
                        {"decision": "always-valid e-value", "log_e_value": num(log_e_model), "guardrails": rows}))
    return out


def _nan(v: Any) -> float:
    return np.nan if v is None else float(v)


def _e(log_e: float) -> str:
    """An e-value for people: 3 significant digits; past a million the exact size says nothing more."""
    if not np.isfinite(log_e):
        return "n/a"
    return "over 1,000,000" if log_e >= math.log(1e6) else plain(math.exp(log_e))


def _p_from_log_e(log_e: float) -> float | None:
    """The always-valid p-value min(1, 1/E)."""
    return float(min(1.0, math.exp(-log_e))) if np.isfinite(log_e) else None


def _untrusted_action(srm: bool, stale: bool, method: bool) -> str:
    if stale:
        return "Check the exposure logging pipeline for this model; figures resume once data arrives."
    if srm:
        return "Find why units are lost from one arm (logging, bots, redirects) before trusting any number."
    return "Read the method's diagnostics on the model page; add or change control series, or run a holdout."


def _m(v: float | None, currency: str) -> str:
    from valuetrack.formatting import money

    return money(v, currency)
