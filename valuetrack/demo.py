"""The embedded demo company: a seeded generator of a realistic DuckDB warehouse and its manifest.

``build_demo(folder)`` writes ``folder/demo.duckdb`` (exposures, outcomes, daily_kpis, _demo_meta)
and ``folder/demo_models.toml`` (the ten demo models, in the manifest format of docs/DESIGN).
The truth the data was generated from lives in :data:`GROUND_TRUTH`, so tests and users can check
that valuetrack recovers it; docs/demo-company.md explains each model.

Design notes:

* Every model draws from its own random stream (``default_rng([seed, STREAM_VERSION, crc32(name)])``) and every unit's
  draws are made per unit, relative to its first exposure, so the realised unit-level data barely
  depends on ``as_of``: a demo built on another day tells the same story with the same numbers.
* ``scale`` multiplies the number of units *and* every money figure of the manifest (monthly and
  one-off costs) and the level of the daily series, so value/cost ratios (and hence the verdicts)
  do not depend on scale; only statistical power does (standard errors grow as 1/sqrt(scale)).
* Both files are replaced atomically (temp file in the same folder, then ``os.replace``), so a
  crash never leaves a half-written warehouse and a reader never sees one.

Run it with ``python -m valuetrack.demo [FOLDER] [--as-of DATE] [--seed N] [--scale X]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import os
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

GENERATOR_VERSION = 6
"""Bump when the generated data changes, so ``is_current`` rebuilds old warehouses (2: the
fraud_predictions table; 3: checkout-ranking with a challenger arm, search-suggest ramped;
4: the region_orders panel view; 5: fraud-screen's cost rises mid-life; 6: coupon-targeting, whose
refund guardrail is breached)."""
STREAM_VERSION = 1
"""Part of every random stream's key: the data drawn by version 1 is unchanged by later versions."""

HISTORY_DAYS = 560
"""Days of data: from ``as_of - HISTORY_DAYS`` to ``as_of - 1`` inclusive."""

DEFAULT_SEED = 20251
DB_NAME = "demo.duckdb"
MANIFEST_NAME = "demo_models.toml"

VERDICTS = ("valuable", "valuable_with_cuped", "no_effect", "negative", "cost_exceeds_value", "srm",
            "stale", "unproven", "breaches_guardrail")
FLAGS = ("destroying_value", "not_covering_cost", "unproven", "untrustworthy", "methods_disagree", "guardrail_breach")

COUNTRIES = ("US", "GB", "DE", "FR", "BR")
_COUNTRY_P = np.array([0.42, 0.2, 0.16, 0.12, 0.10])
# purchase frequency by country, normalised so that the population mean multiplier is exactly 1
_COUNTRY_RATE = np.array([1.12, 1.0, 0.95, 0.9, 0.7])
_COUNTRY_RATE = _COUNTRY_RATE / float(_COUNTRY_P @ _COUNTRY_RATE)
# traffic by weekday (Mon..Sun)
_WEEKDAY_TRAFFIC = np.array([1.04, 1.02, 1.0, 1.0, 0.97, 0.92, 1.05])
_TRAFFIC_GROWTH_PER_YEAR = 0.25

# How long after it happens an event may still be missing from the warehouse (days); an event
# of age a < lag has landed with probability a / lag. The manifest's outcome_lag_days matches.
_LANDING_LAG = {"purchase": 3, "refund": 3, "renewal": 2, "chargeback": 10, "signup": 1}

# daily series for the model without a holdout
_SERIES_BASE = {"region_a_orders": 2000.0, "region_b_orders": 1400.0, "region_c_orders": 1100.0,
                "region_d_orders": 800.0}
_SERIES_TREND_PER_YEAR = 0.12
_SERIES_WEEKLY = np.array([0.97, 0.96, 0.98, 1.0, 1.05, 1.10, 0.94])
_SERIES_COMMON_PHI, _SERIES_COMMON_SD = 0.85, 0.025
_SERIES_IDIO_SD = 0.015
_REFUND_DELAY = (1.0, 20.0)  # a refund follows its purchase after U(1, 20) days


# ------------------------------------------------------------------------------------------------
# the ground truth


@dataclass(frozen=True)
class Truth:
    """What a demo model really does, as generated. Tests of the value/flags layer assert that
    valuetrack recovers it at scale 1 (power is documented in docs/demo-company.md).

    Attributes:
        model: the model's name.
        method: "ab" (holdout) or "structural" (launch date + control series).
        kpi: KPI name, as in the manifest.
        aggregation: "sum" or "conversion".
        higher_is_better: as in the manifest.
        baseline: control mean per unit over the attribution window (A/B), or the counterfactual
            KPI per day averaged over the post-launch period (time series). Scale-free for A/B;
            multiply by ``scale`` for time series.
        effect_abs: true effect per unit over the window in KPI units (A/B: treatment − control
            mean), or per day (time series, at scale 1). Negative means the KPI went down.
        effect_rel: effect_abs / baseline (a fraction: 0.05 = +5 %).
        value_per_unit: money per KPI unit (manifest value).
        gross_per_month: expected gross value per 30 days at scale 1 in the reporting currency,
            sign-flipped for lower-is-better KPIs (positive = good): effect × treated units per
            30 days (average over the model's live period) × value per unit, minus the money of the
            guardrails that enter net value (harm × their value per unit × the same units). Scales
            with ``scale``.
        monthly_cost: manifest monthly cost at launch, scale 1 (scales with ``scale``).
        cost_changes: mid-life changes of the monthly cost: (days before the as-of date, the monthly
            cost from that day on, scale 1); empty when the cost never changed.
        verdict: what the product should conclude (one of VERDICTS).
        flags: flags the product must raise (subset of FLAGS).
        may_also_flag: flags that are logically implied or defensible and may also be raised.
        story: one line for humans.
        guardrails: the truth of each guardrail of the model's ``[[guardrails]]``.
    """

    model: str
    method: str
    kpi: str
    aggregation: str
    higher_is_better: bool
    baseline: float
    effect_abs: float
    effect_rel: float
    value_per_unit: float
    gross_per_month: float
    monthly_cost: float
    verdict: str
    flags: tuple[str, ...]
    may_also_flag: tuple[str, ...]
    story: str
    cost_changes: tuple[tuple[int, float], ...] = ()
    guardrails: tuple[GuardrailTruth, ...] = ()

    @property
    def net_per_month(self) -> float:
        """Expected gross − monthly cost (the one in effect now) per 30 days at scale 1 (ignores the
        tiny per-prediction cost)."""
        return self.gross_per_month - (self.cost_changes[-1][1] if self.cost_changes else self.monthly_cost)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["net_per_month"] = self.net_per_month
        out["guardrails"] = [dataclasses.asdict(g) for g in self.guardrails]
        return out


@dataclass(frozen=True)
class GuardrailTruth:
    """What a demo model really does to one of its guardrail KPIs.

    Attributes:
        name: the guardrail's name in the manifest.
        harm: "increase" or "decrease" (which way is harm).
        aggregation: "sum" or "conversion".
        control: the control mean per unit over the window.
        harm_per_unit: the true harm per treated unit (positive = harm), in the guardrail's units.
        tolerance: the harm the manifest tolerates per treated unit.
        value_per_unit: money per guardrail unit, or None.
        in_main_kpi: whether its events are already inside the model's KPI.
        breached: harm_per_unit > tolerance (the product must raise ``guardrail_breach``).
    """

    name: str
    harm: str
    aggregation: str
    control: float
    harm_per_unit: float
    tolerance: float
    value_per_unit: float | None
    in_main_kpi: bool
    breached: bool


