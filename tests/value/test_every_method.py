"""Every attribution method values registered models (run in CI, marked slow: about a minute).

20 seeded companies (tests/value/companies.py), each with one model per method (ab, structural, its,
did, synthetic_control, auto), are registered from one manifest, refreshed, valued with
``value --json`` and checked with ``flags --json``. Each model is valued by its registered method
(``auto`` reports the method it chose and why), and the true net value lies inside the 95 %
interval in at least 17 of the 20 companies for each method. The median interval widths are
reported in docs/methods-panel.md.
"""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path
from typing import Any

import pytest

from tests.value.companies import METHODS, build_companies, model_name

AS_OF = dt.date(2026, 6, 1)
SEEDS = list(range(1, 21))

pytestmark = pytest.mark.slow


def test_every_method_covers_the_truth(workspace: Path, cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    manifest, companies = build_companies(workspace / "sample_data" / "demo.duckdb", SEEDS, AS_OF)
    (workspace / "models.toml").write_text(manifest)
    assert cli("models", "register", "--file", "models.toml").code == 0
    refresh = cli("refresh", "--as-of", str(AS_OF), "--json", schema="refresh")
    assert refresh.code == 0, refresh.err
    value = cli("value", "--as-of", str(AS_OF), "--json", schema="value")
    assert value.code == 0, value.err
    rows = {m["model"]: m for m in value.json["models"]}
    assert len(rows) == len(SEEDS) * len(METHODS) and value.json["totals"]["not_valued"] == 0

    covered: dict[str, int] = {}
    widths: dict[str, list[float]] = {}
    for c in companies:
        for method in METHODS:
            m = rows[model_name(c.seed, method)]
            assert m["state"] == "ok" and m["ci_net"] is not None, m
            if method == "auto":  # a panel and no holdout: auto chooses did, and says why
                assert (m["method"], m["requested_method"]) == ("did", "auto") and "panel" in m["method_reason"]
            else:
                assert m["method"] == method and m["requested_method"] is None
            truth = c.truth[m["model"]] - m["cost"]
            lo, hi = m["ci_net"]
            covered[method] = covered.get(method, 0) + (lo <= truth <= hi)
            widths.setdefault(method, []).append(hi - lo)
    medians = {k: round(statistics.median(v)) for k, v in widths.items()}
    with capsys.disabled():  # the figures docs/methods-panel.md reports
        print(f"\ncovered of {len(SEEDS)}: {covered}\nmedian 95% interval widths of net value: {medians}")
    assert all(covered[m] >= 17 for m in METHODS), covered

    flags = cli("flags", "--as-of", str(AS_OF), "--json", schema="flags")
    assert flags.code == 0 and flags.json["models_checked"] == len(rows)
    # a money flag on a model that truly earns more than it costs is a false alarm
    truth = {name: t - rows[name]["cost"] for c in companies for name, t in c.truth.items()}
    false = [f for f in flags.json["flags"] if f["type"] in ("destroying_value", "not_covering_cost")
             and truth[f["model"]] > 0]
    assert not false, false
