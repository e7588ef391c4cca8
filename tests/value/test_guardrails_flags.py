"""``guardrail_breach`` at its boundary, in both directions, as one family per model, across a
portfolio, and never on an untrusted measurement (value/anytime.py::guardrail_flags, flags.py).

With one model in the portfolio and one eligible guardrail, e-BH rejects exactly when the guardrail's
one-sided e-value (H0: harm ≤ tolerance) reaches 1/q; with G guardrails the family's e-value is their
mean, so a single harmed guardrail must reach G/q. Boundaries come from root-finding on the closed
form, which tests/value/test_flags_anytime.py checks against numerical integration.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from tests.value.test_flags_rules import N, frame, row
from valuetrack.value import anytime
from valuetrack.value.flags import REQUIRED, evaluate_flags

Q = 0.05
EPS = 1e-3


def boundary_z(threshold: float) -> float:
    """z = (harm − tolerance) / se at which the guardrail's e-value equals ``threshold``."""
    return optimize.brentq(lambda z: float(anytime.log_e_below(-z, 1.0, 0.0, N, N)) - np.log(threshold), 0, 20,
                           xtol=1e-12)


def guardrail(name: str, harm: float, tolerance: float = 0.05, se: float = 0.01, direction: str = "increase",
              n_total: float = N) -> dict[str, Any]:
    return {"name": name, "harm": direction, "unit": "USD", "tolerance": tolerance, "harm_per_unit": harm,
            "harm_se": se, "n_total": n_total}


def with_guardrails(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=[*REQUIRED, "guardrails"])


def breaches(flags: list) -> dict[str, Any]:
    return {f.model: f for f in flags if f.type == "guardrail_breach"}


def test_one_guardrail_at_its_boundary() -> None:
    z = boundary_z(1 / Q)
    inside = row(guardrails=[guardrail("refunds", 0.05 + (z - EPS) * 0.01)])
    outside = row(guardrails=[guardrail("refunds", 0.05 + (z + EPS) * 0.01)])
    assert not breaches(evaluate_flags(with_guardrails(inside)))
    flag = breaches(evaluate_flags(with_guardrails(outside)))["model-a"]
    assert flag.evidence["guardrails"][0]["breached"] and "refunds rises by" in flag.reason
    assert flag.p_value is not None and flag.p_value <= Q
    # the harm is per treated unit above the tolerance: the same estimate with a larger tolerance is fine
    assert not breaches(evaluate_flags(with_guardrails(row(guardrails=[guardrail("refunds", 0.05 + (z + EPS) * 0.01,
                                                                                    tolerance=0.06)]))))


def test_direction_decrease_is_harm_when_it_falls() -> None:
    """A retention guardrail (harm = decrease): the harm is minus the effect."""
    z = boundary_z(1 / Q)
    falls = row(guardrails=[guardrail("retention", -(0.02 + (z + EPS) * 0.01), tolerance=0.02, direction="decrease")])
    rises = row(guardrails=[guardrail("retention", 0.5, tolerance=0.02, direction="decrease")])
    # flags.py receives harm already signed (value/guardrails.py); the text says which way it moved
    falls["guardrails"][0]["harm_per_unit"] = 0.02 + (z + EPS) * 0.01
    rises["guardrails"][0]["harm_per_unit"] = -0.5
    assert "retention falls by" in breaches(evaluate_flags(with_guardrails(falls)))["model-a"].reason
    assert not breaches(evaluate_flags(with_guardrails(rises)))


def test_a_models_guardrails_are_one_family() -> None:
    """With three guardrails a single harmed one must reach 3/q (their mean e-value reaches 1/q)."""
    z1, z3 = boundary_z(1 / Q), boundary_z(3 / Q)
    assert z3 > z1
    harmless = [guardrail("latency", -1.0, tolerance=0.0, se=1.0, n_total=N), guardrail("complaints", -1.0, 0.0, 1.0)]
    between = row(guardrails=[guardrail("refunds", 0.05 + (z1 + z3) / 2 * 0.01), *harmless])
    beyond = row(guardrails=[guardrail("refunds", 0.05 + (z3 + 0.05) * 0.01), *harmless])
    assert not breaches(evaluate_flags(with_guardrails(between)))
    flag = breaches(evaluate_flags(with_guardrails(beyond)))["model-a"]
    assert [g["breached"] for g in flag.evidence["guardrails"]] == [True, False, False]


def test_untrusted_models_and_time_series_get_no_guardrail_flag() -> None:
    harmed = [guardrail("refunds", 1.0)]
    srm = row(n_treatment=10_250.0, n_control=9_750.0, guardrails=harmed)
    stale = row("model-b", days_since_exposure=30, guardrails=harmed)
    ok = row("model-c", guardrails=harmed)
    flags = evaluate_flags(with_guardrails(srm, stale, ok))
    assert set(breaches(flags)) == {"model-c"}


def test_false_discoveries_stay_below_q_across_portfolios() -> None:
    """600 portfolios of 20 models with 3 guardrails each: 4 models have a harmed guardrail, the rest
    sit exactly at tolerance; the share of false guardrail flags (FDR) stays ≤ q and the harmed are found."""
    rng = np.random.default_rng(7)
    P, M, G = 600, 20, 3
    truth = np.zeros((P, M, G))
    truth[:, :4, 0] = 6.0  # harm − tolerance, in standard errors
    z = truth + rng.standard_normal((P, M, G))
    f = anytime.guardrail_flags(z, np.ones_like(z), np.zeros_like(z), N, N, np.ones_like(z, bool), Q, axis=1)
    false = (f["breach"][:, 4:]).sum(axis=1)
    fdr = (false / np.maximum(f["breach"].sum(axis=1), 1)).mean()
    assert fdr <= Q
    assert f["breach"][:, :4].mean() > 0.9
    # the harmed guardrail is the one named; a guardrail at tolerance almost never is
    assert f["named"][:, :4, 0][f["breach"][:, :4]].mean() > 0.9
    assert f["named"][..., 1:].mean() < 0.001


def test_models_axis_is_checked() -> None:
    import pytest

    with pytest.raises(ValueError, match="models' axis"):
        anytime.guardrail_flags(np.zeros((2, 3)), np.ones((2, 3)), 0.0, N, N, np.ones((2, 3), bool), axis=-1)
