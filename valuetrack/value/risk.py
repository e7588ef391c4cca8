"""Risk per model, in money: what could this model be losing us, and how exposed is the portfolio?

For a model with net value N estimated as ``net`` with standard error ``net_se`` (the same normal
posterior, flat prior, as :func:`valuetrack.value.roi.money_value`):

- ``expected_loss`` = E[max(0, −N)] = se·φ(net/se) − net·Φ(−net/se): the money the model is
  expected to lose, counting only the losing side (max(0, −net) when se = 0).
- ``prob_negative`` = P(N < 0) = Φ(−net/se).
- ``concentration`` = max(0, gross) / portfolio gross total: the share of the value the portfolio
  creates that rests on this one model (what the portfolio would lose if it broke). The total is the
  sum of the positive gross values of the portfolio's models.
- ``health_problems``: the messages of the model's health checks with status "problem".

The level (a coarse sort key; the money figures are the substance):

- **high**: a health problem (the figures or the model itself are broken), or P(N < 0) ≥ 0.5
  (the model more likely loses money than makes it);
- **medium**: a health warning, or P(N < 0) ≥ 0.05 (a loss is not ruled out at the usual level),
  or concentration ≥ 0.5 (half the portfolio's value depends on one model), or no value estimate
  yet (the risk is unknown, so not low);
- **low**: otherwise.

docs/methods-health-risk.md explains the choices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from valuetrack.errors import ParameterError
from valuetrack.value.health import ModelHealth
from valuetrack.value.roi import _expected_shortfall

__all__ = ["LEVELS", "ModelRisk", "model_risk", "portfolio_risk", "risk_level", "risks_frame"]

LEVELS = ("low", "medium", "high")
HIGH_PROB_NEGATIVE = 0.5
"""P(net value < 0) at or above which the risk is high."""
MEDIUM_PROB_NEGATIVE = 0.05
"""P(net value < 0) at or above which the risk is at least medium."""
CONCENTRATION_MEDIUM = 0.5
"""Share of the portfolio's gross value in one model at or above which the risk is at least medium."""


@dataclass(frozen=True)
class ModelRisk:
    """One model's risk.

    Attributes:
        expected_loss: E[max(0, −net value)] in the reporting currency, or None without an estimate.
        prob_negative: P(net value < 0) under a flat prior, or None without an estimate.
        concentration: the model's share of the portfolio's positive gross value (0..1), or None
            when the portfolio creates no value (total ≤ 0) or the model has no estimate.
        health_problems: messages of the model's health checks with status "problem".
        health_warnings: messages of its checks with status "warning".
        level: "low", "medium" or "high" (module docstring: how it is derived).
        model: the model's name ("" when not given).
        reasons: why the level is what it is (plain language, most serious first).
    """

    expected_loss: float | None
    prob_negative: float | None
    concentration: float | None
    health_problems: list[str]
    level: str
    model: str = ""
    health_warnings: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "expected_loss": self.expected_loss, "prob_negative": self.prob_negative,
                "concentration": self.concentration, "health_problems": list(self.health_problems),
                "health_warnings": list(self.health_warnings), "level": self.level, "reasons": list(self.reasons)}


def risk_level(prob_negative: float | None, concentration: float | None, health_status: str | None,
               ) -> tuple[str, list[str]]:
    """The level and its reasons from P(net < 0), concentration and the health status."""
    high, medium = [], []
    if health_status == "problem":
        high.append("a health check reports a problem")
    if prob_negative is not None and prob_negative >= HIGH_PROB_NEGATIVE:
        high.append(f"net value is more likely negative than positive (P = {prob_negative:.0%})")
    if health_status == "warning":
        medium.append("a health check reports a warning")
    if prob_negative is None:
        medium.append("no value estimate yet, so the risk is unknown")
    elif HIGH_PROB_NEGATIVE > prob_negative >= MEDIUM_PROB_NEGATIVE:
        medium.append(f"a loss is not ruled out (P(net value < 0) = {prob_negative:.0%})")
    if concentration is not None and concentration >= CONCENTRATION_MEDIUM:
        medium.append(f"{concentration:.0%} of the portfolio's gross value rests on this model")
    if high:
        return "high", high + medium
    if medium:
        return "medium", medium
    return "low", []