@dataclass(frozen=True)
class _Model:
    """Internal description of one demo model: its manifest fields and how its data is generated."""

    name: str
    display_name: str
    owner: str
    team: str
    story: str
    verdict: str
    flags: tuple[str, ...] = ()
    may_also_flag: tuple[str, ...] = ()
    timezone: str = "UTC"
    monthly_cost: float = 0.0
    cost_changes: tuple[tuple[int, float], ...] = ()  # (days before as_of, monthly cost from then on)
    cost_per_1k: float = 0.0
    one_off: float = 0.0
    interventions: tuple[tuple[int, str], ...] = ()  # (days before as_of, label)
    kpi_name: str = "purchase_revenue"
    kpi_unit: str = "USD"
    value_per_unit: float = 0.3
    higher_is_better: bool = True
    aggregation: str = "sum"
    method: str = "ab"
    window_days: int = 14
    covariate_days: int = 30
    treatment_share: float = 0.9
    min_roi: float = 0.0
    unproven_after_days: int = 90
    event_type: str = "purchase"
    # population and exposures
    n_units: int = 100_000
    id_base: int = 0
    model_value: str | None = None  # value of exposures.model_id when it differs from the name
    exposures_per_unit: float = 2.0  # mean number of scoring events per unit (first included)
    crossover: float = 0.01  # share of units also logged once in the other arm
    score_loc: float = -1.0
    score_scale: float = 1.0
    drift_per_year: float = 0.0  # logit shift of the scores per year (drift health check)
    stale_days: int = 0  # exposures stop arriving this many days before as_of
    srm_bug_share: float = 0.0  # share of units on the buggy client; their holdout exposures are lost
    bug_rate_mult: float = 1.0  # ... and they buy this much more often
    overlap_with: str | None = None  # another model whose units are partly shared
    overlap_share: float = 0.0  # share of this model's units taken from that model
    # outcomes: "poisson" (events at a per-unit rate), "periodic" (regular orders) or "bernoulli"
    outcome: str = "poisson"
    rate: float = 0.025  # poisson: mean events per unit-day
    rate_shape: float = 0.3  # poisson: gamma shape of the per-unit rate (small = most units idle)
    amount_median: float = 55.0  # lognormal amount: median of the per-unit median
    amount_sb: float = 0.4  # between-unit sd of log amounts
    amount_sw: float = 0.6  # within-unit sd of log amounts
    cadences: tuple[float, ...] = (7.0, 14.0, 28.0)  # periodic: days between orders
    cadence_p: tuple[float, ...] = (0.5, 0.3, 0.2)
    keep: float = 0.97  # periodic: probability a scheduled order happens
    p_window: float = 0.1  # bernoulli: control probability of an event inside the window
    delay_mean: float = 3.0  # bernoulli: mean days from first exposure to the event
    values: tuple[float, ...] = (1.0,)  # bernoulli: event values (a per-unit draw)
    values_p: tuple[float, ...] = (1.0,)
    pre_prob: float = 0.0  # bernoulli: probability of an event in the covariate window before
    refund_share: float = 0.02  # share of purchases followed by a refund event (filtered out by `where`)
    refund_share_treated: float | None = None  # ... of the purchases a served unit makes after its first exposure
    kpi_includes_refunds: bool = False  # the KPI is net revenue: purchases and their refunds (negative)
    guardrails: tuple[Mapping[str, Any], ...] = ()  # [[guardrails]] entries (without their outcomes)
    # a classifier's decisions table (fraud_predictions): money per outcome {tp, fp, fn, tn}, or None
    decisions: Mapping[str, float] | None = None
    effect_rel: float = 0.0  # true relative effect inside the window (rate, amount or probability)
    # a ramped rollout: (days before as_of, planned treatment share) steps; units take the share of the
    # step of their first exposure
    ramp: tuple[tuple[int, float], ...] = ()
    # champion vs challenger: a third arm "v2" with this share of units and its own effect and costs
    challenger_share: float = 0.0
    challenger_effect_rel: float = 0.0
    challenger_monthly_cost: float = 0.0
    challenger_cost_per_1k: float = 0.0

    @property
    def launch_days_before(self) -> int:
        return self.interventions[0][0]

    @property
    def lag(self) -> int:
        return _LANDING_LAG[self.event_type]

    def mean_amount(self) -> float:
        return self.amount_median * math.exp((self.amount_sb**2 + self.amount_sw**2) / 2)

    def baseline(self) -> float:
        """Control mean of the KPI per unit over the window (population expectation)."""
        if self.outcome == "poisson":
            bug = 1.0 - self.srm_bug_share + self.srm_bug_share * self.bug_rate_mult
            return self.rate * bug * self.window_days * self.mean_amount()
        if self.outcome == "periodic":
            per_day = sum(p / c for c, p in zip(self.cadences, self.cadence_p))
            return per_day * self.keep * self.window_days * self.mean_amount()
        mean_value = sum(v * p for v, p in zip(self.values, self.values_p))
        return self.p_window * mean_value

    def live_days(self) -> int:
        return self.launch_days_before - self.stale_days

    # -- refunds (poisson purchases; a refund follows a purchase after U(1, 20) days) -----------

    def _refund_in_window(self) -> float:
        """Share of a unit's window purchases whose refund lands inside the window too."""
        w, (d0, d1) = float(self.window_days), _REFUND_DELAY
        # purchase at u ~ U(0, w), refund at u + d: inside iff d < w − u
        return float(np.mean(np.clip((w - (np.arange(20_000) + 0.5) / 20_000 * w - d0) / (d1 - d0), 0.0, 1.0)))

    def _pre_refund_days(self) -> float:
        """Expected days of pre-window purchase time whose refund lands in the window: E[min(d, w)]."""
        w, (d0, d1) = float(self.window_days), _REFUND_DELAY
        d = d0 + (np.arange(20_000) + 0.5) / 20_000 * (d1 - d0)
        return float(np.mean(np.minimum(d, w)))

    def refund_counts(self, served: bool) -> float:
        """Expected refunds in a unit's window per unit of its purchase rate λ (their count is
        Poisson(λ × this)): from window purchases, and from purchases before the exposure."""
        share = self.refund_share_treated if served and self.refund_share_treated is not None else self.refund_share
        mult = 1.0 + self.effect_rel if served else 1.0
        return self.window_days * mult * share * self._refund_in_window() + self.refund_share * self._pre_refund_days()

    def refund_amount(self, served: bool) -> float:
        """Expected sum of refund values (negative) in a unit's window."""
        return -self.rate * self.refund_counts(served) * self.mean_amount()

    def refund_rate(self, served: bool) -> float:
        """P(at least one refund in a unit's window): λ is gamma(rate_shape) × the country's rate."""
        c = self.refund_counts(served)
        theta = self.rate / self.rate_shape
        return float(1.0 - _COUNTRY_P @ (1.0 + c * _COUNTRY_RATE * theta) ** (-self.rate_shape))

    def effect_abs(self) -> float:
        """True effect per unit on the KPI over the window."""
        if not self.kpi_includes_refunds:
            return self.baseline() * self.effect_rel
        purchases = self.baseline() * self.effect_rel
        return purchases + self.refund_amount(True) - self.refund_amount(False)

    def kpi_baseline(self) -> float:
        """Control mean of the KPI per unit (net of refunds when the KPI includes them)."""
        return self.baseline() + (self.refund_amount(False) if self.kpi_includes_refunds else 0.0)

    def guardrail_truths(self) -> tuple[GuardrailTruth, ...]:
        out = []
        for g in self.guardrails:
            kind = {"refund_amount": self.refund_amount, "refund_rate": self.refund_rate}[g["name"]]
            sign = 1.0 if g["harm"] == "increase" else -1.0
            harm = sign * (kind(True) - kind(False))
            out.append(GuardrailTruth(g["name"], g["harm"], g["aggregation"], kind(False), harm, g["tolerance"],
                                      g.get("value_per_unit"), bool(g.get("in_main_kpi", False)), harm > g["tolerance"]))
        return tuple(out)

    def served_share(self) -> float:
        """Share of units served by the model (the champion), averaged over the live days for a ramp."""
        if not self.ramp:
            return self.treatment_share
        days = [d for d, _ in self.ramp] + [self.stale_days]
        return sum(s * (days[i] - days[i + 1]) for i, (_, s) in enumerate(self.ramp)) / (days[0] - days[-1])


_PURCHASE_KPI = dict(kpi_name="purchase_revenue", kpi_unit="USD", value_per_unit=0.3, event_type="purchase")

