"""Guardrail KPIs: secondary KPIs a model must not harm beyond a tolerance (docs/methods-value.md,
"Guardrails").

Each guardrail of ``[[models.guardrails]]`` is estimated by the model's A/B method on the same
exposures (``registry.spec.guardrail_view``): an effect per treated unit in the guardrail's units.
Its **harm** per treated unit is that effect signed so that positive is harm (``harm = "increase"``:
the effect; ``"decrease"``: minus the effect). The flag ``guardrail_breach`` (value/flags.py,
value/anytime.py::guardrail_flags) tests H0: harm ≤ tolerance.

Money: a guardrail with a ``value_per_unit`` is worth −harm × value per unit per treated unit. It
enters the model's gross (hence net) value unless ``in_main_kpi`` says its events are already
counted by the KPI (refunds inside net revenue): counting them again would charge the same refund
twice. The guardrail's effect and the KPI's come from the same units, and their covariance is not
among the stored statistics, so the standard error of the sum is bounded by the sum of the standard
errors (perfect correlation): never narrower than the truth.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from valuetrack.attribution.methods import Effect
from valuetrack.attribution.methods import get as get_method
from valuetrack.jsonsafe import num
from valuetrack.registry.spec import Guardrail, ModelSpec, guardrail_view


@dataclass(frozen=True)
class GuardrailEstimate:
    """One guardrail's effect to date.

    Attributes:
        guardrail: its manifest entry.
        effect: the A/B effect per treated unit in the guardrail's units (None: no estimate yet).
        n_control, n_treatment: units behind the estimate (mature cohorts).
    """

    guardrail: Guardrail
    effect: Effect
    n_control: float
    n_treatment: float

    @property
    def sign(self) -> float:
        """+1 when an increase is harm, −1 when a decrease is."""
        return 1.0 if self.guardrail.harm == "increase" else -1.0

    @property
    def harm(self) -> float | None:
        """Harm per treated unit (positive = harm), in the guardrail's units."""
        return None if self.effect.per_unit is None else self.sign * self.effect.per_unit

    @property
    def harm_se(self) -> float | None:
        return self.effect.per_unit_se

    @property
    def value_per_unit(self) -> float | None:
        """Money per treated unit (positive = good): −harm × value per unit; None without a value."""
        g = self.guardrail
        if g.value_per_unit is None or self.harm is None:
            return None
        return -self.harm * g.value_per_unit

    @property
    def value_se_per_unit(self) -> float | None:
        g = self.guardrail
        if g.value_per_unit is None or self.harm_se is None:
            return None
        return self.harm_se * g.value_per_unit

    def summary(self, treated_units: float, alpha: float = 0.05) -> dict[str, Any]:
        """The guardrail's figures for a period with ``treated_units`` (JSON-ready)."""
        from scipy import stats

        g, z = self.guardrail, float(stats.norm.ppf(1 - alpha / 2))
        harm, se = self.harm, self.harm_se
        ok = harm is not None and se is not None and np.isfinite(se)
        value = self.value_per_unit
        return {
            "name": g.name, "harm": g.harm, "unit": g.unit, "aggregation": g.aggregation,
            "tolerance": g.tolerance, "value_per_unit": g.value_per_unit, "in_main_kpi": g.in_main_kpi,
            "in_net": g.in_net, "effect": num(self.effect.per_unit), "effect_se": num(se),
            "harm_per_unit": num(harm), "ci_harm": [num(harm - z * se), num(harm + z * se)] if ok else None,
            "effect_rel": num(self.effect.effect_rel), "n_control": self.n_control, "n_treatment": self.n_treatment,
            "trusted": self.effect.trusted, "reason": self.effect.reason,
            "value": num(value * treated_units) if value is not None else None,
            "value_se": num(self.value_se_per_unit * treated_units) if value is not None else None,
        }


def estimate_guardrails(spec: ModelSpec, aggregates: pd.DataFrame, data: Any, as_of: dt.date,
                        alpha: float = 0.05) -> list[GuardrailEstimate]:
    """Each guardrail's effect to date from its stored aggregates (``AggregateStore.read_guardrails``),
    by the model's A/B method on the guardrail's view of the model; ``data`` is the model's own
    ``_ModelData`` (its other frames serve designs such as a challenger)."""
    import dataclasses

    out = []
    method = get_method("ab")
    for g in spec.guardrails:
        rows = aggregates[aggregates["guardrail"] == g.name] if len(aggregates) else aggregates
        rows = rows.drop(columns=["guardrail"]).assign(segment="") if len(rows) else rows
        if len(rows):
            rows = rows[rows["day"] < as_of]
        if not len(rows):
            effect = Effect.none("ab", "no data yet for this guardrail (refresh the model)")
        else:
            effect = method.estimate(guardrail_view(spec, g), dataclasses.replace(data, ab=rows), as_of, alpha=alpha)
        d = effect.details or {}
        out.append(GuardrailEstimate(g, effect, float(d.get("n_control") or 0.0), float(d.get("n_treatment") or 0.0)))
    return out


def net_money_per_unit(kpi_per_unit: float, kpi_se: float,
                       estimates: list[GuardrailEstimate]) -> tuple[float, float]:
    """Money per treated unit of the KPI (already sign-adjusted and valued) plus every guardrail that
    enters net value, with the conservative standard error (sum of the standard errors)."""
    value, se = kpi_per_unit, kpi_se
    for e in estimates:
        if e.guardrail.in_net and e.value_per_unit is not None:
            value += e.value_per_unit
            se += e.value_se_per_unit or 0.0
    return value, se


def enters_net(estimates: list[GuardrailEstimate]) -> bool:
    """Whether any guardrail's money is added to the model's value."""
    return any(e.guardrail.in_net and e.value_per_unit is not None for e in estimates)


def flag_inputs(estimates: list[GuardrailEstimate]) -> list[dict[str, Any]]:
    """What ``evaluate_flags`` needs per guardrail (the frame's ``guardrails`` column)."""
    return [{"name": e.guardrail.name, "harm": e.guardrail.harm, "unit": e.guardrail.unit,
             "tolerance": e.guardrail.tolerance, "harm_per_unit": e.harm, "harm_se": e.harm_se,
             "n_total": e.n_control + e.n_treatment} for e in estimates]
