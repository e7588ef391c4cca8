"""DiD and synthetic control on constructed panels: exact answers, error choices, refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from valuetrack.attribution.panel import attribute_did_frame, synth_weights
from valuetrack.errors import ParameterError, ValidationError


def panel(n_units=30, n_treated=12, n_periods=10, t0=6, effect=2.0, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_units):
        a = rng.normal(0, 3)
        for t in range(n_periods):
            y = 10 + a + 0.5 * t + rng.normal(0, 1) + (effect if (u < n_treated and t >= t0) else 0.0)
            rows.append({"unit": f"u{u}", "period": 2000 + t, "y": y})
    return pd.DataFrame(rows)


def test_did_recovers_effect_and_uses_cluster_errors_with_many_treated_units():
    df = panel()
    r = attribute_did_frame(df, time_col="period", metric="y", intervention=2006, unit_col="unit",
                            treated=[f"u{i}" for i in range(12)])
    assert r.inference == "cluster"
    assert r.ci_avg[0] < 2.0 < r.ci_avg[1]
    assert r.effect_avg == pytest.approx(2.0, abs=0.6)
    assert r.trusted, r.reason
    assert r.effect_cum == pytest.approx(r.effect_avg * 12 * 4)
    frame = r.to_frame()
    assert list(frame.columns) == ["time", "treated", "counterfactual", "effect"]
    assert frame.effect[frame.time >= 2006].mean() == pytest.approx(r.effect_avg, abs=1e-9)


def test_did_coverage_over_seeds_with_cluster_errors():
    hits = 0
    for s in range(60):
        r = attribute_did_frame(panel(seed=s), time_col="period", metric="y", intervention=2006,
                                unit_col="unit", treated=[f"u{i}" for i in range(12)])
        hits += r.ci_avg[0] <= 2.0 <= r.ci_avg[1]
    assert hits >= 52  # 95 % nominal; ≥ 52/60 fails with probability < 2 % if calibrated


def test_staggered_adoption_is_refused():
    df = panel()
    with pytest.raises(ValidationError, match="staggered"):
        attribute_did_frame(df, time_col="period", metric="y", intervention={"u0": 2005, "u1": 2007},
                            unit_col="unit", treated=["u0", "u1"])


def test_treated_unit_without_pre_period_is_refused():
    df = panel()
    df = df[~((df.unit == "u0") & (df.period < 2006))]
    with pytest.raises(ValidationError, match="no pre-period"):
        attribute_did_frame(df, time_col="period", metric="y", intervention=2006, unit_col="unit",
                            treated=["u0", "u1"])


def test_bad_inputs_name_the_option():
    df = panel()
    with pytest.raises(ValidationError, match="--treated"):
        attribute_did_frame(df, time_col="period", metric="y", intervention=2006, unit_col="unit", treated=["nope"])
    with pytest.raises(ValidationError, match="--metric"):
        attribute_did_frame(df, time_col="period", metric="zz", intervention=2006, unit_col="unit", treated=["u0"])
    with pytest.raises(ValidationError, match="--intervention"):
        attribute_did_frame(df, time_col="period", metric="y", intervention=1990, unit_col="unit", treated=["u0"])
    with pytest.raises(ParameterError, match="--se"):
        attribute_did_frame(df, time_col="period", metric="y", intervention=2006, unit_col="unit",
                            treated=["u0"], se="robust")
    with pytest.raises(ValidationError, match="either"):
        attribute_did_frame(df, time_col="period", metric="y", intervention=2006)


def test_synth_weights_are_convex_and_recover_a_mixture():
    rng = np.random.default_rng(1)
    Y0 = rng.normal(0, 1, (40, 6)).cumsum(axis=0) + 50
    w_true = np.array([0.5, 0.3, 0.2, 0, 0, 0])
    w = synth_weights(Y0 @ w_true, Y0)
    assert w.min() >= 0 and w.sum() == pytest.approx(1)
    assert w == pytest.approx(w_true, abs=1e-4)


def test_synth_on_a_constructed_panel_finds_the_gap_and_no_interval():
    rng = np.random.default_rng(2)
    T, J = 30, 15
    Y0 = rng.normal(0, 1, (T, J)).cumsum(axis=0) + 100
    y1 = Y0[:, :3].mean(axis=1) + rng.normal(0, 0.1, T)
    y1[20:] -= 5.0
    rows = [{"t": t, "unit": f"c{j}", "y": Y0[t, j]} for t in range(T) for j in range(J)]
    rows += [{"t": t, "unit": "treated", "y": y1[t]} for t in range(T)]
    r = attribute_did_frame(pd.DataFrame(rows), time_col="t", metric="y", intervention=20, unit_col="unit",
                            treated=["treated"], method="synth")
    assert r.effect_avg == pytest.approx(-5.0, abs=0.5)
    assert r.ci_avg is None and r.inference == "placebo"
    assert r.p_value == pytest.approx(1 / 16)
    d = r.to_dict()
    assert d["ci_cum"] is None and d["inference"] == "placebo"


def test_synth_refuses_repeated_cross_sections():
    df = panel().assign(g=lambda d: (d.unit < "u2").astype(int))
    with pytest.raises(ValidationError, match="synth"):
        attribute_did_frame(df, time_col="period", metric="y", intervention=2006, group_col="g",
                            treated_value=1, method="synth")