MODELS: tuple[_Model, ...] = (
    _Model(
        name="homepage-recs", display_name="Homepage recommendations", owner="maya.chen@example.com",
        team="personalization", verdict="valuable",
        story="Two-tower recommender on the homepage: +12 % purchase revenue per exposed customer, clearly "
              "worth its cost; relaunched as v2 seven months ago.",
        monthly_cost=4500.0, cost_per_1k=0.02, one_off=60000.0,
        interventions=((500, "v1 launch"), (210, "v2 relaunch (two-tower retrieval)")),
        **_PURCHASE_KPI, window_days=14, covariate_days=30, treatment_share=0.9,
        n_units=300_000, id_base=1_000_000_000, exposures_per_unit=3.0, crossover=0.012,
        rate=0.025, rate_shape=0.25, effect_rel=0.12, score_loc=-0.5,
    ),
    _Model(
        name="email-send-time", display_name="E-mail send-time optimiser", owner="lars.berg@example.com",
        team="crm", verdict="valuable_with_cuped",
        story="Sends the weekly grocery e-mail when each subscriber usually shops: +1 % basket revenue, "
              "invisible to plain Welch but clear with CUPED (pre-period spend predicts post-period spend).",
        monthly_cost=250.0, cost_per_1k=0.0, one_off=8000.0,
        interventions=((420, "send-time optimiser on"),),
        **_PURCHASE_KPI, window_days=28, covariate_days=28, treatment_share=0.5, unproven_after_days=120,
        n_units=65_000, id_base=2_000_000_000, exposures_per_unit=2.0, crossover=0.008,
        outcome="periodic", amount_median=40.0, amount_sb=0.8, amount_sw=0.15, keep=0.97,
        refund_share=0.01, effect_rel=0.01, score_loc=0.3, score_scale=0.5,
    ),
    _Model(
        name="dynamic-pricing", display_name="Dynamic pricing (region A)", owner="ines.moreau@example.com",
        team="pricing", verdict="valuable", method="structural",
        story="Price engine switched on for every customer in region A five months ago (no holdout): "
              "+6 % orders per day against regions B–D, which kept static prices.",
        monthly_cost=7000.0, cost_per_1k=0.0, one_off=120000.0,
        interventions=((150, "price engine go-live, region A"),),
        kpi_name="orders", kpi_unit="count", value_per_unit=9.0, effect_rel=0.06,
    ),
    _Model(
        name="fraud-screen", display_name="Payment fraud screen v2", owner="omar.haddad@example.com",
        team="risk", verdict="valuable", model_value="fraud_screen_v2",
        story="Blocks risky payments: chargeback losses per screened customer fall by 45 % "
              "(a lower-is-better KPI); its scores drift upward as fraud patterns change. Its monthly "
              "cost rose from 9,000 to 12,000 mid-life, when scoring moved to a GPU service.",
        monthly_cost=9000.0, cost_changes=((180, 12000.0),), cost_per_1k=0.5, one_off=90000.0,
        interventions=((480, "v2 launch"),),
        kpi_name="chargeback_losses", kpi_unit="USD", value_per_unit=1.0, higher_is_better=False,
        event_type="chargeback", window_days=30, covariate_days=0, treatment_share=0.95,
        n_units=200_000, id_base=3_000_000_000, exposures_per_unit=4.0, crossover=0.005,
        rate=0.001, rate_shape=0.5, amount_median=130.0, amount_sb=0.4, amount_sw=0.5, refund_share=0.0,
        effect_rel=-0.45, score_loc=-2.5, score_scale=1.2, drift_per_year=0.6,
        decisions={"tp": 130.0, "fp": -60.0, "fn": 0.0, "tn": 0.0},
    ),
    _Model(
        name="search-ranking-v4", display_name="Search ranking v4", owner="priya.nair@example.com",
        team="search", verdict="no_effect", flags=("not_covering_cost",),
        story="Learning-to-rank for site search, 50/50 test: no effect on purchase revenue, so it does not "
              "cover its cost; a quarter of its customers also see homepage-recs (a shared KPI).",
        monthly_cost=6000.0, cost_per_1k=0.01, one_off=45000.0,
        interventions=((300, "v4 launch"),),
        **_PURCHASE_KPI, window_days=14, covariate_days=30, treatment_share=0.5,
        n_units=250_000, id_base=4_000_000_000, exposures_per_unit=2.5, crossover=0.01,
        overlap_with="homepage-recs", overlap_share=0.25, rate=0.025, effect_rel=0.0, score_loc=0.0,
    ),
    _Model(
        name="signup-risk-gate", display_name="Sign-up risk gate", owner="tomasz.wrona@example.com",
        team="trust-safety", verdict="negative", flags=("destroying_value",),
        may_also_flag=("not_covering_cost",), timezone="Europe/Berlin",
        story="Adds a verification step for visitors it scores as risky: sign-up conversion drops from "
              "12 % to 10.2 % — it destroys value.",
        monthly_cost=3000.0, cost_per_1k=0.05, one_off=30000.0,
        interventions=((260, "gate switched on"),),
        kpi_name="signups", kpi_unit="count", value_per_unit=45.0, aggregation="conversion",
        event_type="signup", window_days=14, covariate_days=0, treatment_share=0.9,
        n_units=220_000, id_base=5_000_000_000, exposures_per_unit=1.3, crossover=0.006,
        outcome="bernoulli", p_window=0.12, delay_mean=3.0, effect_rel=-0.15, score_loc=-1.5,
    ),
    _Model(
        name="churn-save-offers", display_name="Churn save offers v3", owner="retention-team@example.com",
        team="retention", verdict="cost_exceeds_value", flags=("not_covering_cost",),
        story="Targets save offers at subscribers likely to churn: renewals really rise (+4 points), but the "
              "model costs 38k a month and creates about 15k.",
        monthly_cost=38000.0, cost_per_1k=0.0, one_off=70000.0,
        interventions=((420, "v3 launch"),),
        kpi_name="renewal_revenue", kpi_unit="USD", value_per_unit=1.0, event_type="renewal",
        window_days=30, covariate_days=30, treatment_share=0.9,
        n_units=170_000, id_base=6_000_000_000, exposures_per_unit=1.5, crossover=0.01,
        outcome="bernoulli", p_window=0.60, delay_mean=8.0, values=(19.99, 39.99, 79.99),
        values_p=(0.5, 0.35, 0.15), pre_prob=0.9, refund_share=0.0, effect_rel=0.04 / 0.60,
        score_loc=-0.8,
    ),
    _Model(
        name="upsell-propensity", display_name="Upsell propensity", owner="sofia.alves@example.com",
        team="growth", verdict="srm", flags=("untrustworthy",), may_also_flag=("not_covering_cost", "unproven"),
        story="Planned 90/10, observed about 93/7: an iOS logging bug drops holdout exposures; iOS customers "
              "spend more, so the naive lift (~+14 %) is an artefact — the true effect is zero.",
        monthly_cost=5000.0, cost_per_1k=0.02, one_off=40000.0,
        interventions=((330, "launch"),),
        **_PURCHASE_KPI, window_days=14, covariate_days=30, treatment_share=0.9,
        n_units=150_000, id_base=7_000_000_000, exposures_per_unit=2.0, crossover=0.01,
        srm_bug_share=0.35, bug_rate_mult=1.4, rate=0.025, effect_rel=0.0,
    ),
    _Model(
        name="push-reactivation", display_name="Push reactivation", owner="lars.berg@example.com",
        team="crm", verdict="stale", flags=("untrustworthy",),
        story="Push notifications to lapsed customers (+25 % revenue) — but its exposure logging broke "
              "three weeks ago, so its figures are stale.",
        monthly_cost=2500.0, cost_per_1k=0.01, one_off=20000.0,
        interventions=((360, "launch"),),
        **_PURCHASE_KPI, window_days=14, covariate_days=30, treatment_share=0.9,
        n_units=120_000, id_base=8_000_000_000, exposures_per_unit=1.5, crossover=0.01,
        stale_days=21, rate=0.012, effect_rel=0.25,
    ),
    _Model(
        name="cart-abandon-reminder", display_name="Cart abandonment reminder", owner="sofia.alves@example.com",
        team="growth", verdict="unproven", flags=("unproven",),
        story="Reminds customers of abandoned carts; launched under four months ago with little traffic: a "
              "small true effect (+4 %) that neither zero nor break-even can yet be told from.",
        monthly_cost=2500.0, cost_per_1k=0.02, one_off=15000.0,
        interventions=((110, "launch"),),
        **_PURCHASE_KPI, window_days=7, covariate_days=14, treatment_share=0.9, unproven_after_days=60,
        n_units=25_000, id_base=9_000_000_000, exposures_per_unit=2.0, crossover=0.01,
        rate=0.03, effect_rel=0.04,
    ),
    _Model(
        name="checkout-ranking", display_name="Checkout ranking (v1, challenger v2)", owner="priya.nair@example.com",
        team="search", verdict="valuable",
        story="Ranks add-ons at checkout. v1 (+10 % purchase revenue) runs against a holdout and, for the last "
              "eight months, against challenger v2 (+18 %, a little dearer to serve): v2 should be promoted.",
        monthly_cost=2000.0, cost_per_1k=0.02, one_off=30000.0,
        interventions=((240, "v1 and v2 launch"),),
        **_PURCHASE_KPI, window_days=14, covariate_days=30, treatment_share=0.45,
        n_units=400_000, id_base=10_000_000_000, exposures_per_unit=2.0, crossover=0.01,
        rate=0.025, rate_shape=0.25, effect_rel=0.10, score_loc=-0.4,
        challenger_share=0.45, challenger_effect_rel=0.18, challenger_monthly_cost=2500.0, challenger_cost_per_1k=0.03,
    ),
    _Model(
        name="search-suggest", display_name="Search suggestions (ramped rollout)", owner="maya.chen@example.com",
        team="search", verdict="valuable",
        story="Query suggestions rolled out in three steps (10 %, 50 %, then 90 % of customers, a month apart): "
              "+10 % purchase revenue per served customer, estimated within each step so the ramp cannot bias it.",
        monthly_cost=1500.0, cost_per_1k=0.01, one_off=20000.0,
        interventions=((150, "rollout starts at 10 %"),),
        **_PURCHASE_KPI, window_days=14, covariate_days=30, treatment_share=0.9,
        n_units=160_000, id_base=11_000_000_000, exposures_per_unit=2.0, crossover=0.01,
        rate=0.025, rate_shape=0.25, effect_rel=0.10, score_loc=-0.6,
        ramp=((150, 0.1), (120, 0.5), (90, 0.9)),
    ),
)
MODELS = MODELS + (
    _Model(
        name="coupon-targeting", display_name="Coupon targeting", owner="sofia.alves@example.com",
        team="growth", verdict="breaches_guardrail", flags=("guardrail_breach",),
        story="Targets discount coupons, 50/50 test: +12 % purchases and clearly worth its cost in net revenue, but "
              "coupon buyers send back 8 % of their orders instead of 2 %: the refund-rate guardrail is breached.",
        monthly_cost=1500.0, cost_per_1k=0.01, one_off=12000.0,
        interventions=((240, "launch"),),
        kpi_name="net_revenue", kpi_unit="USD", value_per_unit=0.3, event_type="purchase",
        kpi_includes_refunds=True, window_days=14, covariate_days=30, treatment_share=0.5,
        n_units=160_000, id_base=12_000_000_000, exposures_per_unit=2.0, crossover=0.01,
        rate=0.025, rate_shape=0.3, effect_rel=0.12, score_loc=-0.3,
        refund_share=0.02, refund_share_treated=0.08,
        guardrails=(
            {"name": "refund_rate", "harm": "increase", "tolerance": 0.002, "unit": "rate",
             "aggregation": "conversion", "value_per_unit": 12.0, "in_main_kpi": False},
            {"name": "refund_amount", "harm": "decrease", "tolerance": 0.75, "unit": "USD",
             "aggregation": "sum", "value_per_unit": 0.3, "in_main_kpi": True},
        ),
    ),
)
_BY_NAME = {m.name: m for m in MODELS}


