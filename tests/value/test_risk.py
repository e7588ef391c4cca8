"""Risk per model: expected loss and P(net < 0) against independent computations, concentration,
the level rules at their boundaries, the vectorised helper, and the risks on the demo company."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats

from valuetrack.errors import ParameterError
from valuetrack.value import risk as R
from valuetrack.value.health import HealthCheck, ModelHealth
from valuetrack.value.risk import ModelRisk, model_risk, portfolio_risk, risk_level, risks_frame

AS_OF = dt.date(2026, 6, 15)


def _health(status: str, name: str = "m") -> ModelHealth:
    checks = (HealthCheck("exposure_freshness", status, 1.0, 2.0, f"freshness is {status}"),
              HealthCheck("srm", "ok", 0.5, 0.001, "srm fine"))
    return ModelHealth(name, AS_OF, status, checks)


def _expected_loss_by_quadrature(mean: float, sd: float) -> float:
    pdf = stats.norm(mean, sd).pdf
    value, _ = integrate.quad(lambda x: -x * pdf(x), mean - 40 * sd, 0.0, limit=200)
    return value if 0.0 > mean - 40 * sd else 0.0


@pytest.mark.parametrize("net, se", [(-100.0, 50.0), (0.0, 10.0), (250.0, 100.0), (1000.0, 2000.0), (-5.0, 0.5)])
def test_expected_loss_and_probability_match_independent_computations(net: float, se: float) -> None:
    r = model_risk(net, se, None, 1e6)
    assert r.expected_loss == pytest.approx(_expected_loss_by_quadrature(net, se), rel=1e-6, abs=1e-9)
    assert r.prob_negative == pytest.approx(stats.norm.cdf(0.0, loc=net, scale=se), rel=1e-12)
    # Monte Carlo, loosely
    draws = np.random.default_rng(0).normal(net, se, 400_000)
    assert r.expected_loss == pytest.approx(np.maximum(0, -draws).mean(), rel=0.02, abs=se * 1e-3)


def test_zero_net_has_expected_loss_sd_over_sqrt_2pi() -> None:
    r = model_risk(0.0, 10.0, None, 100.0)
    assert r.expected_loss == pytest.approx(10.0 / math.sqrt(2 * math.pi))
    assert r.prob_negative == pytest.approx(0.5)


def test_known_net_without_uncertainty() -> None:
    loss = model_risk(-300.0, 0.0, None, 1000.0)
    assert (loss.expected_loss, loss.prob_negative) == (300.0, 1.0)
    gain = model_risk(300.0, 0.0, None, 1000.0)
    assert (gain.expected_loss, gain.prob_negative) == (0.0, 0.0)


def test_no_estimate_gives_no_money_figures_and_medium() -> None:
    r = model_risk(None, None, None, 1000.0)
    assert r.expected_loss is None and r.prob_negative is None and r.concentration is None
    assert r.level == "medium" and "no value estimate" in r.reasons[0]
    nan = model_risk(float("nan"), 10.0, None, 1000.0)
    assert nan.expected_loss is None and nan.level == "medium"


def test_concentration() -> None:
    assert model_risk(100.0, 1.0, None, 1000.0, gross=600.0).concentration == pytest.approx(0.6)
    assert model_risk(100.0, 1.0, None, 1000.0).concentration == pytest.approx(0.1)  # falls back to net
    assert model_risk(-100.0, 1.0, None, 1000.0, gross=-50.0).concentration == 0.0  # destroys, carries nothing
    assert model_risk(100.0, 1.0, None, 0.0, gross=50.0).concentration is None  # portfolio creates nothing
    assert model_risk(100.0, 1.0, None, -10.0, gross=50.0).concentration is None


@pytest.mark.parametrize("p, conc, health, level", [
    (0.001, 0.1, "ok", "low"),
    (np.nextafter(0.05, 0), 0.1, "ok", "low"),
    (0.05, 0.1, "ok", "medium"),
    (np.nextafter(0.5, 0), 0.1, "ok", "medium"),
    (0.5, 0.1, "ok", "high"),
    (0.001, np.nextafter(0.5, 0), "ok", "low"),
    (0.001, 0.5, "ok", "medium"),
    (0.001, None, "ok", "low"),
    (0.001, 0.1, "unknown", "low"),
    (0.001, 0.1, None, "low"),
    (0.001, 0.1, "warning", "medium"),
    (0.001, 0.1, "problem", "high"),
    (None, None, "ok", "medium"),
    (None, None, "problem", "high"),
])
def test_level_boundaries(p, conc, health, level) -> None:
    got, reasons = risk_level(p, conc, health)
    assert got == level
    assert bool(reasons) == (level != "low")
    assert (R.HIGH_PROB_NEGATIVE, R.MEDIUM_PROB_NEGATIVE, R.CONCENTRATION_MEDIUM) == (0.5, 0.05, 0.5)


def test_health_problems_are_carried_and_make_the_risk_high() -> None:
    r = model_risk(5000.0, 100.0, _health("problem", "push"), 10_000.0, gross=5000.0)
    assert r.level == "high" and r.health_problems == ["freshness is problem"] and r.model == "push"
    assert r.prob_negative < 1e-10  # the money looks fine; the health makes the figures untrustworthy
    w = model_risk(5000.0, 100.0, _health("warning"), 100_000.0, gross=5000.0)
    assert w.level == "medium" and w.health_warnings == ["freshness is warning"] and not w.health_problems


def test_portfolio_risk_is_model_risk_per_row() -> None:
    net = [1000.0, -200.0, None, 0.0, 50.0]
    se = [300.0, 100.0, None, 0.0, 80.0]
    gross = [4000.0, 100.0, None, -10.0, 900.0]
    healths = [_health("ok", "a"), _health("warning", "b"), None, _health("problem", "d"), None]
    total = sum(max(g or 0.0, 0.0) for g in gross)
    many = portfolio_risk(net, se, gross, healths, models=["a", "b", "c", "d", "e"])
    for i, r in enumerate(many):
        one = model_risk(net[i], se[i], healths[i], total, gross=gross[i])
        assert r.to_dict() | {"model": ""} == one.to_dict() | {"model": ""}
    assert [r.model for r in many] == ["a", "b", "c", "d", "e"]
    assert sum(r.concentration or 0 for r in many) == pytest.approx(1.0)
    frame = risks_frame(many)
    assert list(frame["level"]) == [r.level for r in many] and len(frame) == 5
    assert list(risks_frame([]).columns) == list(ModelRisk(None, None, None, [], "low").to_dict())


def test_portfolio_risk_refuses_misuse() -> None:
    with pytest.raises(ParameterError):
        portfolio_risk([1.0, 2.0], [1.0], [1.0, 2.0], [None, None])
    with pytest.raises(ParameterError):
        model_risk(1.0, -1.0, None, 10.0)


# ------------------------------------------------------------------------------------------------
# the demo company (scale 0.1): value from the portfolio, health from the aggregates


@pytest.fixture(scope="module")
def demo_risks(demo_builder) -> dict[str, tuple[ModelRisk, object]]:
    from valuetrack.context import open_context
    from valuetrack.store.aggregates import AggregateStore
    from valuetrack.store.db import dispose_all
    from valuetrack.value.health import model_health
    from valuetrack.value.portfolio import value_portfolio

    root = demo_builder(0.1, str(AS_OF))
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.delenv("VALUETRACK_CONFIG", raising=False)
    try:
        ctx = open_context(cwd=root)
        store = AggregateStore(ctx.engine)
        portfolio = value_portfolio(ctx, as_of=AS_OF)
        specs = {reg.spec.name: reg.spec for reg in ctx.registry.list()}
        healths = []
        for m in portfolio.models:
            h = store.read_health(m.model)
            healths.append(model_health(specs[m.model], daily_exposures=h["daily_exposures"],
                                        score_histogram=h["score_histogram"], ab=store.read_ab(m.model),
                                        last_ok=store.status(m.model).last_ok, as_of=AS_OF,
                                        series=store.read_series(m.model)))
        risks = portfolio_risk([m.net for m in portfolio.models], [m.gross_se for m in portfolio.models],
                               [m.gross for m in portfolio.models], healths)
        return {m.model: (r, m) for m, r in zip(portfolio.models, risks)}
    finally:
        mp.undo()
        dispose_all()


def test_demo_broken_models_are_high_risk(demo_risks) -> None:
    for name in ("push-reactivation", "upsell-propensity"):
        r, _ = demo_risks[name]
        assert r.level == "high" and r.health_problems, name


def test_demo_money_losers_are_high_risk(demo_risks) -> None:
    # churn-save-offers costs far more than it creates; search-ranking-v4 creates nothing;
    # signup-risk-gate destroys value: each more likely than not loses money
    for name in ("churn-save-offers", "search-ranking-v4", "signup-risk-gate"):
        r, m = demo_risks[name]
        assert r.prob_negative > 0.5 and r.level == "high", (name, r)
        assert r.expected_loss > 0.5 * -m.net  # mostly the loss itself


def test_demo_risk_agrees_with_the_value_layer(demo_risks) -> None:
    for name, (r, m) in demo_risks.items():
        if m.net is None:
            assert r.expected_loss is None
            continue
        assert r.expected_loss == pytest.approx(m.expected_loss, rel=1e-9, abs=1e-9), name
        assert r.prob_negative == pytest.approx(1 - m.prob_positive, abs=1e-12), name
    assert sum(r.concentration or 0.0 for r, _ in demo_risks.values()) == pytest.approx(1.0)


def test_demo_dynamic_pricing_is_low_risk(demo_risks) -> None:
    r, _ = demo_risks["dynamic-pricing"]
    assert r.level == "low" and r.prob_negative < 0.01 and not r.health_problems
