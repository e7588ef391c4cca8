"""The NSW job-training experiment through the real `valuetrack attribute ab` entry point.

Published: treated minus control mean 1978 earnings ≈ $1,794 (Dehejia & Wahba 1999; Cunningham,
The Mixtape). The fixture and its sha256 are recorded in tests/fixtures/SOURCES.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from valuetrack.cli import main
from valuetrack.schemas import validate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CSV = FIXTURES / "nsw_mixtape.csv"


def recorded_sha256() -> str:
    text = (FIXTURES / "SOURCES.md").read_text()
    section = text[text.index("## nsw_mixtape.csv"):]
    return re.search(r"sha256\*\* of the CSV: `([0-9a-f]{64})`", section).group(1)


def run(capsys, *extra: str) -> dict:
    rc = main(["attribute", "ab", "--data", str(CSV), "--metric", "re78", "--arm-col", "treat",
               "--control", "0", "--treatment", "1", "--json", *extra])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    validate("attribute_ab", doc)
    return doc


def test_fixture_is_the_recorded_one():
    assert hashlib.sha256(CSV.read_bytes()).hexdigest() == recorded_sha256()


def test_nsw_difference_in_means_reproduces_the_published_1794(capsys):
    doc = run(capsys)
    assert doc["n_control"] == 260 and doc["n_treatment"] == 185
    assert round(doc["effect_abs"]) == 1794  # published ≈ $1,794
    lo, hi = doc["ci_abs"]
    assert 0 < lo < doc["effect_abs"] < hi  # the training raised earnings
    assert doc["cs_abs"][0] < lo and doc["cs_abs"][1] > hi
    assert doc["p_value"] < 0.01
    # 185/445 treated against the default planned 50 %: the SRM check must say so
    assert doc["srm_p_value"] < 0.001 and doc["trusted"] is False and "sample ratio mismatch" in doc["reason"]