def _series_truth(m: _Model) -> tuple[float, float]:
    """Expected counterfactual per day over the post period (scale 1) and the effect per day."""
    days_before = m.launch_days_before
    post = np.arange(HISTORY_DAYS - days_before, HISTORY_DAYS)
    base = _SERIES_BASE["region_a_orders"] * float(np.mean(1 + _SERIES_TREND_PER_YEAR * post / 365))
    return base, base * m.effect_rel


def _truth(m: _Model) -> Truth:
    if m.method == "ab":
        baseline = m.kpi_baseline()
        effect = m.effect_abs()
        treated_per_month = m.n_units * m.served_share() * 30 / m.live_days()
        gross = effect * treated_per_month * m.value_per_unit
        # guardrails with a value that are not inside the KPI enter gross value (value/guardrails.py)
        gross -= sum(g.harm_per_unit * g.value_per_unit * treated_per_month
                     for g in m.guardrail_truths() if g.value_per_unit is not None and not g.in_main_kpi)
    else:
        baseline, effect = _series_truth(m)
        gross = effect * 30 * m.value_per_unit
    if not m.higher_is_better:
        gross = -gross
    return Truth(
        model=m.name, method=m.method, kpi=m.kpi_name, aggregation=m.aggregation,
        higher_is_better=m.higher_is_better, baseline=baseline, effect_abs=effect,
        effect_rel=effect / baseline if m.kpi_includes_refunds else m.effect_rel,
        value_per_unit=m.value_per_unit, gross_per_month=gross, monthly_cost=m.monthly_cost,
        verdict=m.verdict, flags=m.flags, may_also_flag=m.may_also_flag, story=m.story, cost_changes=m.cost_changes,
        guardrails=m.guardrail_truths(),
    )


GROUND_TRUTH: dict[str, Truth] = {m.name: _truth(m) for m in MODELS}
"""Model name → :class:`Truth`: what each demo model really does (see docs/demo-company.md)."""


# ------------------------------------------------------------------------------------------------
# the build result


@dataclass(frozen=True)
class DemoBuild:
    """What ``build_demo`` wrote.

    Attributes:
        directory: the folder.
        database: path of the DuckDB warehouse.
        manifest: path of the manifest of the demo models.
        as_of: the data runs to the day before this date.
        data_start: first day of data.
        data_end: last day of data (as_of − 1).
        seed: the generator's seed.
        scale: the unit multiplier.
        rows: table name → row count.
        models: names of the demo models, in manifest order.
        elapsed_s: wall time of the build in seconds (0 when an existing warehouse was kept).
        generator_version: GENERATOR_VERSION of the data.
    """

    directory: Path
    database: Path
    manifest: Path
    as_of: dt.date
    data_start: dt.date
    data_end: dt.date
    seed: int
    scale: float
    rows: Mapping[str, int] = field(default_factory=dict)
    models: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    generator_version: int = GENERATOR_VERSION

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("directory", "database", "manifest"):
            out[k] = str(out[k])
        for k in ("as_of", "data_start", "data_end"):
            out[k] = out[k].isoformat()
        out["rows"] = dict(self.rows)
        out["models"] = list(self.models)
        return out


# ------------------------------------------------------------------------------------------------
# generation (all vectorised; times are float days since data_start 00:00 UTC)


@dataclass
class _Units:
    ids: np.ndarray  # int64
    t0: np.ndarray  # first exposure, days since data start
    treated: np.ndarray  # bool
    country: np.ndarray  # int index into COUNTRIES


@dataclass
class _Frames:
    exp_id: list = field(default_factory=list)
    exp_t: list = field(default_factory=list)
    exp_model: list = field(default_factory=list)
    exp_arm: list = field(default_factory=list)
    exp_score: list = field(default_factory=list)
    exp_country: list = field(default_factory=list)
    out_id: list = field(default_factory=list)
    out_t: list = field(default_factory=list)
    out_type: list = field(default_factory=list)
    out_value: list = field(default_factory=list)
    pred_t: list = field(default_factory=list)  # the decisions model's treated scoring events
    pred_score: list = field(default_factory=list)


