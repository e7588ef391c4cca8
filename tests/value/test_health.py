"""Health checks: PSI and Jensen–Shannon against independent computations, every threshold at its
boundary, degenerate inputs, and what the checks find on the demo company."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from valuetrack.attribution.ab import srm_test
from valuetrack.errors import ParameterError
from valuetrack.registry.spec import ModelSpec
from valuetrack.value import health as H
from valuetrack.value.health import (CHECKS, HealthCheck, ModelHealth, drift_status, js_distance, model_health, psi,
                                     worst_status)

AS_OF = dt.date(2026, 6, 15)


def _spec(*, score: bool = True, lag: int = 3, window: int = 14, share: float = 0.9, tz: str = "UTC") -> ModelSpec:
    exposures = {"table": "exposures", "unit": "customer_id", "timestamp": "scored_at", "arm": "arm"}
    if score:
        exposures["score"] = "score"
    return ModelSpec.from_dict({
        "name": "test-model", "display_name": "Test", "owner": "o@example.com", "team": "t", "timezone": tz,
        "kpi": {"name": "revenue", "unit": "USD", "value_per_unit": 1.0},
        "attribution": {"method": "ab", "window_days": window, "outcome_lag_days": lag, "treatment_share": share,
                        "exposures": exposures,
                        "outcomes": {"table": "outcomes", "unit": "customer_id", "timestamp": "event_at",
                                     "value": "revenue"}}})


def _ts_spec() -> ModelSpec:
    return ModelSpec.from_dict({
        "name": "ts-model", "display_name": "x", "owner": "o", "team": "t",
        "kpi": {"name": "orders", "unit": "count", "value_per_unit": 2.0},
        "interventions": [{"start": dt.date(2026, 1, 15)}],
        "attribution": {"method": "structural", "outcome_lag_days": 1,
                        "series": {"table": "daily_kpis", "date": "day", "value": "orders", "controls": ["b"]}}})


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _health(spec: ModelSpec | None = None, *, daily=None, hist=None, ab=None, last_ok=None, series=None,
            as_of: dt.date = AS_OF) -> ModelHealth:
    return model_health(spec or _spec(), daily_exposures=daily, score_histogram=hist, ab=ab, last_ok=last_ok,
                        as_of=as_of, series=series)


# ------------------------------------------------------------------------------------------------
# PSI and Jensen–Shannon


def _psi_by_hand(q: list[float], r: list[float]) -> float:
    total = 0.0
    for qi, ri in zip(q, r):
        total += (ri - qi) * math.log(ri / qi)
    return total


def test_psi_matches_a_hand_computation_and_symmetrised_kl() -> None:
    q = [0.25, 0.25, 0.25, 0.25]
    r = [0.1, 0.2, 0.3, 0.4]
    # (−.15)ln(.4) + (−.05)ln(.8) + (.05)ln(1.2) + (.15)ln(1.6)
    expected = -0.15 * math.log(0.4) - 0.05 * math.log(0.8) + 0.05 * math.log(1.2) + 0.15 * math.log(1.6)
    assert psi(q, r) == pytest.approx(expected, rel=1e-12)
    assert psi(q, r) == pytest.approx(_psi_by_hand(q, r), rel=1e-12)
    assert psi(q, r) == pytest.approx(stats.entropy(r, q) + stats.entropy(q, r), rel=1e-12)
    assert psi(q, r) == pytest.approx(psi(r, q), rel=1e-12)  # symmetric
    assert psi([250, 250, 250, 250], [10, 20, 30, 40]) == pytest.approx(expected, rel=1e-12)  # counts = shares
    assert psi(q, q) == 0.0


def test_psi_of_a_normal_mean_shift_on_decile_bins() -> None:
    # exact bin shares of N(δ, 1) on the deciles of N(0, 1); PSI ≈ δ² for a small shift
    edges = stats.norm.ppf(np.linspace(0.1, 0.9, 9))
    cdf = np.concatenate([[0.0], stats.norm.cdf(edges - 0.3), [1.0]])
    shifted = np.diff(cdf)
    ref = np.full(10, 0.1)
    value = psi(ref, shifted)
    assert value == pytest.approx(_psi_by_hand(list(ref), list(shifted)), rel=1e-12)
    assert 0.06 < value < 0.09  # slightly below δ² = 0.09: binning loses information


def test_psi_empty_bins_use_epsilon_then_renormalise() -> None:
    q, r = [0.5, 0.5, 0.0], [0.4, 0.4, 0.2]
    value = psi(q, r)
    assert math.isfinite(value)
    eps = H.PSI_EPSILON
    qe = np.array([0.5, 0.5, eps]) / (1 + eps)
    assert value == pytest.approx(_psi_by_hand(list(qe), r), rel=1e-12)
    # a bin empty in both windows contributes nothing
    assert psi([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]) == pytest.approx(0.0, abs=1e-15)
    assert psi(q, r, epsilon=1e-6) > value  # a smaller epsilon weighs the empty bin more


@pytest.mark.parametrize("q, r", [
    ([0.25, 0.25, 0.25, 0.25], [0.1, 0.2, 0.3, 0.4]),
    ([5, 0, 3, 2], [1, 4, 0, 5]),
    ([1, 0], [0, 1]),
    ([3, 3, 3], [3, 3, 3]),
])
def test_js_distance_matches_scipy(q: list[float], r: list[float]) -> None:
    assert js_distance(q, r) == pytest.approx(float(jensenshannon(q, r, base=2)), abs=1e-12)


def test_js_distance_bounds() -> None:
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert js_distance([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("q, r", [([], []), ([1, 2], [1, 2, 3]), ([0, 0], [1, 1]), ([1, -1], [1, 1]),
                                  ([1, np.nan], [1, 1])])
def test_distances_refuse_bad_histograms(q, r) -> None:
    with pytest.raises(ParameterError):
        psi(q, r)
    with pytest.raises(ParameterError):
        js_distance(q, r)


def test_drift_status_at_its_boundaries() -> None:
    assert drift_status(H.PSI_WARNING) == "ok"  # "above 0.1" is a warning, 0.1 itself is not
    assert drift_status(np.nextafter(H.PSI_WARNING, 1)) == "warning"
    assert drift_status(H.PSI_PROBLEM) == "warning"
    assert drift_status(np.nextafter(H.PSI_PROBLEM, 1)) == "problem"
    assert drift_status(5.0, p_value=H.DRIFT_ALPHA) == "ok"  # not distinguishable from noise
    assert drift_status(5.0, p_value=np.nextafter(H.DRIFT_ALPHA, 0)) == "problem"
    assert drift_status(float("nan")) == "unknown"
    assert (H.PSI_WARNING, H.PSI_PROBLEM) == (0.1, 0.25)


def test_worst_status_ignores_unknown_unless_nothing_is_known() -> None:
    assert worst_status(["ok", "unknown"]) == "ok"
    assert worst_status(["ok", "warning", "unknown"]) == "warning"
    assert worst_status(["warning", "problem", "ok"]) == "problem"
    assert worst_status(["unknown", "unknown"]) == "unknown"
    assert worst_status([]) == "unknown"


# ------------------------------------------------------------------------------------------------
# freshness


def _last_ok(exposure_days_ago: int | None = 1, outcome_days_ago: int | None = 1) -> dict:
    def ts(days: int | None):
        return None if days is None else dt.datetime.combine(AS_OF - dt.timedelta(days=days), dt.time(12))
    return {"max_exposure_ts": ts(exposure_days_ago), "max_outcome_ts": ts(outcome_days_ago), "bin_edges": None}


@pytest.mark.parametrize("days, status", [(0, "ok"), (1, "ok"), (2, "ok"), (3, "warning"), (7, "warning"),
                                          (8, "problem"), (22, "problem")])
def test_exposure_freshness_boundaries(days: int, status: str) -> None:
    c = _health(last_ok=_last_ok(exposure_days_ago=days)).check("exposure_freshness")
    assert (c.status, c.value, c.threshold) == (status, float(days), 2.0)


@pytest.mark.parametrize("days, status", [(5, "ok"), (6, "warning"), (10, "warning"), (11, "problem")])
def test_outcome_freshness_allows_the_outcome_lag(days: int, status: str) -> None:
    c = _health(_spec(lag=3), last_ok=_last_ok(outcome_days_ago=days)).check("outcome_freshness")
    assert c.status == status and c.threshold == 5.0 and c.details["problem_after_days"] == 10


def test_freshness_uses_the_model_time_zone() -> None:
    # 23:30 UTC on as_of − 2 is already as_of − 1 in Berlin (summer: UTC+2)
    last = {"max_exposure_ts": dt.datetime.combine(AS_OF - dt.timedelta(days=3), dt.time(23, 30)),
            "max_outcome_ts": None}
    assert _health(_spec(), last_ok=last).check("exposure_freshness").value == 3.0
    assert _health(_spec(tz="Europe/Berlin"), last_ok=last).check("exposure_freshness").value == 2.0


def test_freshness_without_data() -> None:
    h = _health(last_ok=_last_ok(exposure_days_ago=None, outcome_days_ago=None))
    assert h.check("exposure_freshness").status == "problem"
    assert h.check("outcome_freshness").status == "problem"
    never = _health(last_ok=None)
    assert never.check("exposure_freshness").status == "unknown"
    assert never.check("outcome_freshness").status == "unknown"


# ------------------------------------------------------------------------------------------------
# volume


def _daily(counts_by_day: dict[dt.date, int]) -> pd.DataFrame:
    rows = []
    for day, n in counts_by_day.items():
        if n:
            rows.append({"day": day, "arm": "model", "n_exposures": int(round(n * 0.9)), "n_units": 1})
            rows.append({"day": day, "arm": "holdout", "n_exposures": n - int(round(n * 0.9)), "n_units": 1})
    return pd.DataFrame(rows, columns=["day", "arm", "n_exposures", "n_units"])


def _volume_case(baseline: list[int], recent: list[int]) -> HealthCheck:
    days = _days(AS_OF - dt.timedelta(days=len(baseline) + len(recent)), AS_OF - dt.timedelta(days=1))
    counts = dict(zip(days, baseline + recent))
    counts[AS_OF] = 10 * max(baseline)  # the as_of day itself is not counted
    return _health(daily=_daily(counts)).check("volume")


def test_volume_steady_is_ok_and_as_of_day_ignored() -> None:
    rng = np.random.default_rng(1)
    c = _volume_case(list(rng.poisson(200, 28)), list(rng.poisson(200, 7)))
    assert c.status == "ok" and 0.9 < c.value < 1.1
    assert c.details["recent_window"] == [str(AS_OF - dt.timedelta(days=7)), str(AS_OF - dt.timedelta(days=1))]


@pytest.mark.parametrize("recent, status", [(0, "problem"), (20, "problem"), (21, "warning"), (99, "warning"),
                                            (100, "ok"), (400, "ok"), (401, "warning")])
def test_volume_ratio_boundaries(recent: int, status: str) -> None:
    # flat baseline of 200 a day: ratio = recent / 200; 0.1 → problem, 0.5 and 2 are still ok
    c = _volume_case([200] * 28, [recent] * 7)
    assert c.status == status, (recent, c.message)
    assert c.value == pytest.approx(recent / 200)


def test_volume_small_model_noise_does_not_alarm() -> None:
    # about one exposure a week: an empty week is not evidence of anything
    base = [1 if i % 7 == 0 else 0 for i in range(28)]
    assert _volume_case(base, [0] * 7).status == "ok"


def test_volume_drop_is_a_problem_even_when_the_baseline_already_holds_it() -> None:
    # stopped 12 days ago: half the baseline is already zero, which widens its MAD
    c = _volume_case([30] * 23 + [0] * 5, [0] * 7)
    assert c.status == "problem" and c.details["poisson_p_drop"] < 1e-3


def test_volume_not_enough_history() -> None:
    c = _volume_case([100] * 6, [100] * 7)
    assert c.status == "unknown" and "history" in c.message
    assert _health(daily=pd.DataFrame(columns=["day", "arm", "n_exposures", "n_units"])).check("volume").status == "unknown"


# ------------------------------------------------------------------------------------------------
# score drift


def _hist(ref_shares: np.ndarray, rec_shares: np.ndarray, *, per_day: int = 1000, ref_days: int = 28,
          gap_days: int = 30, rec_days: int = 7, null_rec: float = 0.0) -> pd.DataFrame:
    rows = []
    first = AS_OF - dt.timedelta(days=rec_days + gap_days + ref_days)
    for day in _days(first, AS_OF - dt.timedelta(days=1)):
        recent = day >= AS_OF - dt.timedelta(days=rec_days)
        in_ref = day < first + dt.timedelta(days=ref_days)
        shares = rec_shares if recent else ref_shares if in_ref else (ref_shares + rec_shares) / 2
        counts = np.round(np.asarray(shares) * per_day).astype(int)
        for b, n in enumerate(counts):
            if n:
                rows.append({"day": day, "bin": b, "n": int(n)})
        if recent and null_rec:
            rows.append({"day": day, "bin": -1, "n": int(null_rec * per_day)})
    return pd.DataFrame(rows)


def test_drift_matches_independent_psi_and_js() -> None:
    ref = np.full(10, 0.1)
    rec = np.diff(np.concatenate([[0.0], stats.norm.cdf(stats.norm.ppf(np.linspace(0.1, 0.9, 9)) - 0.6), [1.0]]))
    c = _health(hist=_hist(ref, rec)).check("score_drift")
    r_counts = np.round(rec * 1000) * 7
    q_counts = np.full(10, 100.0) * 28
    assert c.value == pytest.approx(_psi_by_hand(list(q_counts / q_counts.sum()), list(r_counts / r_counts.sum())),
                                    rel=1e-9)
    assert c.details["js_distance"] == pytest.approx(float(jensenshannon(q_counts, r_counts, base=2)), rel=1e-9)
    assert c.status == drift_status(c.value, c.details["chi2_p_value"]) == "problem"  # δ = 0.6 sd: PSI ≈ 0.33
    assert c.details["reference_window"][0] == str(AS_OF - dt.timedelta(days=65))


def test_drift_none_and_moderate() -> None:
    ref = np.full(10, 0.1)
    assert _health(hist=_hist(ref, ref)).check("score_drift").status == "ok"
    rec = np.diff(np.concatenate([[0.0], stats.norm.cdf(stats.norm.ppf(np.linspace(0.1, 0.9, 9)) - 0.4), [1.0]]))
    c = _health(hist=_hist(ref, rec)).check("score_drift")
    assert 0.1 < c.value < 0.25 and c.status == "warning"


def test_drift_counts_null_scores_as_a_bin() -> None:
    ref = np.full(10, 0.1)
    c = _health(hist=_hist(ref, ref * 0.6, null_rec=0.4)).check("score_drift")
    assert c.status == "problem" and c.details["recent_null_share"] == pytest.approx(0.4)


def test_drift_is_unknown_without_enough_data() -> None:
    ref = np.full(10, 0.1)
    few = _health(hist=_hist(ref, ref, per_day=10)).check("score_drift")
    assert few.status == "unknown" and "Too few" in few.message
    short = _health(hist=_hist(ref, ref, ref_days=20, gap_days=0)).check("score_drift")  # windows would overlap
    assert short.status == "unknown" and "overlaps" in short.message
    assert _health(_spec(score=False), hist=_hist(ref, ref)).check("score_drift").status == "unknown"
    assert _health(hist=pd.DataFrame(columns=["day", "bin", "n"])).check("score_drift").status == "unknown"


def test_drift_in_small_samples_needs_significance() -> None:
    # 100+ scores per window from the same distribution: PSI may exceed 0.1 by chance, never alarms
    rng = np.random.default_rng(7)
    alarms = 0
    for _ in range(50):
        rows = []
        for day in _days(AS_OF - dt.timedelta(days=35), AS_OF - dt.timedelta(days=1)):
            for b, n in enumerate(rng.multinomial(16, np.full(10, 0.1))):
                rows.append({"day": day, "bin": b, "n": int(n)})
        c = _health(hist=pd.DataFrame(rows)).check("score_drift")
        alarms += c.status != "ok"
    assert alarms <= 1


# ------------------------------------------------------------------------------------------------
# SRM and completeness


def _ab(days: list[dt.date], n_t: int, n_c: int, mean_t: float = 10.0, mean_c: float = 10.0, sd: float = 5.0,
        recent_from: dt.date | None = None, recent_mult: float = 1.0) -> pd.DataFrame:
    rows = []
    for day in days:
        m = recent_mult if recent_from is not None and day >= recent_from else 1.0
        for arm, n, mu in (("model", n_t, mean_t * m), ("holdout", n_c, mean_c * m)):
            rows.append({"day": day, "arm": arm, "segment": "", "n": n, "n_units": n, "sum_y": n * mu,
                         "sum_y2": (n - 1) * sd**2 + n * mu**2, "sum_x": None, "sum_x2": None, "sum_xy": None,
                         "mature": True})
    return pd.DataFrame(rows)


def test_srm_alarm_at_p_below_0_001() -> None:
    days = _days(AS_OF - dt.timedelta(days=60), AS_OF - dt.timedelta(days=1))
    ok = _health(ab=_ab(days, 90, 10)).check("srm")
    assert ok.status == "ok" and ok.details["observed_share"] == pytest.approx(0.9)
    bad = _health(ab=_ab(days, 93, 7)).check("srm")
    assert bad.status == "problem" and bad.value == pytest.approx(float(srm_test(7 * 60, 93 * 60, 0.9)))
    # at the boundary: the status follows p < 0.001 exactly
    for n_c in range(560, 620):
        c = _health(ab=_ab([AS_OF - dt.timedelta(days=1)], 5400, n_c)).check("srm")
        assert (c.status == "problem") == (c.value < 0.001)
    assert _health(ab=None).check("srm").status == "unknown"


def test_srm_ignores_cohorts_from_as_of_on() -> None:
    days = _days(AS_OF - dt.timedelta(days=30), AS_OF - dt.timedelta(days=1))
    frame = pd.concat([_ab(days, 90, 10), _ab([AS_OF], 1000, 0)])
    assert _health(ab=frame).check("srm").status == "ok"


@pytest.mark.parametrize("mult, status", [(1.0, "ok"), (0.85, "ok"), (0.7, "warning"), (0.3, "problem")])
def test_outcome_completeness(mult: float, status: str) -> None:
    spec = _spec(window=14, lag=3)
    mature_through = AS_OF - dt.timedelta(days=17)
    days = _days(mature_through - dt.timedelta(days=60), AS_OF - dt.timedelta(days=1))
    frame = _ab(days, 900, 100, recent_from=mature_through - dt.timedelta(days=6), recent_mult=mult)
    c = _health(spec, ab=frame).check("outcome_completeness")
    assert c.status == status, c.message
    assert c.details["recent_cohorts"] == [str(mature_through - dt.timedelta(days=6)), str(mature_through)]
    assert c.value == pytest.approx(mult)


def test_outcome_completeness_needs_significance_and_history() -> None:
    spec = _spec(window=14, lag=3)
    mature_through = AS_OF - dt.timedelta(days=17)
    days = _days(mature_through - dt.timedelta(days=60), mature_through)
    noisy = _ab(days, 2, 1, sd=40.0, recent_from=mature_through - dt.timedelta(days=6), recent_mult=0.3)
    assert _health(spec, ab=noisy).check("outcome_completeness").status == "ok"
    short = _ab(_days(mature_through - dt.timedelta(days=9), mature_through), 900, 100)
    assert _health(spec, ab=short).check("outcome_completeness").status == "unknown"
    zero = _ab(days, 900, 100, mean_t=0.0, mean_c=0.0, sd=0.0)
    assert _health(spec, ab=zero).check("outcome_completeness").status == "unknown"


# ------------------------------------------------------------------------------------------------
# whole-model behaviour and degenerate inputs


def test_nothing_at_all_is_unknown_not_a_crash() -> None:
    h = _health()
    assert [c.name for c in h.checks] == list(CHECKS)
    assert h.status == "unknown" and all(c.status == "unknown" for c in h.checks)
    d = h.to_dict()
    assert d["model"] == "test-model" and len(d["checks"]) == len(CHECKS)
    assert list(h.to_frame()["name"]) == list(CHECKS)


def test_empty_frames_and_as_of_before_all_data() -> None:
    empty = {"daily": pd.DataFrame(columns=["day", "arm", "n_exposures", "n_units"]),
             "hist": pd.DataFrame(columns=["day", "bin", "n"]),
             "ab": pd.DataFrame(columns=["day", "arm", "segment", "n", "sum_y", "sum_y2"])}
    assert _health(**empty, last_ok=_last_ok()).status == "ok"  # freshness known, the rest unknown
    days = _days(AS_OF, AS_OF + dt.timedelta(days=40))
    future = _health(ab=_ab(days, 90, 10), daily=_daily({d: 100 for d in days}), last_ok=_last_ok())
    assert future.check("volume").status == "unknown" and future.check("srm").status == "unknown"


def test_time_series_model_gets_the_checks_that_apply() -> None:
    days = _days(AS_OF - dt.timedelta(days=200), AS_OF - dt.timedelta(days=1))
    series = pd.DataFrame({"day": days, "value": 100.0, "b": 50.0})
    h = _health(_ts_spec(), series=series)
    assert h.status == "ok"
    assert {c.name: c.status for c in h.checks} == {
        "exposure_freshness": "unknown", "outcome_freshness": "ok", "volume": "unknown", "score_drift": "unknown",
        "srm": "unknown", "outcome_completeness": "ok"}
    holes = series.copy()
    holes.loc[holes["day"] >= AS_OF - dt.timedelta(days=12), "value"] = np.nan  # 10 of 28 settled days missing
    h = _health(_ts_spec(), series=holes)
    assert h.check("outcome_completeness").status == "warning"
    assert h.check("outcome_freshness").status == "problem"  # 12 days old with a 1-day lag
    assert _health(_ts_spec()).status == "unknown"


def test_parameters_are_checked() -> None:
    with pytest.raises(ParameterError):
        model_health(_spec(), daily_exposures=None, score_histogram=None, ab=None, last_ok=None, as_of=AS_OF,
                     recent_days=0)


# ------------------------------------------------------------------------------------------------
# the demo company (scale 0.1)


def _build(root: Path, *refreshes: tuple[str, ...]) -> None:
    from valuetrack.cli import main

    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.delenv("VALUETRACK_CONFIG", raising=False)
    mp.setenv("VALUETRACK_USER", "tester@example.com")
    try:
        assert main(["demo", "--scale", "0.1", "--as-of", str(AS_OF)]) == 0
        for args in refreshes:
            assert main(["refresh", *args]) == 0
    finally:
        mp.undo()


def _all_health(root: Path, *, histogram_from: dt.date | None = None) -> dict[str, ModelHealth]:
    from valuetrack.context import open_context
    from valuetrack.store.aggregates import AggregateStore
    from valuetrack.store.db import dispose_all

    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.delenv("VALUETRACK_CONFIG", raising=False)
    try:
        ctx = open_context(cwd=root)
        store = AggregateStore(ctx.engine)
        out = {}
        for reg in ctx.registry.list():
            name = reg.spec.name
            h = store.read_health(name)
            hist = h["score_histogram"]
            if histogram_from is not None and len(hist):
                hist = hist[hist["day"] >= histogram_from]
            out[name] = model_health(reg.spec, daily_exposures=h["daily_exposures"], score_histogram=hist,
                                     ab=store.read_ab(name), last_ok=store.status(name).last_ok, as_of=AS_OF,
                                     series=store.read_series(name))
        return out
    finally:
        mp.undo()
        dispose_all()


@pytest.fixture(scope="module")
def demo_health(demo_builder) -> dict[str, ModelHealth]:
    return _all_health(demo_builder(0.1, str(AS_OF)))


def test_demo_push_reactivation_is_stale(demo_health: dict[str, ModelHealth]) -> None:
    h = demo_health["push-reactivation"]
    fresh = h.check("exposure_freshness")
    assert fresh.status == "problem" and fresh.value == 22.0  # exposure logging broke 21 days before as_of
    assert h.check("volume").status == "problem"
    assert h.check("outcome_freshness").status == "ok"  # outcomes keep arriving
    assert h.status == "problem"


def test_demo_upsell_propensity_has_srm(demo_health: dict[str, ModelHealth]) -> None:
    h = demo_health["upsell-propensity"]
    srm = h.check("srm")
    assert srm.status == "problem" and srm.value < 1e-10
    assert 0.92 < srm.details["observed_share"] < 0.95  # ~93.3 % against the planned 90 %
    assert h.status == "problem"
    assert h.check("exposure_freshness").status == "ok"


def test_demo_homepage_recs_is_healthy(demo_health: dict[str, ModelHealth]) -> None:
    h = demo_health["homepage-recs"]
    assert h.status == "ok"
    assert all(c.status == "ok" for c in h.checks), [c.message for c in h.checks]


def test_demo_time_series_model(demo_health: dict[str, ModelHealth]) -> None:
    h = demo_health["dynamic-pricing"]
    assert h.status == "ok"
    assert h.check("outcome_freshness").status == "ok" and h.check("outcome_completeness").value == 1.0
    assert h.check("srm").status == "unknown"


def test_demo_no_false_alarms_on_the_other_models(demo_health: dict[str, ModelHealth]) -> None:
    broken = {"push-reactivation", "upsell-propensity"}
    for name, h in demo_health.items():
        if name not in broken:
            assert h.status == "ok", (name, h.problems, h.warnings)


def test_demo_fraud_screen_drift_after_one_refresh(demo_health: dict[str, ModelHealth]) -> None:
    # The generator shifts fraud-screen's logits by +0.6 a year. One refresh stores 90 days of
    # histograms, so its reference (the first 28) and recent window are ~10 weeks apart: a shift of
    # ~0.12 logit ≈ 0.1 sd, PSI ≈ 0.01, far below the 0.1 rule of thumb. It shows as a real but
    # small upward shift, not an alarm.
    c = demo_health["fraud-screen"].check("score_drift")
    assert c.status == "ok" and c.value < H.PSI_WARNING
    # scores moved up: the recent window's mean bin is higher than the reference's
    bins = np.array(c.details["bins"], dtype=float)
    scored = bins >= 0
    ref, rec = (np.array(c.details[k], dtype=float)[scored] for k in ("reference_counts", "recent_counts"))
    assert (rec @ bins[scored]) / rec.sum() > (ref @ bins[scored]) / ref.sum() + 0.1


@pytest.fixture(scope="module")
def long_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # fraud-screen first refreshed on 2025-09-01 (bins frozen then), then again on as_of: the
    # reference window is a year older than the recent one
    root = tmp_path_factory.mktemp("drift-demo")
    _build(root, ("--model", "fraud-screen", "--as-of", "2025-09-01"),
           ("--model", "fraud-screen", "--as-of", str(AS_OF)))
    return root


def test_demo_fraud_screen_drift_over_a_year(long_history: Path) -> None:
    c = _all_health(long_history)["fraud-screen"].check("score_drift")
    assert c.details["reference_window"][0] < "2025-07-01"
    # a year at +0.6 logit ≈ 0.5 sd: PSI ≈ 0.25
    assert c.value > H.PSI_WARNING and c.status in ("warning", "problem"), c.message
    assert c.details["js_distance"] > 0.1
    # the same data with only the last 90 days of histograms (one refresh's worth) shows no alarm
    short = _all_health(long_history, histogram_from=AS_OF - dt.timedelta(days=89))["fraud-screen"]
    assert short.check("score_drift").status == "ok"
