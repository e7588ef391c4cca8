"""`attribution.exposures.segment` breaks an A/B model's uplift down by segment (it was stored per
segment and summed away): `models show --json` and the model page show each segment's uplift per
treated unit, its interval and p-value, from the ledger; checked against scipy's Welch test on the
segment's stored sums."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import pytest
from scipy import stats

from valuetrack.actions import save
from valuetrack.context import open_context

AS_OF = "2026-03-01"


def test_each_segment_is_compared_as_the_model_is(workspace: Path, cli) -> None:
    assert cli("demo", "--scale", "0.05", "--as-of", AS_OF).code == 0
    ctx = open_context()
    reg = ctx.registry.get("homepage-recs")
    assert reg.spec.attribution.exposures.segment == "country"
    # without the covariate the comparison is Welch's t on the outcome alone: scipy can check it
    save(ctx, reg.spec.replace(attribution=dataclasses.replace(reg.spec.attribution, covariate_days=0)),
         expected_revision=reg.revision)
    assert cli("refresh", "--as-of", AS_OF).code == 0
    shown = cli("models", "show", "homepage-recs", "--json", schema="models_show").json["valuation"]["segments"]
    assert len(shown) >= 2

    a = ctx.registry.get("homepage-recs").spec.attribution
    mt = dt.date.fromisoformat(AS_OF) - dt.timedelta(days=a.window_days + a.outcome_lag_days)
    rows = ctx.aggregates.read_ab("homepage-recs")
    rows = rows[rows["day"] <= mt].groupby(["segment", "arm"])[["n", "sum_y", "sum_y2"]].sum()
    total = {arm: 0 for arm in (a.exposures.control, a.exposures.treatment)}
    for seg in shown:
        arms = {}
        for arm in total:
            n, s, s2 = rows.loc[(seg["segment"], arm)]
            arms[arm] = (n, s / n, math.sqrt((s2 - s * s / n) / (n - 1)))
            total[arm] += n
        (nc, mc, sc), (nt, mtr, st) = arms[a.exposures.control], arms[a.exposures.treatment]
        assert (seg["n_control"], seg["n_treatment"]) == (nc, nt)
        ref = stats.ttest_ind_from_stats(mtr, st, nt, mc, sc, nc, equal_var=False)
        assert seg["effect_abs"] == pytest.approx(mtr - mc, rel=1e-9)
        assert seg["p_value"] == pytest.approx(ref.pvalue, rel=1e-6)
        half = (seg["ci_abs"][1] - seg["ci_abs"][0]) / 2
        dof = (sc**2 / nc + st**2 / nt) ** 2 / ((sc**2 / nc) ** 2 / (nc - 1) + (st**2 / nt) ** 2 / (nt - 1))
        assert half == pytest.approx(stats.t.ppf(0.975, dof) * math.sqrt(sc**2 / nc + st**2 / nt), rel=1e-6)
    assert all(n > 0 for n in total.values())
    # the page's table (tests/pages/test_model_page.py) and this JSON read the same ledger record