_EVENT_TYPES = ("purchase", "refund", "renewal", "chargeback", "signup")


def _arrivals(rng: np.random.Generator, n: int, start: int, end: int, weekday0: int) -> np.ndarray:
    """First-exposure times (days) of n units on days [start, end): weekday pattern and growth."""
    days = np.arange(start, end)
    w = _WEEKDAY_TRAFFIC[(weekday0 + days) % 7] * (1 + _TRAFFIC_GROWTH_PER_YEAR * days / 365)
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    day = days[np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), days.size - 1)]
    # time of day: busier in the afternoon, never exactly midnight
    return day + np.clip(rng.beta(3.0, 2.2, n), 1e-4, 1 - 1e-4)


def _amounts(rng: np.random.Generator, mu_unit: np.ndarray, idx: np.ndarray, sw: float) -> np.ndarray:
    return np.round(np.exp(mu_unit[idx] + sw * rng.standard_normal(idx.size)), 2)


def _events_poisson(rng, m: _Model, t0, treated, country, bug):
    n = t0.size
    w, pre, post = float(m.window_days), float(m.covariate_days + 10), 10.0
    lam = rng.gamma(m.rate_shape, m.rate / m.rate_shape, n) * _COUNTRY_RATE[country]
    lam = lam * np.where(bug, m.bug_rate_mult, 1.0)
    mu = math.log(m.amount_median) + m.amount_sb * rng.standard_normal(n)
    mult = np.where(treated, 1.0 + m.effect_rel, 1.0)
    c_pre, c_win, c_post = rng.poisson(lam * pre), rng.poisson(lam * w * mult), rng.poisson(lam * post)
    idx = np.concatenate([np.repeat(np.arange(n), c) for c in (c_pre, c_win, c_post)])
    lo = np.concatenate([np.repeat(t0 - pre, c_pre), np.repeat(t0, c_win), np.repeat(t0 + w, c_post)])
    span = np.concatenate([np.full(c_pre.sum(), pre), np.full(c_win.sum(), w), np.full(c_post.sum(), post)])
    t = lo + rng.random(idx.size) * span
    return idx, t, _amounts(rng, mu, idx, m.amount_sw)


def _events_periodic(rng, m: _Model, t0, treated, country, bug):
    n = t0.size
    w, pre, post = float(m.window_days), float(m.covariate_days + 7), 7.0
    cad = rng.choice(np.asarray(m.cadences), n, p=np.asarray(m.cadence_p))
    phase = rng.random(n) * cad
    mu = math.log(m.amount_median) + m.amount_sb * rng.standard_normal(n)
    k = int(math.ceil((pre + w + post) / min(m.cadences))) + 1
    times = (t0 - pre + phase)[:, None] + np.arange(k)[None, :] * cad[:, None]
    ok = (times < (t0 + w + post)[:, None]) & (rng.random(times.shape) < m.keep)
    idx = np.nonzero(ok)[0]
    t = times[ok]
    value = _amounts(rng, mu, idx, m.amount_sw)
    # the effect: larger baskets inside the window (relative effect exactly effect_rel)
    inside = (t >= t0[idx]) & (t < t0[idx] + w) & treated[idx]
    value = np.where(inside, np.round(value * (1 + m.effect_rel), 2), value)
    return idx, t, value


def _events_bernoulli(rng, m: _Model, t0, treated, country, bug):
    n = t0.size
    w = float(m.window_days)
    in_window = 1 - math.exp(-w / m.delay_mean)
    q = m.p_window / in_window * np.where(treated, 1 + m.effect_rel, 1.0)
    hit = rng.random(n) < q
    delay = rng.exponential(m.delay_mean, n)
    value = rng.choice(np.asarray(m.values), n, p=np.asarray(m.values_p))
    idx = np.nonzero(hit)[0]
    t = t0[idx] + delay[idx]
    parts_i, parts_t, parts_v = [idx], [t], [value[idx]]
    # a few duplicate events (double-fired tracking): the conversion aggregation counts a unit once
    if m.aggregation == "conversion":
        dup = idx[rng.random(idx.size) < 0.03]
        parts_i.append(dup)
        parts_t.append(t0[dup] + delay[dup] + rng.random(dup.size) * 0.01)
        parts_v.append(value[dup])
    if m.pre_prob > 0:
        pre_idx = np.nonzero(rng.random(n) < m.pre_prob)[0]
        parts_i.append(pre_idx)
        parts_t.append(t0[pre_idx] - rng.random(pre_idx.size) * m.covariate_days)
        parts_v.append(value[pre_idx])
    return np.concatenate(parts_i), np.concatenate(parts_t), np.concatenate(parts_v)


_EVENT_GENERATORS = {"poisson": _events_poisson, "periodic": _events_periodic, "bernoulli": _events_bernoulli}


def _generate_model(rng: np.random.Generator, m: _Model, frames: _Frames, units_by_model: dict[str, _Units],
                    scale: float, weekday0: int) -> None:
    start = HISTORY_DAYS - m.launch_days_before
    end = HISTORY_DAYS - m.stale_days
    n = max(40, int(round(m.n_units * scale)))

    # -- units: own ones, plus some borrowed from another model (shared units, same KPI)
    n_shared = int(round(n * m.overlap_share)) if m.overlap_with else 0
    n_own = n - n_shared
    t0 = _arrivals(rng, n_own, start, end, weekday0)
    ids = m.id_base + np.arange(n_own, dtype=np.int64)
    country = rng.choice(len(COUNTRIES), n_own, p=_COUNTRY_P)
    share: Any = m.treatment_share
    if m.ramp:  # each unit gets the share of the step of its first exposure
        starts = np.array([HISTORY_DAYS - d for d, _ in m.ramp], dtype=float)
        share = np.array([s for _, s in m.ramp])[np.maximum(np.searchsorted(starts, t0, side="right") - 1, 0)]
    u = rng.random(n_own)
    treated = u < share
    challenger = (u >= share) & (u < share + m.challenger_share)
    bug = rng.random(n_own) < m.srm_bug_share
    if m.outcome != "none":
        plain = ~challenger
        idx, t, value = _EVENT_GENERATORS[m.outcome](rng, m, t0[plain], treated[plain], country[plain], bug[plain])
        _add_outcomes(rng, frames, ids[plain][idx], t, value, m.event_type)
        if challenger.any():  # the challenger's units: served, with the challenger's effect
            mc = dataclasses.replace(m, effect_rel=m.challenger_effect_rel, refund_share=0.0)
            cidx, ct, cvalue = _EVENT_GENERATORS[m.outcome](rng, mc, t0[challenger], np.ones(int(challenger.sum()), bool),
                                                            country[challenger], bug[challenger])
            _add_outcomes(rng, frames, ids[challenger][cidx], ct, cvalue, m.event_type)
            idx = np.nonzero(plain)[0][idx]  # back to all units, for the refunds below
        if m.refund_share > 0:
            # refunds of some purchases: present in the table, excluded by the manifest's where-filter
            share = m.refund_share
            if m.refund_share_treated is not None:  # served units' purchases after exposure are refunded more
                share = np.where(treated[idx] & (t >= t0[idx]), m.refund_share_treated, m.refund_share)
            r = rng.random(idx.size) < share
            _add_outcomes(rng, frames, ids[idx[r]], t[r] + rng.uniform(*_REFUND_DELAY, r.sum()), -value[r], "refund")
    if n_shared:
        host = units_by_model[m.overlap_with]  # type: ignore[index]
        eligible = np.nonzero((host.t0 >= start) & (host.t0 < end - 0.1))[0]
        pick = rng.choice(eligible, min(n_shared, eligible.size), replace=False)
        ids = np.concatenate([ids, host.ids[pick]])
        # seen by this model minutes to an hour after the other one
        t0 = np.concatenate([t0, host.t0[pick] + rng.uniform(0.002, 0.04, pick.size)])
        country = np.concatenate([country, host.country[pick]])
        treated = np.concatenate([treated, rng.random(pick.size) < m.treatment_share])
        challenger = np.concatenate([challenger, np.zeros(pick.size, bool)])
        bug = np.concatenate([bug, np.zeros(pick.size, bool)])
    units_by_model[m.name] = _Units(ids, t0, treated, country)
    n = ids.size

    # -- exposures: first one at t0, repeats over the window, a few crossovers into the other arm
    extra = rng.poisson(max(m.exposures_per_unit - 1.0, 0.0), n)
    rep = np.repeat(np.arange(n), extra)
    cross = np.nonzero(rng.random(n) < m.crossover)[0]
    unit = np.concatenate([np.arange(n), rep, cross])
    t = np.concatenate([t0, t0[rep] + rng.random(rep.size) * m.window_days,
                        t0[cross] + rng.uniform(0.05, m.window_days, cross.size)])
    served = treated | challenger
    arm_treated = np.concatenate([served, served[rep], ~served[cross]])
    # arm codes: 0 the model (champion), 1 the holdout, 2 the challenger; crossovers log the other side
    arm_code = np.concatenate([np.where(challenger, 2, np.where(treated, 0, 1)),
                               np.where(challenger[rep], 2, np.where(treated[rep], 0, 1)),
                               np.where(served[cross], 1, 0)])
    keep = t < end
    if m.srm_bug_share > 0:
        # the logging bug: every holdout exposure from the buggy client is lost
        keep &= ~(bug[unit] & ~arm_treated)
    unit, t, arm_treated, arm_code = unit[keep], t[keep], arm_treated[keep], arm_code[keep]
    z = rng.standard_normal(n)
    logit = (m.score_loc + m.score_scale * z[unit] + 0.35 * rng.standard_normal(unit.size)
             + m.drift_per_year * t / 365.0)
    frames.exp_id.append(ids[unit])
    frames.exp_t.append(t)
    frames.exp_model.append(np.full(unit.size, _model_codes().index(m.model_value or m.name), np.int8))
    frames.exp_arm.append(arm_code.astype(np.int8))
    frames.exp_score.append(np.round(1.0 / (1.0 + np.exp(-logit)), 5))
    frames.exp_country.append(country[unit].astype(np.int8))
    if m.decisions is not None:
        frames.pred_t.append(t[arm_treated])
        frames.pred_score.append(frames.exp_score[-1][arm_treated])