def model_risk(net: float | None, net_se: float | None, health: ModelHealth | None,
               portfolio_gross_total: float | None, *, gross: float | None = None) -> ModelRisk:
    """One model's risk.

    Args:
        net: net value of the period (money), or None when there is no estimate.
        net_se: its standard error (the gross value's: cost is known), or None.
        health: the model's :class:`ModelHealth`, or None when not checked.
        portfolio_gross_total: sum of the positive gross values of the portfolio's models.
        gross: the model's gross value, for its concentration; pass it. When omitted, ``net`` is
            used instead (what the portfolio would lose net of the cost it would save).

    Raises:
        ParameterError: ``net_se`` negative.
    """
    return portfolio_risk([net], [net_se], [gross if gross is not None else net], [health],
                          portfolio_gross_total=portfolio_gross_total)[0]


def portfolio_risk(net: Sequence[float | None], net_se: Sequence[float | None], gross: Sequence[float | None],
                   healths: Sequence[ModelHealth | None], *, portfolio_gross_total: float | None = None,
                   models: Sequence[str] | None = None) -> list[ModelRisk]:
    """Risk of k models at once (vectorised over the money figures).

    Args:
        net, net_se, gross: per model (None or NaN where there is no estimate).
        healths: per model, or None.
        portfolio_gross_total: defaults to the sum of the positive ``gross`` values given.
        models: names (default: the health's model name, or "").

    Raises:
        ParameterError: the sequences differ in length, or a standard error is negative.
    """
    k = len(net)
    if not (len(net_se) == len(gross) == len(healths) == k) or (models is not None and len(models) != k):
        raise ParameterError("net, net_se, gross, healths (and models) must have the same length")
    n, se, g = (np.array([np.nan if v is None else float(v) for v in a], dtype=float) for a in (net, net_se, gross))
    if np.any(se < 0):
        raise ParameterError("net_se must be >= 0")
    has = np.isfinite(n) & np.isfinite(se)
    n0, se0 = np.where(has, n, 0.0), np.where(has, se, 0.0)
    el = _expected_shortfall(n0, se0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pneg = np.where(se0 > 0, stats.norm.cdf(-n0 / np.where(se0 > 0, se0, 1.0)), (n0 < 0).astype(float))
    total = float(np.nansum(np.maximum(g, 0.0))) if portfolio_gross_total is None else float(portfolio_gross_total)
    with np.errstate(divide="ignore", invalid="ignore"):
        conc = np.where(np.isfinite(g) & (total > 0), np.maximum(g, 0.0) / total if total > 0 else np.nan, np.nan)
    out = []
    for i in range(k):
        h = healths[i]
        p = float(pneg[i]) if has[i] else None
        c = float(conc[i]) if math.isfinite(conc[i]) else None
        level, reasons = risk_level(p, c, h.status if h is not None else None)
        name = models[i] if models is not None else (h.model if h is not None else "")
        out.append(ModelRisk(
            model=name, expected_loss=float(el[i]) if has[i] else None, prob_negative=p, concentration=c,
            health_problems=h.problems if h is not None else [], level=level,
            health_warnings=h.warnings if h is not None else [], reasons=reasons))
    return out


def risks_frame(risks: Sequence[ModelRisk]) -> pd.DataFrame:
    """One row per model: the fields of :meth:`ModelRisk.to_dict`."""
    return pd.DataFrame([r.to_dict() for r in risks], columns=["model", "expected_loss", "prob_negative",
                                                                "concentration", "health_problems",
                                                                "health_warnings", "level", "reasons"])
