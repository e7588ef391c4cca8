"""Flags under daily looks (issue 14): seeded companies looked at every day for a year.

Each company has 20 A/B models. Per model and day the harness draws the arms' sufficient
statistics (units, sum of y, sum of y²), in the regimes users meet:

* traffic of 200–2,000 units a day with a weekly cycle, ramping by −30 % to +100 % over the year;
* treatment shares 0.5, 0.8 or 0.9;
* a drifting baseline: the KPI's mean follows a random walk plus a weekly cycle, common to both arms;
* outcome sd 5–20 per unit.

Cumulative sums go through the production code path: ``analyze_ab_batch`` (effect, standard error,
SRM) then the flag functions of ``valuetrack.value.anytime`` that ``evaluate_flags`` calls, applied
at each of 365 daily looks with the portfolio's models as the multiplicity axis. The old rule
(fixed-horizon one-sided p-values with BH at q, re-tested at every look; SRM at p < 0.001 every day)
runs on the same draws as the positive control. The figures are written to docs/methods-value.md
by ``test_docs_table_is_current`` (set ``VALUETRACK_WRITE_DOCS=1`` to refresh it).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from valuetrack.attribution.ab import ABConfig, ArmStats, analyze_ab_batch
from valuetrack.attribution.portfolio import benjamini_hochberg
from valuetrack.value import anytime

pytestmark = pytest.mark.slow

COMPANIES, MODELS, DAYS, HORIZON, Q = 500, 20, 365, 90, 0.05
Z80 = stats.norm.ppf(1 - Q) + stats.norm.ppf(0.8)  # one-sided level-q test with 80 % power
DOC = Path(__file__).resolve().parents[2] / "docs" / "methods-value.md"
FIGURES: dict[str, str] = {}


def simulate(seed: int, effect, *, companies: int = COMPANIES, srm_loss: float = 0.0) -> dict:
    """Cumulative per-arm statistics, shape (companies, models, days), through ``analyze_ab_batch``.

    ``effect(se90)`` gives each model's true per-unit effect from the standard error its design has
    at the 90-day horizon; ``srm_loss`` drops that share of control units (a broken split).
    """
    rng = np.random.default_rng(seed)
    shape = (companies, MODELS, 1)
    share = rng.choice([0.5, 0.8, 0.9], size=shape)
    daily = rng.uniform(200, 2000, size=shape)
    ramp = rng.uniform(-0.3, 1.0, size=shape)
    t = np.arange(DAYS)[None, None, :]
    units = daily * (1 + ramp * t / DAYS) * (1 + 0.2 * np.sin(2 * np.pi * t / 7))
    n_t = rng.poisson(units * share).astype(float)
    n_c = rng.poisson(units * (1 - share) * (1 - srm_loss)).astype(float)
    sigma = rng.uniform(5, 20, size=shape)
    baseline = 10 + 3 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.05, (companies, MODELS, DAYS)).cumsum(axis=2)
    se90 = sigma * np.sqrt(1 / (daily * share * HORIZON) + 1 / (daily * (1 - share) * HORIZON))
    delta = effect(se90)

    def arm(n: np.ndarray, mean: np.ndarray) -> ArmStats:
        sum_y = rng.normal(n * mean, np.sqrt(np.maximum(n, 1)) * sigma)
        sum_y2 = sigma**2 * rng.chisquare(np.maximum(n - 1, 1)) + np.where(n > 0, sum_y**2 / np.maximum(n, 1), 0.0)
        return ArmStats(n.cumsum(2), sum_y.cumsum(2), sum_y2.cumsum(2))

    control, treatment = arm(n_c, baseline), arm(n_t, baseline + delta)
    r = analyze_ab_batch(control, treatment, ABConfig(), planned_treatment_share=share)
    return {"effect": r["effect_abs"], "se": r["se_abs"], "srm_p": r["srm_p_value"], "n_t": treatment.n,
            "n_c": control.n, "share": share, "tuning": anytime.planned_units(daily, HORIZON), "se90": se90}


def money_flags(sim: dict, breakeven) -> tuple[np.ndarray, np.ndarray]:
    """(any money flag per model and look, the old rule's) with the portfolio on axis 1."""
    ok = np.ones_like(sim["effect"], dtype=bool)
    f = anytime.ab_money_flags(sim["effect"], sim["se"], breakeven, sim["n_t"] + sim["n_c"], sim["tuning"],
                               ok, ok, Q, axis=1)
    p = np.concatenate([stats.norm.cdf(sim["effect"] / sim["se"]),
                        stats.norm.cdf((sim["effect"] - breakeven) / sim["se"])], axis=1)
    old = benjamini_hochberg(p, Q, axis=1)
    return f["destroying_value"] | f["not_covering_cost"], old[:, :MODELS] | old[:, MODELS:]


@functools.cache
def _null_destroying() -> dict:
    return simulate(1, lambda se90: np.zeros_like(se90))


@pytest.fixture(scope="module")
def null_destroying() -> dict:
    return _null_destroying()


def test_null_destroying_value_companies_are_rarely_ever_flagged(null_destroying: dict) -> None:
    """Effect 0, no cost: a company ever falsely flagged within the year ≤ 5 %; the old rule > 30 %."""
    sim = null_destroying
    ok = np.ones_like(sim["effect"], dtype=bool)
    f = anytime.ab_money_flags(sim["effect"], sim["se"], 0.0, sim["n_t"] + sim["n_c"], sim["tuning"], ok, ~ok,
                               Q, axis=1)["destroying_value"]
    old = benjamini_hochberg(stats.norm.cdf(sim["effect"] / sim["se"]), Q, axis=1)
    ever, old_ever = f.any(axis=(1, 2)).mean(), old.any(axis=(1, 2)).mean()
    FIGURES["null_destroying"] = f"{ever:.1%} (old rule {old_ever:.1%}; old rule at the last look only {old[..., -1].any(axis=1).mean():.1%})"
    assert ever <= 0.05
    assert old_ever > 0.30


def test_null_not_covering_cost_companies_are_rarely_ever_flagged() -> None:
    """Per-unit value exactly at the per-unit break-even: ever flagged ≤ 5 %; the old rule > 30 %."""
    sim = simulate(2, lambda se90: 0.25 * Z80 * se90)
    flagged, old = money_flags(sim, 0.25 * Z80 * sim["se90"])
    ever, old_ever = flagged.any(axis=(1, 2)).mean(), old.any(axis=(1, 2)).mean()
    FIGURES["null_cost"] = f"{ever:.1%} (old rule {old_ever:.1%})"
    assert ever <= 0.05
    assert old_ever > 0.30


@pytest.mark.parametrize("bad", [1, 2, 5, 10])
def test_bad_models_are_found_in_time_and_discoveries_stay_true(bad: int) -> None:
    """``bad`` of 20 models harmful, each sized for 80 % one-sided power at 90 days; the others sit
    exactly at break-even. T is the first day at which BH applied once (fixed-horizon p-values, the
    same two hypotheses per model) reaches 80 % power. The daily rule must flag a bad model by a
    median of ≤ 1.25 T, 80 % of them by 1.8 T, with a false discovery rate ≤ q at every look."""
    is_bad = np.zeros((COMPANIES, MODELS, 1), dtype=bool)
    is_bad[:, :bad] = True
    sim = simulate(10 + bad, lambda se90: np.where(is_bad, -Z80 * se90, 0.25 * Z80 * se90))
    flagged, old = money_flags(sim, 0.25 * Z80 * sim["se90"])
    power_once = old[:, :bad].mean(axis=(0, 1))
    assert power_once[-1] >= 0.8, "the harness must reach 80 % power within the year"
    horizon = int(np.argmax(power_once >= 0.8)) + 1
    first = np.where(flagged[:, :bad].any(axis=2), flagged[:, :bad].argmax(axis=2) + 1, np.inf)
    median, by_18 = np.median(first) / horizon, (first <= 1.8 * horizon).mean()
    fdr = ((flagged & ~is_bad).sum(axis=1) / np.maximum(flagged.sum(axis=1), 1)).mean(axis=0)
    FIGURES[f"bad_{bad}"] = f"| {bad} | {horizon} | {median:.2f} T | {by_18:.1%} | {fdr.max():.2%} |"
    assert median <= 1.25
    assert by_18 >= 0.80
    assert fdr.max() <= Q


def test_srm_on_correct_splits_rarely_marks_a_company(null_destroying: dict) -> None:
    """A year of daily SRM looks on correctly split models: ≤ 5 % of companies ever marked
    untrustworthy; the old daily p < 0.001 rule marks more than the bound."""
    sim = null_destroying
    log_e = anytime.srm_log_e(sim["n_t"], sim["n_c"], sim["share"])
    ever = anytime.srm_flags(log_e, np.ones_like(log_e, dtype=bool), axis=1).any(axis=(1, 2)).mean()
    old = (sim["srm_p"] < 0.001).any(axis=(1, 2)).mean()
    FIGURES["srm"] = f"{ever:.1%} (old rule {old:.1%})"
    assert ever <= anytime.SRM_LEVEL
    assert old > anytime.SRM_LEVEL


def test_srm_finds_a_broken_split() -> None:
    """Losing 5 % of the control arm (a share of 0.9 becomes 0.905) is found in most models within the year."""
    sim = simulate(3, lambda se90: np.zeros_like(se90), companies=50, srm_loss=0.05)
    log_e = anytime.srm_log_e(sim["n_t"], sim["n_c"], sim["share"])
    found = anytime.srm_flags(log_e, np.ones_like(log_e, dtype=bool), axis=1).any(axis=2).mean()
    FIGURES["srm_power"] = f"{found:.1%}"
    assert found >= 0.8


GUARDRAILS = 3


def simulate_guardrails(seed: int, excess, *, companies: int = COMPANIES) -> dict:
    """Three guardrails per model on the model's units, cumulative through ``analyze_ab_batch``.

    Each guardrail has its own outcome sd, drifting baseline and tolerance (0.2–1 × its 90-day
    standard error, in its units); its direction of harm is "increase" or "decrease" (half each).
    ``excess(se90)`` gives, per model × guardrail, the true harm minus the tolerance: 0 puts every
    guardrail exactly at its tolerance. Returns harm and its se with the guardrails on the last axis.
    """
    rng = np.random.default_rng(seed)
    shape = (companies, MODELS, 1)
    share = rng.choice([0.5, 0.8, 0.9], size=shape)
    daily = rng.uniform(200, 2000, size=shape)
    ramp = rng.uniform(-0.3, 1.0, size=shape)
    t = np.arange(DAYS)[None, None, :]
    units = daily * (1 + ramp * t / DAYS) * (1 + 0.2 * np.sin(2 * np.pi * t / 7))
    n_t = rng.poisson(units * share).astype(float)
    n_c = rng.poisson(units * (1 - share)).astype(float)
    gshape = (companies, MODELS, GUARDRAILS)
    sigma_all = rng.uniform(0.5, 20, size=gshape)
    se90_all = sigma_all * np.sqrt(1 / (daily * share * HORIZON) + 1 / (daily * (1 - share) * HORIZON))
    tolerance = rng.uniform(0.2, 1.0, size=gshape) * se90_all
    direction = np.where(rng.random(gshape) < 0.5, 1.0, -1.0)  # +1: an increase is harm
    harm_true = tolerance + excess(se90_all)
    harm, se = [], []
    for g in range(GUARDRAILS):
        sigma = sigma_all[..., g:g + 1]
        baseline = 5 + rng.normal(0, 0.05, (companies, MODELS, DAYS)).cumsum(axis=2)
        delta = direction[..., g:g + 1] * harm_true[..., g:g + 1]

        def arm(n: np.ndarray, mean: np.ndarray) -> ArmStats:
            sum_y = rng.normal(n * mean, np.sqrt(np.maximum(n, 1)) * sigma)
            sum_y2 = sigma**2 * rng.chisquare(np.maximum(n - 1, 1)) + np.where(n > 0, sum_y**2 / np.maximum(n, 1), 0.0)
            return ArmStats(n.cumsum(2), sum_y.cumsum(2), sum_y2.cumsum(2))

        control, treatment = arm(n_c, baseline), arm(n_t, baseline + delta)
        r = analyze_ab_batch(control, treatment, ABConfig(), planned_treatment_share=share)
        harm.append(direction[..., g:g + 1] * r["effect_abs"])  # value/guardrails.py: harm = ± effect
        se.append(r["se_abs"])
    n_total = (n_t.cumsum(2) + n_c.cumsum(2))[..., None]
    return {"harm": np.stack(harm, axis=-1), "se": np.stack(se, axis=-1), "tolerance": tolerance[:, :, None, :],
            "n_total": n_total, "tuning": anytime.planned_units(daily, HORIZON)[..., None], "se90": se90_all}


def guardrail_breaches(sim: dict) -> dict:
    """The production rule on every look: models on axis 1, looks on axis 2, guardrails last."""
    ok = np.ones_like(sim["harm"], dtype=bool)
    return anytime.guardrail_flags(sim["harm"], sim["se"], sim["tolerance"], sim["n_total"], sim["tuning"], ok, Q,
                                   axis=1)


def test_guardrails_at_tolerance_rarely_flag_a_company() -> None:
    """Every guardrail of every model exactly at its tolerance: ≤ 5 % of companies ever see a
    ``guardrail_breach`` in a year of daily looks; a one-sided p < q per guardrail at each look (a
    dashboard's naive rule) flags nearly every company."""
    sim = simulate_guardrails(21, lambda se90: np.zeros_like(se90))
    ever = guardrail_breaches(sim)["breach"].any(axis=(1, 2)).mean()
    p = stats.norm.sf((sim["harm"] - sim["tolerance"]) / sim["se"])
    naive = (p < Q).any(axis=(1, 2, 3)).mean()
    FIGURES["guardrail_null"] = f"{ever:.1%} (one-sided p < 5 % per guardrail at each look: {naive:.1%})"
    assert ever <= 0.05
    assert naive > 0.5


def test_a_breached_guardrail_is_found_and_discoveries_stay_true() -> None:
    """One model of 20 has one guardrail whose harm exceeds its tolerance by the excess a single
    one-sided test at 90 days detects with 80 % power; every other guardrail sits at its tolerance.
    It is found within the year in ≥ 80 % of companies, the breached guardrail is the one named, and
    the false discovery rate stays ≤ q at every look."""
    bad = np.zeros((COMPANIES, MODELS, GUARDRAILS), dtype=bool)
    bad[:, 0, 0] = True
    sim = simulate_guardrails(22, lambda se90: np.where(bad, Z80 * se90, 0.0))
    f = guardrail_breaches(sim)
    found = f["breach"][:, 0]
    first = np.where(found.any(axis=1), found.argmax(axis=1) + 1, np.inf)
    named = f["named"][:, 0, :, 0][found].mean()
    fdr = (f["breach"][:, 1:].sum(axis=1) / np.maximum(f["breach"].sum(axis=1), 1)).mean(axis=0)
    by_180, by_365 = (first <= 180).mean(), np.isfinite(first).mean()
    FIGURES["guardrail_power"] = (f"| 1 model of 20 breaches 1 of its 3 guardrails (80 % power at 90 days for one test) | "
                                  f"found by day 180 in {by_180:.1%}, by day 365 in {by_365:.1%}; median day "
                                  f"{np.median(first):.0f}; the breached guardrail named in {named:.1%} of the flagged "
                                  f"looks; FDR, worst look {fdr.max():.2%} |")
    assert by_365 >= 0.8
    assert named >= 0.9
    assert fdr.max() <= Q


def ts_pvalues(seed: int, effect_z: np.ndarray, companies: int = COMPANIES) -> tuple[np.ndarray, np.ndarray]:
    """One-sided p-values at each scheduled look of time-series models whose cumulative gap is a
    Brownian motion: a model's evidence at look L is W(L)/sqrt(L) plus its drift. Returns
    (p_destroying, live_days) with looks on the last axis."""
    rng = np.random.default_rng(seed)
    looks = np.asarray(anytime.TS_LOOKS, dtype=float)
    steps = np.diff(np.concatenate([[0.0], looks]))
    walk = rng.normal(0, 1, (companies, MODELS, len(looks))) * np.sqrt(steps)
    z = walk.cumsum(axis=2) / np.sqrt(looks) + effect_z * np.sqrt(looks / looks[-1])
    return stats.norm.cdf(z), looks


def test_time_series_models_decided_at_scheduled_looks() -> None:
    """Null time-series portfolios: a company ever falsely flagged over the six scheduled looks ≤ 5 %;
    BH re-applied at each daily refresh on the same p-values as a fixed-horizon rule would, higher."""
    p, _ = ts_pvalues(4, np.zeros((COMPANIES, MODELS, 1)))
    ok = np.ones_like(p, dtype=bool)
    f = anytime.ts_money_flags(p, np.ones_like(p), ok, ~ok, Q, axis=1)["destroying_value"]
    old = benjamini_hochberg(p, Q, axis=1)
    ever, old_ever = f.any(axis=(1, 2)).mean(), old.any(axis=(1, 2)).mean()
    bad = np.zeros((COMPANIES, MODELS, 1))
    bad[:, :2] = -(stats.norm.ppf(1 - Q) + stats.norm.ppf(0.8))  # 80 % single-test power at 180 days
    pb, _ = ts_pvalues(5, bad)
    fb = anytime.ts_money_flags(pb, np.ones_like(pb), ok, ~ok, Q, axis=1)["destroying_value"]
    found = fb[:, :2].any(axis=2).mean()
    fdr = ((fb[:, 2:].sum(axis=1)) / np.maximum(fb.sum(axis=1), 1)).mean(axis=0).max()
    FIGURES["ts"] = (f"| null company ever flagged | {ever:.1%} (BH at q at each look: {old_ever:.1%}) |\n"
                     f"| 2 harmful of 20 (80 % power at 180 days) found by day 180 | {found:.1%} |\n"
                     f"| false discovery rate, worst look | {fdr:.2%} |")
    assert ever <= 0.05 < old_ever
    assert fdr <= Q


def test_ts_look_is_the_last_scheduled_look() -> None:
    assert anytime.ts_look([0, 29, 30, 59, 60, 200]).tolist() == [0, 0, 30, 30, 60, 180]


def test_one_sided_e_value_matches_numerical_mixture() -> None:
    """The closed form equals the half-normal mixture of likelihood ratios, integrated numerically."""
    from scipy import integrate

    from valuetrack.attribution.sequential import mixture_rho2

    for z, n, tuning in [(-2.5, 4000, 5000), (0.7, 800, 5000), (-4.0, 20000, 3000)]:
        info_tau2 = n * mixture_rho2(0.05, tuning)  # tau² × information

        def integrand(u: float) -> float:  # u = theta × sqrt(information), theta ~ N(0, tau²) on theta < 0
            return 2 * stats.norm.pdf(u, scale=np.sqrt(info_tau2)) * np.exp(u * z - u * u / 2)

        numeric = integrate.quad(integrand, -np.inf, 0)[0]
        closed = np.exp(anytime.log_e_below(z, 1.0, 0.0, n, tuning))
        assert closed == pytest.approx(numeric, rel=1e-6)


def test_docs_table_is_current() -> None:
    """docs/methods-value.md shows the figures this file measures (refresh with VALUETRACK_WRITE_DOCS=1)."""
    needed = ["null_destroying", "null_cost", "bad_1", "bad_2", "bad_5", "bad_10", "srm", "srm_power", "ts",
              "guardrail_null", "guardrail_power"]
    # run alone (e.g. with -k), it measures what the other tests of this file have not yet
    measure = {"null_destroying": lambda: test_null_destroying_value_companies_are_rarely_ever_flagged(_null_destroying()),
               "null_cost": test_null_not_covering_cost_companies_are_rarely_ever_flagged,
               **{f"bad_{b}": functools.partial(test_bad_models_are_found_in_time_and_discoveries_stay_true, b)
                  for b in (1, 2, 5, 10)},
               "srm": lambda: test_srm_on_correct_splits_rarely_marks_a_company(_null_destroying()),
               "srm_power": test_srm_finds_a_broken_split, "ts": test_time_series_models_decided_at_scheduled_looks,
               "guardrail_null": test_guardrails_at_tolerance_rarely_flag_a_company,
               "guardrail_power": test_a_breached_guardrail_is_found_and_discoveries_stay_true}
    for key in needed:
        if key not in FIGURES:
            measure[key]()
    table = "\n".join([
        "| check | measured |", "|---|---|",
        f"| null for destroying value: company ever falsely flagged in 365 daily looks | {FIGURES['null_destroying']} |",
        f"| null for not covering cost (per-unit value at break-even): company ever flagged | {FIGURES['null_cost']} |",
        f"| SRM on correct splits: company ever marked untrustworthy | {FIGURES['srm']} |",
        f"| SRM, 5 % of control units lost: models found within the year | {FIGURES['srm_power']} |",
        "", "| bad models of 20 | T (days) | median days to a correct flag | flagged by 1.8 T | FDR, worst look |",
        "|---|---|---|---|---|", *(FIGURES[f"bad_{b}"] for b in (1, 2, 5, 10)),
        "", "| time-series models (scheduled looks) | measured |", "|---|---|", FIGURES["ts"],
        "", "| guardrails (3 per model, one family per model) | measured |", "|---|---|",
        f"| every guardrail exactly at its tolerance: company ever flagged `guardrail_breach` in 365 daily looks | "
        f"{FIGURES['guardrail_null']} |", FIGURES["guardrail_power"],
    ])
    text = DOC.read_text()
    block = re.compile(r"(<!-- anytime-figures -->\n).*?(\n<!-- /anytime-figures -->)", re.S)
    assert block.search(text), "docs/methods-value.md lacks the <!-- anytime-figures --> block"
    new = block.sub(lambda m: m.group(1) + table + m.group(2), text)
    if os.environ.get("VALUETRACK_WRITE_DOCS"):
        DOC.write_text(new)
        text = new
    assert new == text, "docs/methods-value.md is stale: rerun with VALUETRACK_WRITE_DOCS=1"