def _model_codes() -> list[str]:
    return [m.model_value or m.name for m in MODELS]


def _add_outcomes(rng: np.random.Generator, frames: _Frames, ids: np.ndarray, t: np.ndarray,
                  value: np.ndarray, event_type: str) -> None:
    # inside the data range, and only if it has landed by as_of (recent events may still be missing)
    age = HISTORY_DAYS - t
    lag = _LANDING_LAG[event_type]
    landed = (t >= 0) & (age > 0) & (rng.random(t.size) < np.clip(age / lag, 0.0, 1.0))
    frames.out_id.append(ids[landed])
    frames.out_t.append(t[landed])
    frames.out_type.append(np.full(int(landed.sum()), _EVENT_TYPES.index(event_type), np.int8))
    frames.out_value.append(value[landed])


def _daily_series(rng: np.random.Generator, m: _Model, scale: float, weekday0: int, data_start: dt.date) -> pd.DataFrame:
    d = np.arange(HISTORY_DAYS)
    weekly = _SERIES_WEEKLY / _SERIES_WEEKLY.mean()
    trend = 1 + _SERIES_TREND_PER_YEAR * d / 365
    e = np.empty(HISTORY_DAYS)
    shocks = rng.normal(0.0, _SERIES_COMMON_SD, HISTORY_DAYS)
    e[0] = shocks[0] / math.sqrt(1 - _SERIES_COMMON_PHI**2)
    for i in range(1, HISTORY_DAYS):  # 560 steps: cheap
        e[i] = _SERIES_COMMON_PHI * e[i - 1] + shocks[i]
    var_e = _SERIES_COMMON_SD**2 / (1 - _SERIES_COMMON_PHI**2)
    common = trend * np.exp(e - var_e / 2)  # mean-one shocks shared by every region
    launch = HISTORY_DAYS - m.launch_days_before
    out = {"day": pd.to_datetime([data_start + dt.timedelta(days=int(i)) for i in d]).date}
    for j, (col, base) in enumerate(_SERIES_BASE.items()):
        # each region has its own weekly amplitude, so the controls are close but not identical
        wk = 1 + (weekly[(weekday0 + d) % 7] - 1) * (1 + 0.15 * (j - 1.5))
        idio = np.exp(rng.normal(0.0, _SERIES_IDIO_SD, HISTORY_DAYS) - _SERIES_IDIO_SD**2 / 2)
        y = base * scale * common * wk * idio
        if col == "region_a_orders":
            y = np.where(d >= launch, y * (1 + m.effect_rel), y)
        out[col] = np.round(y, 0)
    return pd.DataFrame(out)


# ------------------------------------------------------------------------------------------------
# writing


def _to_timestamps(data_start: dt.date, t: np.ndarray) -> np.ndarray:
    base = np.datetime64(data_start.isoformat(), "s")
    return (base + np.floor(t * 86400.0).astype("timedelta64[s]")).astype("datetime64[us]")


def _manifest(scale: float, as_of: dt.date) -> dict[str, Any]:
    models = []
    for m in MODELS:
        entry: dict[str, Any] = {
            "name": m.name, "display_name": m.display_name, "owner": m.owner, "team": m.team,
            "status": "active", "connection": "demo", "timezone": m.timezone,
            "monthly_cost": round(m.monthly_cost * scale, 2) if not m.cost_changes else [
                {"from": as_of - dt.timedelta(days=d), "amount": round(c * scale, 2)}
                for d, c in ((m.launch_days_before, m.monthly_cost), *m.cost_changes)],
            "cost_per_1k_predictions": m.cost_per_1k,
            "one_off_costs": round(m.one_off * scale, 2),
            "interventions": [{"start": as_of - dt.timedelta(days=days), "label": label}
                              for days, label in m.interventions],
            "kpi": {"name": m.kpi_name, "unit": m.kpi_unit, "value_per_unit": m.value_per_unit,
                    "higher_is_better": m.higher_is_better, "aggregation": m.aggregation},
        }
        if m.method == "ab":
            exposures = {"table": "exposures", "unit": "customer_id", "timestamp": "scored_at",
                         "model": "model_id"}
            if m.model_value:
                exposures["model_value"] = m.model_value
            exposures.update({"arm": "arm", "treatment": "model", "control": "holdout", "score": "score",
                              "segment": "country"})
            entry["attribution"] = {
                "method": "ab", "window_days": m.window_days, "outcome_lag_days": m.lag,
                "covariate_days": m.covariate_days, "treatment_share": m.treatment_share,
                "exposures": exposures,
                "outcomes": {"table": "outcomes", "unit": "customer_id", "timestamp": "event_at",
                             "value": "value", "where": "event_type IN ('purchase', 'refund')" if m.kpi_includes_refunds
                             else f"event_type = '{m.event_type}'"},
            }
            if m.ramp:
                entry["attribution"]["allocation"] = [{"from": as_of - dt.timedelta(days=d), "treatment_share": s}
                                                      for d, s in m.ramp]
            if m.challenger_share:
                entry["attribution"]["challenger"] = {
                    "arm": "v2", "label": "v2", "treatment_share": m.challenger_share,
                    "monthly_cost": round(m.challenger_monthly_cost * scale, 2),
                    "cost_per_1k_predictions": m.challenger_cost_per_1k}
        else:
            entry["attribution"] = {
                "method": m.method, "outcome_lag_days": 1,
                "series": {"table": "daily_kpis", "date": "day", "value": "region_a_orders",
                           "controls": [c for c in _SERIES_BASE if c != "region_a_orders"]},
            }
        entry["thresholds"] = {"min_roi": m.min_roi, "unproven_after_days": m.unproven_after_days}
        if m.decisions is not None:
            entry["decisions"] = {
                "table": PREDICTIONS_TABLE, "id": "prediction_id", "timestamp": "predicted_at", "label": "is_fraud",
                "label_timestamp": "labelled_at", "score": "score", "threshold": DECISION_THRESHOLD,
                **{f"value_{k}": v for k, v in m.decisions.items()}, "label_lag_days": 120}
        if m.guardrails:
            entry["guardrails"] = [{**g, "outcomes": {"table": "outcomes", "unit": "customer_id", "timestamp": "event_at",
                                                      "value": "value", "where": "event_type = 'refund'"}}
                                   for g in m.guardrails]
        models.append(entry)
    return {"models": models}


