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


def _fresh(ctx, name: str, as_of: dt.date) -> list[dict]:
    """The breakdown summed again from every stored row (as before D68), with the valuation's windows."""
    from valuetrack.attribution.methods.ab import mature_through, segment_breakdown
    from valuetrack.value.notes import exclusion_windows

    spec = ctx.registry.get(name).spec
    sums = ctx.aggregates.segment_sums(name, mature_through(spec, as_of), exclusion_windows(ctx.notes.list(name)))
    return segment_breakdown(spec, sums)


def _same(shown: list[dict], fresh: list[dict]) -> None:
    assert [(s["segment"], s["n_control"], s["n_treatment"]) for s in shown] == \
        [(s["segment"], s["n_control"], s["n_treatment"]) for s in fresh]
    for s, f in zip(shown, fresh):
        for k in ("effect_abs", "effect_rel", "p_value"):
            assert s[k] == pytest.approx(f[k], rel=1e-12, abs=1e-300), (s["segment"], k)


def test_the_kept_segment_sums_give_what_summing_every_row_gives(workspace: Path, cli) -> None:
    """D68: a valuation adds the newly mature days to the sums the previous one kept. After an
    incremental refresh, after a refresh that re-reads days whose rows changed in the warehouse, and
    after an excluded window, the breakdown equals the one summed again from every stored row."""
    import duckdb

    name, as_of = "homepage-recs", dt.date.fromisoformat(AS_OF)
    assert cli("demo", "--scale", "0.05", "--as-of", AS_OF).code == 0
    ctx = open_context()

    def shown() -> list[dict]:
        return cli("models", "show", name, "--json", schema="models_show").json["valuation"]["segments"]

    assert ctx.ledger.kept_segment_sums(name) is None
    assert cli("refresh", "--as-of", AS_OF).code == 0
    first = ctx.ledger.kept_segment_sums(name)
    assert first is not None  # the first valuation summed every row and kept the sums
    later = as_of + dt.timedelta(days=9)  # nine more cohort days mature: added to the kept sums
    assert cli("refresh", "--as-of", str(later)).code == 0
    assert ctx.ledger.kept_segment_sums(name)["through"] == first["through"] + dt.timedelta(days=9)
    before = shown()
    _same(before, _fresh(ctx, name, later))

    # the warehouse's early rows change (a late backfill drops a country's first month); a full
    # refresh re-reads them, so the kept sums over those days must not be used again
    con = duckdb.connect(str(workspace / "sample_data" / "demo.duckdb"))
    first_day = con.execute("SELECT min(scored_at)::DATE FROM exposures WHERE model_id = ?", [name]).fetchone()[0]
    con.execute("DELETE FROM exposures WHERE model_id = ? AND country = ? AND scored_at < ?",
                [name, before[0]["segment"], first_day + dt.timedelta(days=30)])
    con.close()
    assert cli("refresh", "--full", "--as-of", str(later)).code == 0
    after = shown()
    _same(after, _fresh(ctx, name, later))
    assert after[0]["n_control"] + after[0]["n_treatment"] < before[0]["n_control"] + before[0]["n_treatment"]

    # an excluded window: the kept sums were over other windows, so everything is summed again
    assert cli("notes", "exclude", name, "--from", str(first_day + dt.timedelta(days=40)),
               "--to", str(first_day + dt.timedelta(days=60)), "--reason", "tracking outage",
               "--as-of", str(later)).code == 0
    excluded = shown()
    _same(excluded, _fresh(ctx, name, later))
    assert excluded[1]["n_control"] < after[1]["n_control"]
