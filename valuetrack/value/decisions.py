"""What a classifier's decisions are worth, while their labels arrive late.

From the stored decisions aggregate (per prediction day × score bin × decision: counts, score sums,
labelled counts and positives; see :func:`valuetrack.queries.decisions_query`) and the money of each
outcome (``[models.decisions]``: value_tp, value_fp, value_fn, value_tn):

- **realised** value: the labelled cases' confusion matrix × the money of each cell;
- **estimate** for the cases still without a label, from their scores (confidence-based, as NannyML's
  CBPE): a case decided 1 with score s is a true positive with probability s, so its expected money
  is s·value_tp + (1−s)·value_fp, with variance s(1−s)·(value_tp − value_fp)²; summed over cases
  (a Poisson-binomial count) this needs only Σs and Σs² per bin. It assumes calibrated scores:
  P(class 1 | score s) = s, which survives covariate shift but not concept shift;
- a **check** of that assumption once labels arrive: per prediction month, the score-based estimate
  of the labelled cases against their realised value (a z-test); a gap beyond chance is flagged;
- **other thresholds**: the same figures had the decision been score ≥ t, on a 0.01 grid.

Shown beside the causal estimate, never added to it. docs/methods-decisions.md explains it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from valuetrack.jsonsafe import num
from valuetrack.registry.spec import Decisions

CHECK_ALPHA = 0.001
"""A month's estimate is flagged when realised value differs from it at this two-sided level
(a daily check across months and models: the SRM convention of docs/methods-ab.md)."""
MIN_CHECK_LABELS = 50
"""Months with fewer labelled cases are not checked (too few to say anything)."""
GRID = np.round(np.arange(1, 100) / 100.0, 2)
"""Thresholds valued for "what another threshold would have been worth"."""


@dataclass(frozen=True)
class DecisionValue:
    """A classifier's decisions over one period, in money.

    Attributes:
        period_start, period_end: the prediction days covered.
        predictions: predictions in the period; labelled: those whose label is known.
        counts: the labelled cases' confusion matrix: tp, fp, fn, tn.
        realised: money from the labelled cases.
        estimate: expected money from the unlabelled cases (from scores; None without a score
            column, or when every case is labelled: then 0).
        estimate_se: its standard error.
        total: realised + estimate (what the period's decisions are worth, part of it estimated).
        ci_total: the interval of ``total`` at ``alpha`` (realised is known; only the estimate varies).
        estimated_share: share of predictions still unlabelled.
        per_prediction: total / predictions.
        threshold: the threshold in use (None when a decision column is used).
        thresholds: for each threshold t on the grid: {"threshold", "value", "se"} had the decision
            been score ≥ t (realised on labelled cases + estimate on the others).
        best_threshold, best_value: the grid threshold worth most.
        checks: per prediction month with labels: {"month", "labelled", "estimated", "realised",
            "gap", "se", "p_value", "flagged"}: the score-based estimate of the labelled cases
            against what they realised.
        flagged: any month's check flagged (the scores no longer mean what they did: concept shift
            or miscalibration); reason says which months.
        alpha: level of ``ci_total``.
    """

    period_start: dt.date
    period_end: dt.date
    predictions: int
    labelled: int
    counts: dict[str, int]
    realised: float
    estimate: float | None
    estimate_se: float | None
    total: float | None
    ci_total: tuple[float, float] | None
    estimated_share: float
    per_prediction: float | None
    threshold: float | None
    thresholds: list[dict[str, float | None]]
    best_threshold: float | None
    best_value: float | None
    checks: list[dict[str, Any]]
    flagged: bool
    reason: str | None
    alpha: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["ci_total"] = list(self.ci_total) if self.ci_total else None
        return out


def decision_value(frame: pd.DataFrame, d: Decisions, start: dt.date, end: dt.date, *,
                   alpha: float = 0.05) -> DecisionValue:
    """The decisions of prediction days [start, end] in ``frame`` (the stored aggregate), in money."""
    if len(frame):
        frame = frame[(frame["day"] >= start) & (frame["day"] <= end)]
    f = {k: frame[k].to_numpy(dtype=float) if len(frame) else np.zeros(0) for k in _COLS}
    dec = f["decision"] == 1
    pos, lab = f["n_positive"], f["n_labelled"]
    counts = {"tp": int(pos[dec].sum()), "fp": int((lab - pos)[dec].sum()),
              "fn": int(pos[~dec].sum()), "tn": int((lab - pos)[~dec].sum())}
    realised = (counts["tp"] * d.value_tp + counts["fp"] * d.value_fp + counts["fn"] * d.value_fn
                + counts["tn"] * d.value_tn)
    n, labelled = int(f["n"].sum()), int(lab.sum())
    has_score = d.score is not None and bool(np.all(f["bin"] >= 0))
    estimate = se = None
    if has_score:
        m, s, s2 = _unlabelled(f)
        estimate, var = _expected(m, s, s2, dec, d)
        se = float(np.sqrt(var))
    elif n == labelled:
        estimate, se = 0.0, 0.0
    total = ci = None
    if estimate is not None:
        z = stats.norm.ppf(1 - alpha / 2)
        total = realised + estimate
        ci = (total - z * se, total + z * se)
    curve = _curve(f, d) if has_score else []
    best = max(curve, key=lambda r: r["value"]) if curve else None
    checks = _checks(frame, d) if has_score else []
    bad = [c["month"] for c in checks if c["flagged"]]
    reason = (f"realised value differs from the score-based estimate in {', '.join(bad)}: the scores no longer "
              "mean what they did (concept shift or miscalibration), so the estimate for unlabelled cases "
              "is not reliable") if bad else None
    return DecisionValue(
        period_start=start, period_end=end, predictions=n, labelled=labelled, counts=counts,
        realised=float(realised), estimate=num(estimate), estimate_se=num(se), total=num(total),
        ci_total=(float(ci[0]), float(ci[1])) if ci else None,
        estimated_share=(n - labelled) / n if n else 0.0,
        per_prediction=num(total / n) if total is not None and n else None,
        threshold=None if d.decision else d.threshold, thresholds=curve,
        best_threshold=best["threshold"] if best else None, best_value=best["value"] if best else None,
        checks=checks, flagged=bool(bad), reason=reason, alpha=alpha)


_COLS = ("bin", "decision", "n", "sum_s", "sum_s2", "n_labelled", "n_positive", "sum_s_labelled", "sum_s2_labelled")


def _unlabelled(f: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: unlabelled cases, their Σs and Σs²."""
    return f["n"] - f["n_labelled"], f["sum_s"] - f["sum_s_labelled"], f["sum_s2"] - f["sum_s2_labelled"]