def manifest_text(*, as_of: dt.date | None = None, scale: float = 1.0) -> str:
    """The demo manifest as TOML text (what ``build_demo`` writes to demo_models.toml).

    Laid out exactly as in the design: one ``[[models]]`` table per model, then its
    ``[[models.interventions]]``, ``[models.kpi]``, ``[models.attribution]`` (+ sub-tables) and
    ``[models.thresholds]`` (tomli_w alone would inline the short interventions).
    """
    import tomli_w

    as_of = as_of or _today_utc()
    parts = ["# The demo company's models, written by valuetrack.demo (generated: do not edit).\n"
             f"# Data from {as_of - dt.timedelta(days=HISTORY_DAYS)} to {as_of - dt.timedelta(days=1)}; "
             f"costs scaled by {scale:g}. Ground truth: docs/demo-company.md.\n"]
    for entry in _manifest(scale, as_of)["models"]:
        scalars = {k: v for k, v in entry.items() if not isinstance(v, (dict, list))}
        dated = "".join(f"{k} = [" + ", ".join(f"{{from = {x['from'].isoformat()}, amount = {x['amount']!r}}}" for x in v)
                        + "]\n" for k, v in entry.items() if k == "monthly_cost" and isinstance(v, list))
        parts.append("\n[[models]]\n" + tomli_w.dumps(scalars) + dated)
        for iv in entry["interventions"]:
            parts.append("\n[[models.interventions]]\n" + tomli_w.dumps(iv))
        parts.append("\n[models.kpi]\n" + tomli_w.dumps(entry["kpi"]))
        attribution = entry["attribution"]
        parts.append("\n[models.attribution]\n"
                     + tomli_w.dumps({k: v for k, v in attribution.items() if not isinstance(v, (dict, list))}))
        for step in attribution.get("allocation", []):
            parts.append("\n[[models.attribution.allocation]]\n" + tomli_w.dumps(step))
        for sub in ("exposures", "outcomes", "series", "challenger"):
            if sub in attribution:
                body = dict(attribution[sub])
                controls = body.pop("controls", None)
                text = tomli_w.dumps(body)
                if controls is not None:  # inline, as in the design (names are plain identifiers)
                    text += "controls = [" + ", ".join(f'"{c}"' for c in controls) + "]\n"
                parts.append(f"\n[models.attribution.{sub}]\n" + text)
        parts.append("\n[models.thresholds]\n" + tomli_w.dumps(entry["thresholds"]))
        if "decisions" in entry:
            parts.append("\n[models.decisions]\n" + tomli_w.dumps(entry["decisions"]))
        for g in entry.get("guardrails", []):
            parts.append("\n[[models.guardrails]]\n" + tomli_w.dumps({k: v for k, v in g.items() if k != "outcomes"}))
            parts.append("\n[models.guardrails.outcomes]\n" + tomli_w.dumps(g["outcomes"]))
    return "".join(parts)


PANEL_EXAMPLE_NAME = "demo_panel_example.toml"


def panel_example_text(*, as_of: dt.date | None = None, scale: float = 1.0) -> str:
    """A worked example of a panel model (docs/user-guide.md): dynamic pricing valued by
    difference-in-differences on the ``region_orders`` panel (region a treated; b, c, d untreated).
    ``build_demo`` writes it beside the demo manifest; it is not registered by ``valuetrack demo``."""
    import tomli_w

    as_of = as_of or _today_utc()
    entry = next(e for e in _manifest(scale, as_of)["models"] if e["name"] == "dynamic-pricing")
    scalars = {k: v for k, v in entry.items() if not isinstance(v, (dict, list))}
    scalars.update(name="dynamic-pricing-panel", display_name="Dynamic pricing (region A, panel)")
    parts = ["# Worked example: a panel model (register it with `valuetrack models register --file "
             f"sample_data/{PANEL_EXAMPLE_NAME}`).\n", "\n[[models]]\n" + tomli_w.dumps(scalars)]
    parts += ["\n[[models.interventions]]\n" + tomli_w.dumps(iv) for iv in entry["interventions"]]
    parts.append("\n[models.kpi]\n" + tomli_w.dumps(entry["kpi"]))
    parts.append('\n[models.attribution]\nmethod = "did"\n\n[models.attribution.panel]\n'
                 'table = "region_orders"\nunit = "region"\ndate = "day"\nvalue = "orders"\ntreated = ["a"]\n')
    return "".join(parts)


PREDICTIONS_TABLE = "fraud_predictions"
DECISION_THRESHOLD = 0.3
LABEL_DELAY_MEAN = 24.0
"""Mean days from a prediction to its label (a chargeback or a cleared payment): gamma, shape 2."""


def _predictions(rng: np.random.Generator, frames: _Frames, data_start: dt.date) -> pd.DataFrame:
    """One row per treated scoring event of the decisions model: the class is drawn from the score
    (calibrated scores; their drift is covariate shift), the label lands weeks later and is NULL
    if it has not landed by as_of."""
    t = np.concatenate(frames.pred_t) if frames.pred_t else np.zeros(0)
    score = np.concatenate(frames.pred_score) if frames.pred_score else np.zeros(0)
    order = np.argsort(t, kind="stable")
    t, score = t[order], score[order]
    label = (rng.random(t.size) < score).astype(np.int8)
    label_t = t + rng.gamma(2.0, LABEL_DELAY_MEAN / 2.0, t.size)
    known = label_t < HISTORY_DAYS
    return pd.DataFrame({
        "prediction_id": np.arange(1, t.size + 1, dtype=np.int64),
        "predicted_at": _to_timestamps(data_start, t),
        "score": score,
        "is_fraud": pd.Series(label, dtype="Int8").where(known),
        "labelled_at": pd.Series(_to_timestamps(data_start, label_t)).where(known),
    })


