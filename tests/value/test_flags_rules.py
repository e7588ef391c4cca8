"""Each flag rule at its boundary (just inside / just outside), lower-is-better KPIs, a model with no
data yet, min_roi ≠ 0, FDR across the portfolio, and no money flags on an untrusted measurement.

Boundaries are placed from the rules' definitions: with one A/B model in the portfolio, e-BH over
its money hypotheses rejects exactly when the one-sided e-value reaches m / q (m = 1 without a cost,
2 with one). The e-value's closed form is checked against numerical integration in
test_flags_anytime.py; here the boundary z is found by root-finding on it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scipy import optimize

from valuetrack.attribution.sequential import cs_multiplier
from valuetrack.value.anytime import log_e_below
from valuetrack.value.flags import FLAG_TYPES, REQUIRED, STALE_AFTER_DAYS, detectable_value, evaluate_flags
from valuetrack.value.roi import money_value

Q = 0.05
N = 20_000.0  # units in both arms; the mixture is tuned at the same size
EPS = 1e-3  # in standard errors: "just inside" / "just outside"


def boundary_z(threshold: float) -> float:
    """The z (in standard errors below the null) at which the one-sided e-value equals ``threshold``."""
    return optimize.brentq(lambda z: float(log_e_below(z, 1.0, 0.0, N, N)) - np.log(threshold), -20, 0, xtol=1e-12)


Z_ONE = boundary_z(1 / Q)  # one hypothesis in the family (no cost)
Z_TWO = boundary_z(2 / Q)  # two (destroying and not covering) with one rejection


def row(name: str = "model-a", **kw: Any) -> dict[str, Any]:
    """A healthy, trusted model with a clearly valuable estimate; override what the test needs."""
    base = {"model": name, "family": "ab", "live_days": 30, "gross": 5000.0, "gross_se": 100.0, "cost": 1000.0,
            "net": np.nan, "min_roi": 0.0, "unproven_after_days": 90, "units": N / 2, "n_total": N, "tuning": N,
            "n_treatment": N / 2, "n_control": N / 2, "treatment_share": 0.5, "srm_p_value": 0.5,
            "look": 0, "look_gross": np.nan, "look_gross_se": np.nan, "look_cost": np.nan, "method_trusted": True,
            "method_reason": None, "days_since_exposure": 1, "has_data": True, "currency": "USD"}
    base.update(kw)
    if "net" not in kw:
        base["net"] = base["gross"] - base["cost"]
    return base


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(REQUIRED))


def types(flags: list, model: str = "model-a") -> set[str]:
    return {f.type for f in flags if f.model == model}


# --- untrustworthy ---------------------------------------------------------------------------


def test_srm_is_sequential_and_sized_by_the_portfolio() -> None:
    """A correct split is not flagged; a 2.5 % imbalance on 20,000 units is; the e-value equals the
    beta-binomial marginal likelihood ratio computed by scipy; the bar is m / 0.05."""
    from valuetrack.value.anytime import SRM_PRIOR_SD, srm_log_e

    assert "untrustworthy" not in types(evaluate_flags(frame(row())))
    bad = row(n_treatment=10_250.0, n_control=9_750.0)
    flags = evaluate_flags(frame(bad))
    assert types(flags) == {"untrustworthy"} and "planned 50% treated" in flags[0].reason
    # the closed form against scipy's beta-binomial and binomial pmfs (small n, exact)
    conc = 0.25 / SRM_PRIOR_SD**2 - 1
    for k, n in [(60, 100), (510, 1000), (30, 50)]:
        ratio = stats.betabinom.pmf(k, n, 0.5 * conc, 0.5 * conc) / stats.binom.pmf(k, n, 0.5)
        assert float(srm_log_e(k, n - k, 0.5)) == pytest.approx(np.log(ratio), rel=1e-9, abs=1e-9)
    # the bar grows with the number of A/B models: a borderline imbalance flagged alone is not among 40
    e = float(srm_log_e(bad["n_treatment"], bad["n_control"], 0.5))
    assert np.log(20) <= e < np.log(40 / 0.05)
    many = [bad, *[row(f"ok-{i:02d}") for i in range(39)]]
    assert "untrustworthy" not in types(evaluate_flags(frame(*many)))


def test_stale_data_at_its_boundary() -> None:
    assert types(evaluate_flags(frame(row(days_since_exposure=STALE_AFTER_DAYS)))) == set()
    flags = evaluate_flags(frame(row(days_since_exposure=STALE_AFTER_DAYS + 1)))
    assert types(flags) == {"untrustworthy"}
    assert f"{STALE_AFTER_DAYS + 1} days" in flags[0].reason


def test_failed_method_checks_are_untrustworthy_only_with_data() -> None:
    bad = row(method_trusted=False, method_reason="placebo dates show effects as large as the real one")
    flags = evaluate_flags(frame(bad))
    assert types(flags) == {"untrustworthy"} and "placebo" in flags[0].reason
    assert types(evaluate_flags(frame({**bad, "has_data": False, "gross": np.nan, "net": np.nan,
                                       "gross_se": np.nan}))) == set()


def test_untrustworthy_models_get_no_money_flags() -> None:
    # confidently harmful, far below its cost, or inconclusive: the untrusted measurement decides nothing
    harmful = row("harmful", gross=-50_000.0, n_treatment=12_000.0, n_control=8_000.0)
    costly = row("costly", gross=10.0, gross_se=1.0, cost=90_000.0, days_since_exposure=30)
    vague = row("vague", gross=500.0, gross_se=4000.0, live_days=400, method_trusted=False, method_reason="x")
    flags = evaluate_flags(frame(harmful, costly, vague))
    assert {(f.model, f.type) for f in flags} == {("harmful", "untrustworthy"), ("costly", "untrustworthy"),
                                                  ("vague", "untrustworthy")}
    # the same numbers, trusted, raise the money flags (so the test above can fail)
    trusted = evaluate_flags(frame({**harmful, "n_treatment": N / 2, "n_control": N / 2}, {**costly, "days_since_exposure": 1},
                                   {**vague, "method_trusted": True}))
    assert {(f.model, f.type) for f in trusted} == {("harmful", "destroying_value"), ("costly", "not_covering_cost"),
                                                    ("vague", "unproven")}


# --- destroying_value --------------------------------------------------------------------------


@pytest.mark.parametrize("offset, flagged", [(-EPS, True), (+EPS, False)])
def test_destroying_value_at_its_boundary(offset: float, flagged: bool) -> None:
    se = 250.0
    gross = (Z_ONE + offset) * se
    # zero cost isolates the rule (no not_covering_cost); live_days < unproven_after_days (no unproven)
    flags = evaluate_flags(frame(row(gross=gross, gross_se=se, cost=0.0)), q=Q)
    assert types(flags) == ({"destroying_value"} if flagged else set())
    if flagged:  # the always-valid p-value 1/E
        assert flags[0].p_value == pytest.approx(np.exp(-log_e_below(Z_ONE + offset, 1.0, 0.0, N, N)))
        assert flags[0].p_value <= Q and flags[0].evidence["decision"] == "always-valid e-value"
    # a fixed-horizon test would have flagged it (z below −1.645): the price of daily looks
    assert Z_ONE < stats.norm.ppf(Q)


@pytest.mark.parametrize("higher_is_better, effect, expected", [
    (False, -0.8, set()),  # fewer losses per unit: valuable
    (False, +0.8, {"destroying_value"}),  # more losses per unit: destroys value
    (True, +0.8, set()),  # the same numbers on a higher-is-better KPI: the other way round
    (True, -0.8, {"destroying_value"}),
])
def test_lower_is_better_kpis(higher_is_better: bool, effect: float, expected: set[str]) -> None:
    # a chargeback-loss KPI: effect in USD of losses per treated unit, 20,000 treated units
    v = money_value(effect, 0.1, 20_000, 1.0, higher_is_better, 2000.0)
    flags = evaluate_flags(frame(row(gross=float(v.gross), gross_se=float(v.gross_se), cost=2000.0)))
    assert types(flags) == expected
    assert (float(v.gross) > 0) == (not expected)


# --- not_covering_cost -------------------------------------------------------------------------


@pytest.mark.parametrize("min_roi", [0.0, 0.5, -0.5])
@pytest.mark.parametrize("offset, flagged", [(-EPS, True), (+EPS, False)])
def test_not_covering_cost_at_its_boundary(min_roi: float, offset: float, flagged: bool) -> None:
    se, cost = 300.0, 10_000.0
    hurdle = min_roi * cost
    net = hurdle + (Z_TWO + offset) * se
    flags = evaluate_flags(frame(row(gross=net + cost, gross_se=se, cost=cost, net=net, min_roi=min_roi)), q=Q)
    assert types(flags) == ({"not_covering_cost"} if flagged else set())
    if flagged:
        assert ("required ROI of 50%" in flags[0].reason) == (min_roi == 0.5)


def test_min_roi_moves_the_hurdle() -> None:
    # net +2,000 ± 300 on a cost of 10,000 covers its cost, but not a 50 % required ROI
    r = row(gross=12_000.0, gross_se=300.0, cost=10_000.0)
    assert types(evaluate_flags(frame(r))) == set()
    assert types(evaluate_flags(frame({**r, "min_roi": 0.5}))) == {"not_covering_cost"}
    assert types(evaluate_flags(frame({**r, "min_roi": -1.0}))) == set()  # −1: never flag on ROI


def test_a_harmful_model_is_not_flagged_twice() -> None:
    flags = evaluate_flags(frame(row(gross=-5000.0, gross_se=100.0, cost=1000.0)))
    assert types(flags) == {"destroying_value"}


# --- unproven -----------------------------------------------------------------------------------


def _unproven_row(mde_over_breakeven: float, **kw: Any) -> dict[str, Any]:
    """Gross estimate half-way to break-even, with a standard error whose detectable value is
    ``mde_over_breakeven`` × break-even (the interval then holds both 0 and break-even)."""
    cost = 10_000.0
    se = mde_over_breakeven * cost / float(detectable_value(1.0))
    return row(gross=cost / 2, gross_se=se, cost=cost, live_days=90, unproven_after_days=90, **kw)


@pytest.mark.parametrize("ratio, flagged", [(1 + 1e-6, True), (1 - 1e-6, False)])
def test_unproven_at_the_power_boundary(ratio: float, flagged: bool) -> None:
    flags = evaluate_flags(frame(_unproven_row(ratio)))
    assert types(flags) == ({"unproven"} if flagged else set())
    if flagged:
        assert flags[0].evidence["detectable_gross"] > 10_000.0


def test_unproven_at_the_age_boundary() -> None:
    assert types(evaluate_flags(frame(_unproven_row(1.5)))) == {"unproven"}  # live_days == unproven_after_days
    assert types(evaluate_flags(frame({**_unproven_row(1.5), "live_days": 89}))) == set()


def test_unproven_needs_an_interval_holding_zero_and_break_even() -> None:
    r = _unproven_row(1.5)
    z = float(cs_multiplier(N, 0.05, N))  # the always-valid interval of an A/B model
    se, cost = r["gross_se"], r["cost"]
    # the interval's lower end just above 0: the model is known to help (whether it pays is open)
    above_zero = {**r, "gross": z * se * (1 + 1e-6)}
    above_zero["net"] = above_zero["gross"] - cost
    assert types(evaluate_flags(frame(above_zero))) == set()
    just_holding = {**above_zero, "gross": z * se * (1 - 1e-6)}
    just_holding["net"] = just_holding["gross"] - cost
    assert types(evaluate_flags(frame(just_holding))) == {"unproven"}
    # min_roi raises break-even (cost × 1.5). An interval whose upper end is below break-even is
    # not unproven: it is short of the hurdle
    below_be = {**r, "gross": cost * 1.5 - z * se * (1 + 1e-6), "min_roi": 0.5}
    below_be["net"] = below_be["gross"] - cost
    assert "unproven" not in types(evaluate_flags(frame(below_be)))
    # with the same numbers and min_roi 0 (break-even = cost) the interval holds both: unproven
    assert types(evaluate_flags(frame({**below_be, "min_roi": 0.0}))) == {"unproven"}


# --- no data yet --------------------------------------------------------------------------------


def test_a_model_with_no_data_yet_gets_no_money_flags_and_no_crash() -> None:
    empty = row("new-model", gross=np.nan, gross_se=np.nan, net=np.nan, has_data=False, live_days=200,
                srm_p_value=None, days_since_exposure=None, method_reason="no mature cohorts in both arms yet")
    flags = evaluate_flags(frame(empty, row("old-model")))
    assert flags == []
    assert evaluate_flags(frame()) == []


def test_a_model_with_no_data_through_the_value_layer() -> None:
    from valuetrack.registry.spec import ModelSpec
    from valuetrack.value.portfolio import estimate_effect
    from tests.value.test_late_outcomes import _data

    spec = ModelSpec.from_dict(_spec_dict())
    cols = ["day", "arm", "segment", "n", "n_units", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy", "mature"]
    data = _data(pd.DataFrame(columns=cols))
    effect = estimate_effect(spec, data, dt.date(2026, 6, 1))
    assert effect.per_unit is None and effect.reason


def _spec_dict() -> dict[str, Any]:
    return {"name": "new-model", "display_name": "New", "owner": "a@example.com", "team": "t",
            "monthly_cost": 1000.0,
            "kpi": {"name": "revenue", "unit": "USD", "value_per_unit": 1.0, "higher_is_better": True,
                    "aggregation": "sum"},
            "attribution": {"method": "ab", "window_days": 14, "outcome_lag_days": 3, "covariate_days": 0,
                            "treatment_share": 0.5,
                            "exposures": {"table": "exposures", "unit": "customer_id", "timestamp": "scored_at",
                                          "arm": "arm", "treatment": "model", "control": "holdout"},
                            "outcomes": {"table": "outcomes", "unit": "customer_id", "timestamp": "event_at",
                                         "value": "value"}}}


# --- false discoveries across the portfolio ------------------------------------------------------


def _null_portfolios(rng: np.random.Generator, reps: int, m: int, true_gross: np.ndarray, se: float,
                     cost: float) -> list[pd.DataFrame]:
    out = []
    for _ in range(reps):
        gross = true_gross + se * rng.standard_normal(m)
        out.append(frame(*[row(f"m{i:03d}", gross=g, gross_se=se, cost=cost) for i, g in enumerate(gross)]))
    return out


def test_many_null_models_give_few_false_destroying_value_flags() -> None:
    """50 models that do nothing (true gross 0, the boundary of H0: gross ≥ 0), zero cost, 600
    portfolios: BH keeps the share of portfolios with any false flag near q (= the FDR when every
    model is null); testing each model at 5 % alone would raise 2.5 false flags per portfolio."""
    rng = np.random.default_rng(7)
    reps, m = 600, 50
    false_counts = []
    for df in _null_portfolios(rng, reps, m, np.zeros(m), 100.0, 0.0):
        false_counts.append(sum(f.type == "destroying_value" for f in evaluate_flags(df, q=Q)))
    false_counts = np.array(false_counts)
    fdr = float(np.mean(false_counts > 0))  # FDP is 1 whenever anything is flagged
    assert fdr <= Q + 3 * np.sqrt(Q * (1 - Q) / reps), fdr
    assert false_counts.mean() < 0.15  # unadjusted: 2.5


def test_not_covering_cost_fdr_holds_beside_harmful_models() -> None:
    """8 of 20 models clearly harmful (they take destroying_value), 12 exactly at break-even (true
    net 0, the boundary of H0: net ≥ 0): the not_covering_cost flags shown must stay ≤ q false.
    Running BH over all 20 and then hiding the harmful ones gave 23 % false flags here."""
    rng = np.random.default_rng(11)
    reps, m, cost = 800, 20, 1000.0
    true_gross = np.where(np.arange(m) < 8, -2000.0, cost)
    fdp = []
    for df in _null_portfolios(rng, reps, m, true_gross, 300.0, cost):
        flags = evaluate_flags(df, q=Q)
        flagged = [int(f.model[1:]) for f in flags if f.type == "not_covering_cost"]
        fdp.append(np.mean([true_gross[i] - cost >= 0 for i in flagged]) if flagged else 0.0)
        assert sum(f.type == "destroying_value" for f in flags) >= 6
    assert float(np.mean(fdp)) <= Q + 3 * np.sqrt(Q * (1 - Q) / reps), float(np.mean(fdp))


# --- shape of the output ---------------------------------------------------------------------------


def test_flags_carry_reason_action_and_evidence_and_are_ordered() -> None:
    flags = evaluate_flags(frame(row("b-model", gross=-5000.0), row("a-model", n_treatment=12_000.0, n_control=8_000.0),
                                 row("c-model", gross=500.0, gross_se=100.0)))
    # the worst first: by the rule's severity (destroying 5, untrustworthy 4, not covering 3), not by name
    assert [(f.model, f.type) for f in flags] == [("b-model", "destroying_value"), ("a-model", "untrustworthy"),
                                                  ("c-model", "not_covering_cost")]
    for f in flags:
        assert f.type in FLAG_TYPES and f.reason and f.action
        assert set(f.to_dict()) == {"model", "type", "reason", "action", "p_value", "evidence", "at_stake"}
    with pytest.raises(KeyError):
        evaluate_flags(frame(row()).drop(columns=["gross_se"]))


def test_every_listing_of_flag_types_reads_the_rules() -> None:
    """One table of flag rules (flags.RULES): the pages, the reports, the JSON schema, the demo's
    truths and the docs agree with it; a test fails on drift."""
    import json
    import re
    from pathlib import Path

    from valuetrack.demo import FLAGS as DEMO_FLAGS
    from valuetrack.reports.render import FLAG_LABELS as REPORT_LABELS
    from valuetrack.ui.views import FLAG_ICONS, FLAG_LABELS
    from valuetrack.value.flags import FLAG_SEVERITY, RULES

    root = Path(__file__).resolve().parents[2]
    types = [r.type for r in RULES]
    assert len(set(types)) == len(types) and len({r.severity for r in RULES}) == len(RULES)
    assert list(FLAG_LABELS) == list(FLAG_ICONS) == list(REPORT_LABELS) == types and set(DEMO_FLAGS) == set(types)
    assert FLAG_SEVERITY == {r.type: r.severity for r in RULES}
    defs = json.loads((root / "valuetrack" / "schemas" / "_value_defs.json").read_text())
    assert defs["$defs"]["flag"]["properties"]["type"]["enum"] == types
    doc = (root / "docs" / "methods-value.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| (\d) \| [^|]+ \| ([^|]+) \| ([^|]+) \|$", doc, re.M)
    assert [(t, label.strip(), int(sev), null.strip(), action.strip()) for t, label, sev, null, action in rows] == \
        [(r.type, r.label, r.severity, r.null, r.action) for r in RULES]
    # no module keeps its own table of flag labels, icons or ranks
    listing = re.compile(r"""\{\s*["'](?:untrustworthy|destroying_value|not_covering_cost|unproven)["']\s*:\s*(?:["']|\d)""")
    offenders = [str(p.relative_to(root)) for p in [*root.joinpath("valuetrack").rglob("*.py"), *root.joinpath("pages").glob("*.py")]
                 if listing.search(p.read_text())]
    assert offenders == []
