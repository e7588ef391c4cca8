"""Where our relative CUPED standard error departs from gbstats', case by case (docs/methods-ab.md).

Eight cases: the four CUPED cases of the gbstats reference (tests/reference/gbstats) and four
seeded ones with stronger pre/post correlation and larger effects, where the left-out covariance
matters most. For each, the default (full delta method) and ``--compat gbstats`` relative standard
errors; the compat one must equal gbstats' where gbstats' output is on record. The table in
docs/methods-ab.md between ``<!-- cuped-cases -->`` markers is this test's output (refresh with
``VALUETRACK_WRITE_DOCS=1``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from valuetrack.attribution.ab import ABConfig, ArmStats, analyze_ab

ROOT = Path(__file__).resolve().parents[2]
REF = json.loads((ROOT / "tests" / "reference" / "gbstats" / "reference.json").read_text())
DOC = ROOT / "docs" / "methods-ab.md"


def seeded_case(seed: int, n: int, rho_level: float, lift: float) -> dict:
    """Revenue-like units with a pre-period covariate correlated through a per-unit level."""
    rng = np.random.default_rng(seed)

    def arm(m: float) -> dict:
        level = np.exp(rng.normal(0, rho_level, n))
        x = level * np.exp(rng.normal(0, 0.4, n))
        y = level * np.exp(rng.normal(0, 0.4, n)) * m
        return {"n": float(n), "sum_y": y.sum(), "sum_y2": (y * y).sum(), "sum_x": x.sum(),
                "sum_x2": (x * x).sum(), "sum_xy": (x * y).sum()}

    return {"id": f"seeded-{seed}", "metric": "mean", "control": arm(1.0), "treatment": arm(lift), "gbstats": None}


def cases() -> list[dict]:
    out = []
    for c in REF["cases"]:
        if c["cuped"]:
            rel = [r for r in c["results"] if r["engine"] == "fixed" and r["difference"] == "relative"
                   and r["alpha"] == 0.05]
            out.append({"id": c["id"], "metric": c["metric"], "control": c["control"], "treatment": c["treatment"],
                        "gbstats": rel[0]})
    out += [seeded_case(1, 4000, 1.0, 1.10), seeded_case(2, 4000, 1.5, 1.25), seeded_case(3, 20000, 2.0, 1.05),
            seeded_case(4, 2000, 1.5, 1.40)]
    return out


def rows() -> list[dict]:
    out = []
    for c in cases():
        arms = [ArmStats(**c[side]) for side in ("control", "treatment")]
        ours = analyze_ab(*arms, ABConfig(metric=c["metric"], cuped=True))
        compat = analyze_ab(*arms, ABConfig(metric=c["metric"], cuped=True, gbstats_compat=True))
        if c["gbstats"]:  # gbstats' relative interval half-width ÷ its t quantile is its standard error
            lo, hi = c["gbstats"]["ci"]
            t = stats.t.ppf(0.975, compat.dof)
            assert (hi - lo) / 2 / t == pytest.approx(compat.se_rel, rel=1e-6), c["id"]
        rho = (c["control"]["sum_xy"] / c["control"]["n"] - c["control"]["sum_x"] * c["control"]["sum_y"] / c["control"]["n"] ** 2)
        vx = c["control"]["sum_x2"] / c["control"]["n"] - (c["control"]["sum_x"] / c["control"]["n"]) ** 2
        vy = c["control"]["sum_y2"] / c["control"]["n"] - (c["control"]["sum_y"] / c["control"]["n"]) ** 2
        out.append({"id": c["id"], "rho": rho / np.sqrt(vx * vy), "effect_rel": ours.effect_rel,
                    "se_ours": ours.se_rel, "se_gbstats": compat.se_rel, "ratio": ours.se_rel / compat.se_rel})
    return out


def test_default_departs_from_gbstats_only_in_the_relative_cuped_se() -> None:
    table = rows()
    assert len(table) == 8
    for r in table:
        assert r["ratio"] != pytest.approx(1.0, abs=1e-6), r  # theta != 0: the covariance term matters
    lo, hi = min(r["ratio"] for r in table), max(r["ratio"] for r in table)
    lines = ["| case | pre/post correlation (control) | relative effect | SE, valuetrack | SE, gbstats (`--compat gbstats`) | ratio |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['id']} | {r['rho']:.2f} | {r['effect_rel']:+.2%} | {r['se_ours']:.5f} | {r['se_gbstats']:.5f} | "
              f"{r['ratio']:.3f} |" for r in table]
    lines.append(f"\nRange of the ratio over the eight cases: **{lo:.3f}–{hi:.3f}**.")
    text = DOC.read_text()
    block = re.compile(r"(<!-- cuped-cases -->\n).*?(\n<!-- /cuped-cases -->)", re.S)
    assert block.search(text), "docs/methods-ab.md lacks the <!-- cuped-cases --> block"
    new = block.sub(lambda m: m.group(1) + "\n".join(lines) + m.group(2), text)
    if os.environ.get("VALUETRACK_WRITE_DOCS"):
        DOC.write_text(new)
        text = new
    assert new == text, "docs/methods-ab.md's CUPED table is stale: rerun with VALUETRACK_WRITE_DOCS=1"


def test_the_command_line_asks_for_gbstats_numbers(tmp_path: Path) -> None:
    """`attribute ab --compat gbstats` on unit rows gives the compat relative SE; default gives ours."""
    import pandas as pd

    from valuetrack.cli import main

    rng = np.random.default_rng(5)
    n = 3000
    level = np.exp(rng.normal(0, 1.5, 2 * n))
    x = level * np.exp(rng.normal(0, 0.4, 2 * n))
    arm = np.repeat(["holdout", "model"], n)
    y = level * np.exp(rng.normal(0, 0.4, 2 * n)) * np.where(arm == "model", 1.2, 1.0)
    path = tmp_path / "units.csv"
    pd.DataFrame({"arm": arm, "revenue": y, "pre": x}).to_csv(path, index=False)
    outs = {}
    for compat in (False, True):
        out = tmp_path / f"out-{compat}.json"
        argv = ["attribute", "ab", "--data", str(path), "--metric", "revenue", "--arm-col", "arm", "--control",
                "holdout", "--treatment", "model", "--covariate", "pre", "--json"] + (["--compat", "gbstats"] if compat else [])
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(argv) == 0
        outs[compat] = json.loads(buf.getvalue())
    assert outs[True]["gbstats_compat"] is True and outs[False]["gbstats_compat"] is False
    assert outs[True]["effect_rel"] == pytest.approx(outs[False]["effect_rel"], rel=1e-12)
    assert outs[True]["se_rel"] != pytest.approx(outs[False]["se_rel"], rel=1e-4)
    assert outs[True]["se_abs"] == pytest.approx(outs[False]["se_abs"], rel=1e-12)
