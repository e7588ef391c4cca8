"""Make the NannyML reference values that tests/value/test_decisions_nannyml.py compares against.

Run it with NannyML 0.13.1 in its own virtual environment (NannyML pins an old plotly and
pandas, which the project cannot use):

    python3 -m venv .venvs/nannyml
    .venvs/nannyml/bin/pip install -r tests/reference/nannyml/requirements.lock
    .venvs/nannyml/bin/python tests/reference/nannyml/make_reference.py

It simulates a fraud classifier with a fixed seed: a reference period with labels, then six
monthly analysis chunks whose score mix drifts (covariate shift: P(class 1 | score) = score
throughout) and labels not yet known. It runs NannyML's CBPE with the ``business_value`` metric
(estimated, per chunk, both as a total and normalised per prediction) and its
PerformanceCalculator (realised, once labels are given), and writes reference.json beside this
file with the per-chunk *inputs* valuetrack needs (its decisions aggregate: per score bin and
decision, counts and score sums) and a sha256 of them, so an edited input cannot pass silently.
This script imports nothing from valuetrack.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import platform
from pathlib import Path

import os

import numpy as np
import pandas as pd

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # NannyML reports usage over the network otherwise
import nannyml as nml  # noqa: E402

SEED = 20260
THRESHOLD = 0.3
VALUE = {"tp": 130.0, "fp": -60.0, "fn": 0.0, "tn": 0.0}
REFERENCE_N = 30_000
CHUNK_N = 8_000
MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
HERE = Path(__file__).resolve().parent


def simulate(rng: np.random.Generator, n: int, month: str, shift: float) -> pd.DataFrame:
    """Calibrated scores (logistic of a normal, moved by ``shift``), classes drawn from them."""
    score = np.round(1.0 / (1.0 + np.exp(-(-1.6 + shift + 1.2 * rng.standard_normal(n)))), 6)
    first = pd.Timestamp(month + "-01")
    days = first.days_in_month
    ts = first + pd.to_timedelta(rng.uniform(0, days * 86400, n), unit="s")
    y = (rng.random(n) < score).astype(int)
    return pd.DataFrame({"timestamp": ts, "y_pred_proba": score, "y_pred": (score >= THRESHOLD).astype(int),
                         "y_true": y})


def aggregate(frame: pd.DataFrame) -> list[dict]:
    """valuetrack's decisions aggregate (per score bin × decision), with the classes that the labels,
    once known, reveal (``n_positive``)."""
    s = frame["y_pred_proba"].to_numpy()
    g = pd.DataFrame({"bin": np.minimum(np.floor(s * 100), 99).astype(int), "decision": frame["y_pred"].to_numpy(),
                      "n": 1, "sum_s": s, "sum_s2": s * s, "n_positive": frame["y_true"].to_numpy()})
    rows = g.groupby(["bin", "decision"], as_index=False).sum()
    return [{"bin": int(r.bin), "decision": int(r.decision), "n": int(r.n), "sum_s": float(r.sum_s),
             "sum_s2": float(r.sum_s2), "n_positive": int(r.n_positive)} for r in rows.itertuples(index=False)]


def main() -> None:
    rng = np.random.default_rng(SEED)
    reference = simulate(rng, REFERENCE_N, "2025-12", 0.0)
    chunks = [simulate(rng, CHUNK_N, m, 0.12 * i) for i, m in enumerate(MONTHS)]
    analysis = pd.concat(chunks, ignore_index=True)
    matrix = [[VALUE["tn"], VALUE["fp"]], [VALUE["fn"], VALUE["tp"]]]
    common = dict(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="y_true", problem_type="classification_binary",
                  timestamp_column_name="timestamp", chunk_period="M", metrics=["business_value"],
                  business_value_matrix=matrix)
    out = {}
    for norm in (None, "per_prediction"):
        cbpe = nml.CBPE(**common, normalize_business_value=norm).fit(reference)
        est = cbpe.estimate(analysis.drop(columns=["y_true"])).filter(period="analysis").to_df()
        calc = nml.PerformanceCalculator(**{k: v for k, v in common.items()}, normalize_business_value=norm)
        real = calc.fit(reference).calculate(analysis).filter(period="analysis").to_df()
        out[norm or "total"] = {
            "estimated": [float(v) for v in est[("business_value", "value")]],
            "sampling_error": [float(v) for v in est[("business_value", "sampling_error")]],
            "lower": [float(v) for v in est[("business_value", "lower_confidence_boundary")]],
            "upper": [float(v) for v in est[("business_value", "upper_confidence_boundary")]],
            "realised": [float(v) for v in real[("business_value", "value")]],
        }
    inputs = [{"month": m, "n": len(c), "cases": aggregate(c)} for m, c in zip(MONTHS, chunks)]
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    doc = {
        "made_by": "tests/reference/nannyml/make_reference.py",
        "seed": SEED, "python": platform.python_version(),
        "versions": {p: importlib.metadata.version(p) for p in ("nannyml", "numpy", "pandas", "scikit-learn")},
        "threshold": THRESHOLD, "value": VALUE, "months": MONTHS, "reference_n": REFERENCE_N,
        "inputs_sha256": hashlib.sha256(canonical.encode()).hexdigest(),
        "inputs": inputs,
        "nannyml": out,
        "made_on": dt.date.today().isoformat(),
    }
    (HERE / "reference.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