def _expected(m: np.ndarray, s: np.ndarray, s2: np.ndarray, decided: np.ndarray, d: Decisions) -> tuple[float, float]:
    """Expected money and its variance for cases with Σs = s, Σs² = s2 among m, decided as given."""
    hit = np.where(decided, d.value_tp, d.value_fn)  # money if class 1
    miss = np.where(decided, d.value_fp, d.value_tn)  # money if class 0
    mean = s * hit + (m - s) * miss
    var = np.maximum(s - s2, 0.0) * (hit - miss) ** 2
    return float(mean.sum()), float(var.sum())


def _curve(f: dict[str, np.ndarray], d: Decisions) -> list[dict[str, float | None]]:
    """Value had the decision been score ≥ t, for t on the grid (realised + estimated)."""
    bins = f["bin"].astype(int)
    per_bin = {k: np.bincount(bins, weights=f[k], minlength=100)[:100] for k in _COLS[2:]}
    pos, neg = per_bin["n_positive"], per_bin["n_labelled"] - per_bin["n_positive"]
    m = per_bin["n"] - per_bin["n_labelled"]
    s, s2 = per_bin["sum_s"] - per_bin["sum_s_labelled"], per_bin["sum_s2"] - per_bin["sum_s2_labelled"]
    out = []
    for t in GRID:
        above = np.arange(100) >= int(round(t * 100))
        realised = (pos[above].sum() * d.value_tp + neg[above].sum() * d.value_fp
                    + pos[~above].sum() * d.value_fn + neg[~above].sum() * d.value_tn)
        est, var = _expected(m, s, s2, above, d)
        out.append({"threshold": float(t), "value": float(realised + est), "se": float(np.sqrt(var))})
    return out


def _checks(frame: pd.DataFrame, d: Decisions) -> list[dict[str, Any]]:
    """Per prediction month: the score-based estimate of the labelled cases against their realised value."""
    if not len(frame):
        return []
    out = []
    months = pd.to_datetime(frame["day"]).dt.strftime("%Y-%m")
    for month, rows in frame.groupby(months.to_numpy()):
        lab = rows["n_labelled"].to_numpy(dtype=float)
        if lab.sum() < MIN_CHECK_LABELS:
            continue
        dec = rows["decision"].to_numpy() == 1
        pos = rows["n_positive"].to_numpy(dtype=float)
        realised = float((np.where(dec, d.value_tp, d.value_fn) * pos + np.where(dec, d.value_fp, d.value_tn)
                          * (lab - pos)).sum())
        est, var = _expected(lab, rows["sum_s_labelled"].to_numpy(dtype=float),
                             rows["sum_s2_labelled"].to_numpy(dtype=float), dec, d)
        se = float(np.sqrt(var))
        p = float(2 * stats.norm.sf(abs(realised - est) / se)) if se > 0 else (1.0 if realised == est else 0.0)
        out.append({"month": month, "labelled": int(lab.sum()), "estimated": est, "realised": realised,
                    "gap": realised - est, "se": se, "p_value": p, "flagged": p < CHECK_ALPHA})
    return out
