"""Make the gbstats reference values that tests/attribution/test_ab_gbstats.py compares against.

Run it with gbstats 0.8.0 in its own virtual environment (gbstats pins pandas<2, which the
project cannot use):

    python3 -m venv .venvs/gbstats
    .venvs/gbstats/bin/pip install -r tests/reference/gbstats/requirements.lock
    .venvs/gbstats/bin/python tests/reference/gbstats/make_reference.py

It simulates unit-level data with a fixed seed, reduces it to per-arm sufficient statistics (the
*inputs*, stored verbatim in the JSON with a sha256 of each case's canonical form and of all of
them together), runs gbstats' own test classes on them and writes reference.json beside this
file. The test re-hashes the stored inputs, so an edited input cannot pass silently. This script
imports nothing from valuetrack.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import sys
from pathlib import Path

import numpy as np

from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)
from gbstats.utils import check_srm

HERE = Path(__file__).resolve().parent
SEED = 20240806


def canonical_hash(obj: object) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# ---- data ------------------------------------------------------------------------------------


def revenue(rng, n, buy=0.15, mu=3.0, sigma=1.0, lift=1.0):
    y = rng.lognormal(mu, sigma, n) * (rng.random(n) < buy)
    return y * lift


def sums_mean(y):
    return {"n": int(y.size), "sum_y": float(y.sum()), "sum_y2": float((y * y).sum())}


def sums_cuped(y, x):
    d = sums_mean(y)
    d.update(sum_x=float(x.sum()), sum_x2=float((x * x).sum()), sum_xy=float((x * y).sum()))
    return d


def sums_ratio(num, den):
    return {
        "n": int(num.size),
        "sum_num": float(num.sum()),
        "sum_num2": float((num * num).sum()),
        "sum_den": float(den.sum()),
        "sum_den2": float((den * den).sum()),
        "sum_num_den": float((num * den).sum()),
    }


def make_cases(rng):
    cases = []
    # mean metrics: zero-inflated lognormal revenue; one plain normal metric with negatives
    for i, (nc, nt, lift) in enumerate([(200, 213, 1.0), (1000, 950, 1.15), (5000, 5100, 1.05), (30000, 29000, 0.97)]):
        cases.append({"id": f"mean-{i}", "metric": "mean", "cuped": False,
                      "control": sums_mean(revenue(rng, nc)), "treatment": sums_mean(revenue(rng, nt, lift=lift))})
    cases.append({"id": "mean-normal", "metric": "mean", "cuped": False,
                  "control": sums_mean(rng.normal(0.5, 2.0, 800)), "treatment": sums_mean(rng.normal(0.8, 2.5, 700))})
    # proportions
    for i, (nc, nt, pc, pt) in enumerate([(400, 380, 0.02, 0.03), (5000, 5000, 0.02, 0.022), (20000, 19500, 0.10, 0.104), (1500, 1600, 0.5, 0.47)]):
        yc = (rng.random(nc) < pc).astype(float)
        yt = (rng.random(nt) < pt).astype(float)
        # at least one conversion per arm, or gbstats has no variance to work with
        yc[0], yt[0] = 1.0, 1.0
        cases.append({"id": f"proportion-{i}", "metric": "proportion", "cuped": False,
                      "control": sums_mean(yc), "treatment": sums_mean(yt)})
    # ratio: revenue per session, both summed per user
    for i, (nc, nt, lift) in enumerate([(500, 520, 1.0), (8000, 7900, 1.06)]):
        sc = 1.0 + rng.poisson(2.0, nc)
        st = 1.0 + rng.poisson(2.1, nt)
        cases.append({"id": f"ratio-{i}", "metric": "ratio", "cuped": False,
                      "control": sums_ratio(revenue(rng, nc) * sc / 3.0, sc),
                      "treatment": sums_ratio(revenue(rng, nt, lift=lift) * st / 3.0, st)})
    # CUPED: the pre-period value of the same customers
    for i, (nc, nt, lift) in enumerate([(1000, 1020, 1.08), (10000, 9800, 1.02)]):
        def cuped_arm(n, lift):
            active = rng.random(n) < 0.3
            level = rng.lognormal(3.0, 0.8, n)
            x = active * (rng.random(n) < 0.5) * level * rng.lognormal(0, 0.5, n)
            y = active * (rng.random(n) < 0.5) * level * rng.lognormal(0, 0.5, n) * lift
            return sums_cuped(y, x)
        cases.append({"id": f"cuped-mean-{i}", "metric": "mean", "cuped": True,
                      "control": cuped_arm(nc, 1.0), "treatment": cuped_arm(nt, lift)})
    for i, (nc, nt, pc, pt) in enumerate([(3000, 3050, 0.05, 0.06), (20000, 20000, 0.02, 0.021)]):
        def cuped_prop(n, p):
            pre = rng.poisson(1.0, n).astype(float)  # pre-period visits
            y = (rng.random(n) < p * (0.4 + 0.6 * pre)).astype(float)
            y[0] = 1.0
            d = sums_cuped(y, pre)
            return d
        cases.append({"id": f"cuped-proportion-{i}", "metric": "proportion", "cuped": True,
                      "control": cuped_prop(nc, pc), "treatment": cuped_prop(nt, pt)})
    return cases


# ---- gbstats ---------------------------------------------------------------------------------


def statistic(metric, cuped, d):
    if metric == "ratio":
        return RatioStatistic(
            n=d["n"],
            m_statistic=SampleMeanStatistic(n=d["n"], sum=d["sum_num"], sum_squares=d["sum_num2"]),
            d_statistic=SampleMeanStatistic(n=d["n"], sum=d["sum_den"], sum_squares=d["sum_den2"]),
            m_d_sum_of_products=d["sum_num_den"],
        )
    if metric == "proportion":
        post = ProportionStatistic(n=d["n"], sum=d["sum_y"])
    else:
        post = SampleMeanStatistic(n=d["n"], sum=d["sum_y"], sum_squares=d["sum_y2"])
    if not cuped:
        return post
    pre = SampleMeanStatistic(n=d["n"], sum=d["sum_x"], sum_squares=d["sum_x2"])
    return RegressionAdjustedStatistic(n=d["n"], post_statistic=post, pre_statistic=pre,
                                       post_pre_sum_of_products=d["sum_xy"], theta=0)


def run_case(case):
    out = []

    def stats_pair():
        return (statistic(case["metric"], case["cuped"], case["control"]),
                statistic(case["metric"], case["cuped"], case["treatment"]))

    for alpha in (0.05, 0.1):
        for diff in ("absolute", "relative"):
            a, b = stats_pair()
            r = TwoSidedTTest(a, b, FrequentistConfig(alpha=alpha, difference_type=diff)).compute_result()
            out.append({"engine": "fixed", "alpha": alpha, "difference": diff, "expected": r.expected,
                        "ci": list(r.ci), "p_value": r.p_value, "error": r.error_message})
            for tuning in (5000, 1000):
                a, b = stats_pair()
                r = SequentialTwoSidedTTest(a, b, SequentialConfig(alpha=alpha, difference_type=diff,
                                                                   sequential_tuning_parameter=tuning)).compute_result()
                out.append({"engine": "sequential", "tuning": tuning, "alpha": alpha, "difference": diff,
                            "expected": r.expected, "ci": list(r.ci), "p_value": r.p_value, "error": r.error_message})
    for prior in ({"proper": False}, {"proper": True, "mean": 0.0, "sd": 0.1, "scale": "relative"},
                  {"proper": True, "mean": 0.02, "sd": 0.05, "scale": "relative"}):
        a, b = stats_pair()
        gp = GaussianPrior(mean=prior.get("mean", 0.0), variance=prior.get("sd", 1.0) ** 2, proper=prior["proper"])
        cfg = EffectBayesianConfig(difference_type="absolute", prior_type=prior.get("scale", "relative"), prior_effect=gp)
        r = EffectBayesianABTest(a, b, cfg).compute_result()
        out.append({"engine": "bayesian", "difference": "absolute", "prior": prior, "expected": r.expected,
                    "chance_to_win": r.chance_to_win, "risk": list(r.risk), "error": r.error_message})
    return out


def srm_cases(rng):
    out = []
    for nc, nt, share in [(5000, 5000, 0.5), (5000, 5150, 0.5), (5000, 5400, 0.5), (1000, 9000, 0.9),
                          (1100, 8900, 0.9), (260, 185, 0.5), (30, 70, 0.7), (123456, 124321, 0.5)]:
        p = check_srm([nc, nt], [1.0 - share, share])
        out.append({"n_control": nc, "n_treatment": nt, "planned_treatment_share": share, "p_value": float(p)})
    return out


def main() -> int:
    rng = np.random.default_rng(SEED)
    cases = make_cases(rng)
    for c in cases:
        inputs = {k: c[k] for k in ("metric", "cuped", "control", "treatment")}
        c["inputs_sha256"] = canonical_hash(inputs)
        c["results"] = run_case(c)
    srm = srm_cases(rng)
    versions = {p: importlib.metadata.version(p) for p in ("gbstats", "numpy", "scipy", "pandas", "pydantic")}
    doc = {
        "made_by": "tests/reference/gbstats/make_reference.py",
        "seed": SEED,
        "python": platform.python_version(),
        "versions": versions,
        "inputs_sha256": canonical_hash([{k: c[k] for k in ("id", "metric", "cuped", "control", "treatment")} for c in cases]
                                        + [{k: s[k] for k in ("n_control", "n_treatment", "planned_treatment_share")} for s in srm]),
        "cases": cases,
        "srm": srm,
    }
    if versions["gbstats"] != "0.8.0":
        print(f"expected gbstats 0.8.0, found {versions['gbstats']}", file=sys.stderr)
        return 1
    (HERE / "reference.json").write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(cases)} cases, {sum(len(c['results']) for c in cases)} results, {len(srm)} SRM checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