def _today_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def _write_warehouse(path: Path, frames: _Frames, series: pd.DataFrame, meta: dict[str, Any],
                     data_start: dt.date, predictions: pd.DataFrame) -> dict[str, int]:
    import duckdb

    # rows in time order, as a warehouse would hold them (sorted here: cheaper than ORDER BY in SQL)
    ts = _to_timestamps(data_start, np.concatenate(frames.exp_t))
    order = np.argsort(ts, kind="stable")
    exposures = pd.DataFrame({
        "customer_id": np.concatenate(frames.exp_id)[order],
        "scored_at": ts[order],
        "model_id": pd.Categorical.from_codes(np.concatenate(frames.exp_model)[order], _model_codes()),
        "arm": pd.Categorical.from_codes(np.concatenate(frames.exp_arm)[order], ["model", "holdout", "v2"]),
        "score": np.concatenate(frames.exp_score)[order],
        "country": pd.Categorical.from_codes(np.concatenate(frames.exp_country)[order], list(COUNTRIES)),
    })
    ts = _to_timestamps(data_start, np.concatenate(frames.out_t))
    order = np.argsort(ts, kind="stable")
    outcomes = pd.DataFrame({
        "customer_id": np.concatenate(frames.out_id)[order],
        "event_at": ts[order],
        "event_type": pd.Categorical.from_codes(np.concatenate(frames.out_type)[order], list(_EVENT_TYPES)),
        "value": np.concatenate(frames.out_value).astype(float)[order],
    })
    del ts, order
    con = duckdb.connect(str(path))
    try:
        con.execute("SET enable_progress_bar = false")
        con.register("exposures_df", exposures)
        con.register("outcomes_df", outcomes)
        con.register("series_df", series)
        con.register("predictions_df", predictions)
        con.execute("""
            CREATE TABLE exposures AS
            SELECT customer_id::BIGINT AS customer_id, scored_at::TIMESTAMP AS scored_at,
                   model_id::VARCHAR AS model_id, arm::VARCHAR AS arm, score::DOUBLE AS score,
                   country::VARCHAR AS country
            FROM exposures_df""")
        con.execute("""
            CREATE TABLE outcomes AS
            SELECT customer_id::BIGINT AS customer_id, event_at::TIMESTAMP AS event_at,
                   event_type::VARCHAR AS event_type, value::DOUBLE AS value
            FROM outcomes_df""")
        con.execute("CREATE TABLE daily_kpis AS SELECT day::DATE AS day, * EXCLUDE (day) FROM series_df ORDER BY day")
        # the same regions as a panel (one row per region and day), for the did worked example
        con.execute("""
            CREATE VIEW region_orders AS
            SELECT day, replace(replace(region, 'region_', ''), '_orders', '') AS region, orders
            FROM (UNPIVOT daily_kpis ON COLUMNS('^region_') INTO NAME region VALUE orders)""")
        con.execute(f"""
            CREATE TABLE {PREDICTIONS_TABLE} AS
            SELECT prediction_id::BIGINT AS prediction_id, predicted_at::TIMESTAMP AS predicted_at,
                   score::DOUBLE AS score, is_fraud::INTEGER AS is_fraud, labelled_at::TIMESTAMP AS labelled_at
            FROM predictions_df""")  # noqa: S608 - a fixed name
        con.execute("""
            CREATE TABLE _demo_meta (generator_version INTEGER, seed BIGINT, scale DOUBLE, as_of DATE,
                                     data_start DATE, data_end DATE, built_at TIMESTAMP)""")
        con.execute("INSERT INTO _demo_meta VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [meta["generator_version"], meta["seed"], meta["scale"], meta["as_of"], meta["data_start"],
                     meta["data_end"], meta["built_at"]])
        for name in ("exposures_df", "outcomes_df", "series_df", "predictions_df"):
            con.unregister(name)
        rows = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # noqa: S608 - fixed names
                for t in ("exposures", "outcomes", "daily_kpis", PREDICTIONS_TABLE)}
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return rows


def _temp_path(directory: Path, name: str) -> Path:
    """A fresh, unused path in ``directory`` (same file system, so os.replace is atomic)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    os.unlink(tmp)  # DuckDB must create its file itself
    return Path(tmp)


def build_demo(directory: Path | str, *, as_of: dt.date | None = None, seed: int = DEFAULT_SEED,
               scale: float = 1.0) -> DemoBuild:
    """Generate the demo warehouse and manifest in ``directory``.

    Args:
        directory: folder for ``demo.duckdb`` and ``demo_models.toml`` (created if missing).
        as_of: data runs from ``as_of - HISTORY_DAYS`` to ``as_of - 1``; default today in UTC.
        seed: the random seed; the same seed, scale and as_of give identical data.
        scale: multiplies the number of units, the costs in the manifest and the level of the daily
            series (1.0 ≈ 1.5 million units; tests use ~0.05).

    Returns:
        A :class:`DemoBuild` describing what was written.

    Raises:
        ParameterError: scale is not a positive number or seed is negative.
    """
    from valuetrack.errors import ParameterError

    started = time.perf_counter()
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and 0 < scale <= 20):
        raise ParameterError(f"scale: must be a number in (0, 20] (got {scale!r})")
    if not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"seed: must be a whole number >= 0 (got {seed!r})")
    scale = float(scale)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    as_of = as_of or _today_utc()
    data_start = as_of - dt.timedelta(days=HISTORY_DAYS)
    data_end = as_of - dt.timedelta(days=1)
    weekday0 = data_start.weekday()

    frames = _Frames()
    units: dict[str, _Units] = {}
    series = None
    for m in MODELS:
        # one stream per model, keyed by its name: adding or reordering models leaves the others' data alone
        rng = np.random.default_rng([seed, STREAM_VERSION, zlib.crc32(m.name.encode())])
        if m.method == "ab":
            _generate_model(rng, m, frames, units, scale, weekday0)
        else:
            series = _daily_series(rng, m, scale, weekday0, data_start)
    assert series is not None

    db_path = directory / DB_NAME
    manifest_path = directory / MANIFEST_NAME
    tmp_db = _temp_path(directory, DB_NAME)
    tmp_manifest = _temp_path(directory, MANIFEST_NAME)
    try:
        meta = {"generator_version": GENERATOR_VERSION, "seed": seed, "scale": scale, "as_of": as_of,
                "data_start": data_start, "data_end": data_end,
                "built_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)}
        predictions = _predictions(np.random.default_rng([seed, STREAM_VERSION, zlib.crc32(b"decisions")]),
                                   frames, data_start)
        rows = _write_warehouse(tmp_db, frames, series, meta, data_start, predictions)
        tmp_manifest.write_text(manifest_text(as_of=as_of, scale=scale), encoding="utf-8")
        (directory / PANEL_EXAMPLE_NAME).write_text(panel_example_text(as_of=as_of, scale=scale), encoding="utf-8")
        # both files are complete: swap them in. A WAL left beside the old file would be replayed
        # into the new one, so it goes first.
        Path(str(db_path) + ".wal").unlink(missing_ok=True)
        os.replace(tmp_db, db_path)
        os.replace(tmp_manifest, manifest_path)
    finally:
        for leftover in (tmp_db, Path(str(tmp_db) + ".wal"), tmp_manifest):
            leftover.unlink(missing_ok=True)
    return DemoBuild(
        directory=directory, database=db_path, manifest=manifest_path, as_of=as_of, data_start=data_start,
        data_end=data_end, seed=seed, scale=scale, rows=rows, models=tuple(m.name for m in MODELS),
        elapsed_s=round(time.perf_counter() - started, 3),
    )


def read_meta(directory: Path | str) -> dict[str, Any] | None:
    """The ``_demo_meta`` row of the warehouse in ``directory``, or None if absent or unreadable."""
    path = Path(directory) / DB_NAME
    if not path.is_file():
        return None
    try:
        import duckdb

        con = duckdb.connect(str(path), read_only=True)
        try:
            cur = con.execute("SELECT * FROM _demo_meta LIMIT 1")
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        finally:
            con.close()
    except Exception:  # missing table, corrupt or locked file: not current
        return None
    return dict(zip(names, row)) if row else None


def is_current(directory: Path | str, as_of: dt.date | None = None, *, seed: int = DEFAULT_SEED,
               scale: float = 1.0) -> bool:
    """Whether ``directory`` holds a demo built by this generator version with this seed and scale
    whose data runs to ``as_of - 1`` (and its manifest is there), so it need not be rebuilt."""
    as_of = as_of or _today_utc()
    if not (Path(directory) / MANIFEST_NAME).is_file():
        return False
    meta = read_meta(directory)
    if meta is None:
        return False
    return (meta.get("generator_version") == GENERATOR_VERSION and meta.get("seed") == seed
            and meta.get("scale") is not None and abs(float(meta["scale"]) - float(scale)) < 1e-12
            and meta.get("data_end") == as_of - dt.timedelta(days=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valuetrack.demo", description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", default="sample_data", help="output folder (default sample_data)")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD (default today, UTC)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--force", action="store_true", help="rebuild even if the warehouse is current")
    args = parser.parse_args(argv)
    as_of = args.as_of or _today_utc()
    if not args.force and is_current(args.directory, as_of, seed=args.seed, scale=args.scale):
        print(f"{Path(args.directory) / DB_NAME} is current (data to {as_of - dt.timedelta(days=1)}); "
              "use --force to rebuild")
        return 0
    build = build_demo(args.directory, as_of=as_of, seed=args.seed, scale=args.scale)
    rows = ", ".join(f"{k} {v:,}" for k, v in build.rows.items())
    print(f"wrote {build.database} ({rows}) and {build.manifest} in {build.elapsed_s:.1f} s; "
          f"data {build.data_start} .. {build.data_end}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
