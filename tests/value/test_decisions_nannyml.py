"""valuetrack's decisions in money against NannyML's business-value metric (CBPE estimate and
realised), on the same seeded data. NannyML pins an old plotly, so its numbers are frozen in
tests/reference/nannyml/ by a committed script with its lock file; the stored inputs are
re-hashed here so an edited input cannot pass silently. docs/methods-decisions.md explains the
differences this test pins down."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from valuetrack.registry.spec import Decisions
from valuetrack.value.decisions import decision_value

REF = json.loads((Path(__file__).resolve().parents[1] / "reference" / "nannyml" / "reference.json").read_text())
V = REF["value"]
SPEC = Decisions(table="t", id="id", timestamp="ts", label="y", label_timestamp="y_at", score="s",
                 threshold=REF["threshold"], value_tp=V["tp"], value_fp=V["fp"], value_fn=V["fn"], value_tn=V["tn"])


def _frame(chunk: dict, labelled: bool) -> pd.DataFrame:
    rows = pd.DataFrame(chunk["cases"])
    day = dt.date.fromisoformat(chunk["month"] + "-01")
    return pd.DataFrame({
        "day": day, "bin": rows["bin"], "decision": rows["decision"], "n": rows["n"], "sum_s": rows["sum_s"],
        "sum_s2": rows["sum_s2"], "n_labelled": rows["n"] if labelled else 0,
        "n_positive": rows["n_positive"] if labelled else 0,
        "sum_s_labelled": rows["sum_s"] if labelled else 0.0, "sum_s2_labelled": rows["sum_s2"] if labelled else 0.0})


def _ours(labelled: bool) -> list:
    out = []
    for chunk in REF["inputs"]:
        first = dt.date.fromisoformat(chunk["month"] + "-01")
        out.append(decision_value(_frame(chunk, labelled), SPEC, first, first + dt.timedelta(days=40)))
    return out


def test_the_frozen_inputs_are_untouched():
    canonical = json.dumps(REF["inputs"], sort_keys=True, separators=(",", ":"))
    assert hashlib.sha256(canonical.encode()).hexdigest() == REF["inputs_sha256"]
    assert REF["versions"]["nannyml"] == "0.13.1"


def test_realised_value_equals_nannyml_exactly():
    """Once labels are in, both compute the same confusion matrix × the same money."""
    for ours, theirs in zip(_ours(labelled=True), REF["nannyml"]["total"]["realised"]):
        assert ours.realised == pytest.approx(theirs, abs=1e-6)


def test_the_estimate_equals_cbpe_on_calibrated_scores():
    """Estimated totals per monthly chunk equal NannyML's CBPE to rounding. Both use
    E[value] = Σ s·(value if class 1) + (1 − s)·(value if class 0) per decision; NannyML would first
    re-calibrate the scores on its reference period (isotonic regression) if they were
    miscalibrated there, which these are not, while valuetrack takes the scores as calibrated and
    checks that assumption against realised value as labels arrive instead."""
    ours = _ours(labelled=False)
    theirs = REF["nannyml"]["total"]["estimated"]
    for o, t in zip(ours, theirs):
        assert o.estimate == pytest.approx(t, rel=1e-9)
    # both intervals cover what the chunks realised (the labels NannyML was later given)
    real = REF["nannyml"]["total"]["realised"]
    assert sum(o.ci_total[0] <= r <= o.ci_total[1] for o, r in zip(ours, real)) >= 5


def test_nannyml_per_prediction_is_per_predicted_class_not_per_prediction():
    """NannyML's ``normalize_business_value='per_prediction'`` divides each confusion-matrix column
    by its own predicted class's count and sums: the value of an average *positive* decision plus
    that of an average *negative* one. valuetrack's ``per_prediction`` is the total ÷ all
    predictions. From the same aggregate, NannyML's figure is reproduced by its own normalisation."""
    for chunk, ours, theirs in zip(REF["inputs"], _ours(labelled=False), REF["nannyml"]["per_prediction"]["estimated"]):
        rows = pd.DataFrame(chunk["cases"])
        n_total = rows["n"].sum()
        assert ours.per_prediction == pytest.approx(ours.total / n_total)
        per_class = 0.0
        for decided, hit, miss in ((1, V["tp"], V["fp"]), (0, V["fn"], V["tn"])):
            g = rows[rows["decision"] == decided]
            per_class += (g["sum_s"].sum() * hit + (g["n"].sum() - g["sum_s"].sum()) * miss) / g["n"].sum()
        assert per_class == pytest.approx(theirs, rel=0.03)
        assert abs(per_class - ours.per_prediction) > 0.5 * abs(ours.per_prediction)  # not the same quantity


def test_intervals_differ_in_kind():
    """NannyML's sampling error depends on the chunk size only (estimated once on the reference
    period); valuetrack's comes from the chunk's own scores (Poisson-binomial), so it follows the
    score mix as it drifts."""
    ours = _ours(labelled=False)
    theirs = REF["nannyml"]["total"]["sampling_error"]
    assert len(set(np.round(theirs, 6))) == 1
    ses = [o.estimate_se for o in ours]
    assert ses == sorted(ses) and ses[-1] > 1.1 * ses[0]  # scores drift upward: more uncertain cases
