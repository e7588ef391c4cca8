"""A classifier's decisions in money (valuetrack.value.decisions): exact arithmetic on a small
case, and seeded simulations of labels that lag: under covariate shift the estimate's 95 %
interval covers the value the unlabelled cases realise once their labels arrive; under concept
shift the gap is flagged. docs/methods-decisions.md quotes the figures."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from valuetrack.registry.spec import Decisions
from valuetrack.value.decisions import decision_value

SPEC = Decisions(table="fraud_predictions", id="prediction_id", timestamp="predicted_at", label="is_fraud",
                 label_timestamp="labelled_at", score="score", threshold=0.5,
                 value_tp=150.0, value_fp=-20.0, value_fn=-300.0, value_tn=0.0)
DAY0 = dt.date(2026, 1, 1)


def aggregate(day: np.ndarray, score: np.ndarray, decision: np.ndarray, label: np.ndarray,
              known: np.ndarray) -> pd.DataFrame:
    """What decisions_query returns, computed from cases in numpy (the query's own SQL is tested
    against DuckDB in tests/connectors)."""
    frame = pd.DataFrame({"day": day, "bin": np.clip(np.floor(score * 100), 0, 99).astype(int),
                          "decision": decision.astype(int), "n": 1, "sum_s": score, "sum_s2": score ** 2,
                          "n_labelled": known.astype(int), "n_positive": (known & (label == 1)).astype(int),
                          "sum_s_labelled": np.where(known, score, 0.0), "sum_s2_labelled": np.where(known, score ** 2, 0.0)})
    return frame.groupby(["day", "bin", "decision"], as_index=False).sum()


def money(decision: np.ndarray, label: np.ndarray) -> float:
    return float(np.where(decision == 1, np.where(label == 1, SPEC.value_tp, SPEC.value_fp),
                          np.where(label == 1, SPEC.value_fn, SPEC.value_tn)).sum())


def test_realised_and_estimated_money_by_hand():
    day = np.array([DAY0] * 5)
    score = np.array([0.9, 0.8, 0.2, 0.6, 0.1])
    decision = (score >= 0.5).astype(int)
    label = np.array([1, 0, 1, 0, 0])
    known = np.array([True, True, True, False, False])
    r = decision_value(aggregate(day, score, decision, label, known), SPEC, DAY0, DAY0)
    assert r.counts == {"tp": 1, "fp": 1, "fn": 1, "tn": 0}
    assert r.realised == pytest.approx(150 - 20 - 300)
    # unlabelled: 0.6 decided 1 → 0.6·150 + 0.4·(−20); 0.1 decided 0 → 0.1·(−300) + 0.9·0
    assert r.estimate == pytest.approx(0.6 * 150 - 0.4 * 20 - 0.1 * 300)
    assert r.estimate_se ** 2 == pytest.approx(0.6 * 0.4 * 170 ** 2 + 0.1 * 0.9 * 300 ** 2)
    assert r.total == pytest.approx(r.realised + r.estimate)
    assert r.estimated_share == pytest.approx(0.4) and r.labelled == 3 and r.predictions == 5
    curve = {c["threshold"]: c["value"] for c in r.thresholds}
    assert curve[0.5] == pytest.approx(r.total)  # the grid point at the threshold in use is the actual value
    # at 0.95 nothing is flagged: labelled 1,0,1 → fn, tn, fn; unlabelled 0.6, 0.1 → fn with p = s
    assert curve[0.95] == pytest.approx(-300 * 2 + (0.6 + 0.1) * -300)
    assert r.best_value == max(curve.values())


def test_without_a_score_only_labelled_cases_count():
    spec = Decisions(**{**SPEC.__dict__, "score": None, "decision": "flagged"})
    frame = pd.DataFrame({"day": [DAY0, DAY0], "bin": [-1, -1], "decision": [1, 0], "n": [10, 10], "sum_s": [0.0, 0.0],
                          "sum_s2": [0.0, 0.0], "n_labelled": [10, 4], "n_positive": [6, 1], "sum_s_labelled": [0.0, 0.0],
                          "sum_s2_labelled": [0.0, 0.0]})
    r = decision_value(frame, spec, DAY0, DAY0)
    assert r.realised == pytest.approx(6 * 150 - 4 * 20 - 300)
    assert r.estimate is None and r.total is None and r.thresholds == [] and r.threshold is None


def _period(rng: np.random.Generator, n: int, a: float, b: float, concept: float = 1.0,
            labelled_share: float = 0.4, day: dt.date = DAY0):
    score = rng.beta(a, b, n)
    label = (rng.random(n) < np.clip(concept * score, 0, 1)).astype(int)
    known = rng.random(n) < labelled_share
    decision = (score >= SPEC.threshold).astype(int)
    return np.array([day] * n), score, decision, label, known


def test_under_covariate_shift_the_interval_covers_what_unlabelled_cases_realise():
    """500 periods whose score distribution drifts (P(class 1 | score) unchanged): the 95 %
    interval of the estimate for the unlabelled cases covers their realised value (once labels
    arrive) in 90–98 % of periods."""
    rng = np.random.default_rng(2020)
    covered = []
    for k in range(500):
        a, b = rng.uniform(0.5, 3.0), rng.uniform(2.0, 8.0)  # a different score mix each period
        day, score, decision, label, known = _period(rng, 3000, a, b)
        r = decision_value(aggregate(day, score, decision, label, known), SPEC, DAY0, DAY0)
        truth = money(decision[~known], label[~known])
        lo, hi = r.ci_total[0] - r.realised, r.ci_total[1] - r.realised
        covered.append(lo <= truth <= hi)
    rate = float(np.mean(covered))
    print(f"decisions estimate coverage under covariate shift: {rate:.3f}")
    assert 0.90 <= rate <= 0.98


def test_under_concept_shift_the_gap_is_flagged_once_labels_arrive():
    """Months 1–2 as before; in month 3 a class-1 case is only 60 % as likely at the same score.
    While month 3 has no labels nothing is flagged; once they arrive, month 3 (only) is flagged."""
    rng = np.random.default_rng(7)
    months = [_period(rng, 4000, 1.5, 5.0, day=dt.date(2026, m, 10)) for m in (1, 2)]
    shifted = _period(rng, 4000, 1.5, 5.0, concept=0.6, day=dt.date(2026, 3, 10))
    cat = lambda parts, i: np.concatenate([p[i] for p in parts])  # noqa: E731
    before = [*months, (*shifted[:4], np.zeros(4000, dtype=bool))]
    after = [*months, (*shifted[:4], np.ones(4000, dtype=bool))]
    end = dt.date(2026, 3, 31)
    r0 = decision_value(aggregate(*(cat(before, i) for i in range(5))), SPEC, DAY0, end)
    r1 = decision_value(aggregate(*(cat(after, i) for i in range(5))), SPEC, DAY0, end)
    assert not r0.flagged and [c["month"] for c in r0.checks] == ["2026-01", "2026-02"]
    assert r1.flagged and [c["month"] for c in r1.checks if c["flagged"]] == ["2026-03"]
    # fewer frauds than the scores say: fewer missed frauds (−300 each) than estimated, so more money
    assert "2026-03" in r1.reason and r1.checks[-1]["gap"] > 0


def test_checks_rarely_cry_wolf_without_shift():
    rng = np.random.default_rng(11)
    flagged = 0
    for _ in range(300):
        day, score, decision, label, known = _period(rng, 2000, 1.5, 5.0)
        flagged += decision_value(aggregate(day, score, decision, label, known), SPEC, DAY0, DAY0).flagged
    assert flagged <= 3  # the check's level is 0.001 per month


def test_demo_fraud_screen_shows_its_decisions_beside_the_causal_value(demo_builder, monkeypatch, cli):
    monkeypatch.chdir(demo_builder(1.0, "2026-06-15"))
    monkeypatch.delenv("VALUETRACK_CONFIG", raising=False)
    monkeypatch.setenv("VALUETRACK_USER", "tester@example.com")
    models = {m["model"]: m for m in cli("value", "--as-of", "2026-06-15", "--json", schema="value").json["models"]}
    fraud = models["fraud-screen"]
    d = fraud["decisions"]
    assert all(m["decisions"] is None for n, m in models.items() if n != "fraud-screen")
    assert 0 < d["labelled"] < d["predictions"] and 0 < d["estimated_share"] < 0.2
    assert d["estimate"] > 0 and d["ci_total"][0] < d["total"] < d["ci_total"][1]
    assert d["total"] == pytest.approx(d["realised"] + d["estimate"])
    # the demo's scores are calibrated (they drift: covariate shift only), so no month is flagged
    assert d["checks"] and not d["flagged"]
    # break-even score of blocking: 130·s = 60·(1 − s) → s ≈ 0.32; the best grid threshold is near it
    assert 0.25 <= d["best_threshold"] <= 0.4
    # beside the causal estimate, not added to it
    assert fraud["gross"] != pytest.approx(d["total"])
    month = cli("value", "--as-of", "2026-06-15", "--month", "2026-05", "--json", schema="value").json
    may = next(m for m in month["models"] if m["model"] == "fraud-screen")["decisions"]
    assert may["period_start"] == "2026-05-01" and may["predictions"] < d["predictions"]
