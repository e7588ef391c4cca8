"""The demo company generator: deterministic, live-looking, atomic, and true to GROUND_TRUTH.

Runs at scale 0.05 (about a second per build). The statistical checks use their own SQL, not the
product's aggregate, and tolerances from the standard error of the data at hand.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import tomllib
from pathlib import Path

import duckdb
import pytest

from valuetrack import demo
from valuetrack.demo import FLAGS, GROUND_TRUTH, MODELS, VERDICTS, build_demo, is_current

AS_OF = dt.date(2025, 11, 29)
SCALE = 0.05
SEED = 7


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> demo.DemoBuild:
    return build_demo(tmp_path_factory.mktemp("demo"), as_of=AS_OF, seed=SEED, scale=SCALE)


@pytest.fixture(scope="module")
def con(built: demo.DemoBuild):
    c = duckdb.connect(str(built.database), read_only=True)
    yield c
    c.close()


def _model_value(name: str) -> str:
    m = demo._BY_NAME[name]
    return m.model_value or m.name


def _checksums(path: Path) -> dict[str, tuple]:
    c = duckdb.connect(str(path), read_only=True)
    try:
        return {
            "exposures": c.execute("SELECT count(*), sum(hash(customer_id, scored_at, model_id, arm, score, country))"
                                   " FROM exposures").fetchone(),
            "outcomes": c.execute("SELECT count(*), sum(hash(customer_id, event_at, event_type, value))"
                                  " FROM outcomes").fetchone(),
            "daily_kpis": c.execute("SELECT count(*), sum(hash(COLUMNS(*))) FROM daily_kpis").fetchone(),
        }
    finally:
        c.close()


def test_deterministic_for_a_seed(built: demo.DemoBuild, tmp_path: Path) -> None:
    again = build_demo(tmp_path, as_of=AS_OF, seed=SEED, scale=SCALE)
    assert again.rows == built.rows
    assert _checksums(again.database) == _checksums(built.database)
    assert again.manifest.read_bytes() == built.manifest.read_bytes()


def test_rows_and_meta(built: demo.DemoBuild, con) -> None:
    assert set(built.rows) == {"exposures", "outcomes", "daily_kpis", demo.PREDICTIONS_TABLE}
    assert built.rows["daily_kpis"] == demo.HISTORY_DAYS
    assert built.data_end == AS_OF - dt.timedelta(days=1)
    meta = con.execute("SELECT generator_version, seed, scale, as_of, data_end FROM _demo_meta").fetchall()
    assert meta == [(demo.GENERATOR_VERSION, SEED, SCALE, AS_OF, AS_OF - dt.timedelta(days=1))]
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'exposures'").fetchall())
    assert types == {"customer_id": "BIGINT", "scored_at": "TIMESTAMP", "model_id": "VARCHAR", "arm": "VARCHAR",
                     "score": "DOUBLE", "country": "VARCHAR"}


def test_data_ends_yesterday(con) -> None:
    yesterday = AS_OF - dt.timedelta(days=1)
    first = AS_OF - dt.timedelta(days=demo.HISTORY_DAYS)
    assert con.execute("SELECT max(scored_at)::DATE FROM exposures").fetchone()[0] == yesterday
    last_event, first_event = con.execute("SELECT max(event_at)::DATE, min(event_at)::DATE FROM outcomes").fetchone()
    assert yesterday - dt.timedelta(days=2) <= last_event <= yesterday
    assert first_event >= first
    assert con.execute("SELECT min(day), max(day), count(DISTINCT day) FROM daily_kpis").fetchone() == (
        first, yesterday, demo.HISTORY_DAYS)


def test_fraud_predictions_have_late_calibrated_labels(con) -> None:
    """The decisions table: labels land weeks after the prediction (NULL if not by as_of); classes
    follow the scores (calibrated), whose mix drifts upward over time (covariate shift)."""
    cutoff = dt.datetime.combine(AS_OF, dt.time())
    n, unlabelled, late, after = con.execute(f"""
        SELECT count(*), count(*) FILTER (WHERE is_fraud IS NULL),
               count(*) FILTER (WHERE is_fraud IS NULL AND predicted_at < ? - INTERVAL 120 DAY),
               count(*) FILTER (WHERE labelled_at >= ?)
        FROM {demo.PREDICTIONS_TABLE}""", [cutoff, cutoff]).fetchone()
    assert n > 1000 and 0 < unlabelled < 0.2 * n and late == 0 and after == 0
    assert con.execute(f"SELECT count(*) FROM {demo.PREDICTIONS_TABLE} "
                       "WHERE (is_fraud IS NULL) <> (labelled_at IS NULL)").fetchone()[0] == 0
    mean_label, mean_score = con.execute(f"SELECT avg(is_fraud), avg(score) FROM {demo.PREDICTIONS_TABLE} "
                                         "WHERE is_fraud IS NOT NULL").fetchone()
    assert abs(mean_label - mean_score) < 0.02
    early, recent = con.execute(f"""
        SELECT avg(score) FILTER (WHERE predicted_at < (SELECT min(predicted_at) + INTERVAL 90 DAY FROM {demo.PREDICTIONS_TABLE})),
               avg(score) FILTER (WHERE predicted_at >= ? - INTERVAL 90 DAY)
        FROM {demo.PREDICTIONS_TABLE}""", [cutoff]).fetchone()
    assert recent > early


def test_recent_outcomes_still_landing(con) -> None:
    # events of the last day are only partly in the warehouse, so outcome_lag_days matters
    per_day = dict(con.execute("SELECT event_at::DATE, count(*) FROM outcomes WHERE event_type = 'purchase' "
                               "GROUP BY 1").fetchall())
    typical = sorted(per_day[AS_OF - dt.timedelta(days=d)] for d in range(10, 31))[10]
    assert per_day.get(AS_OF - dt.timedelta(days=1), 0) < 0.5 * typical


def test_both_arms_logged_and_crossovers(con) -> None:
    rows = con.execute("""
        SELECT model_id, count(DISTINCT arm),
               count(*) FILTER (WHERE a1 <> a2) AS crossover
        FROM (SELECT model_id, customer_id, min(arm) a1, max(arm) a2, any_value(arm) arm
              FROM exposures GROUP BY 1, 2)
        GROUP BY 1""").fetchall()
    by_model = {r[0]: r[1:] for r in rows}
    ab = [m for m in MODELS if m.method == "ab"]
    assert set(by_model) == {_model_value(m.name) for m in ab}
    for m in ab:
        arms, crossover = by_model[_model_value(m.name)]
        assert arms == (3 if m.challenger_share else 2), m.name  # a challenger logs a third arm
    assert by_model["homepage-recs"][1] > 0
    assert sum(v[1] for v in by_model.values()) > 100
    assert set(con.execute("SELECT DISTINCT arm FROM exposures").fetchall()) == {("model",), ("holdout",), ("v2",)}


def _first_arm_counts(con, model_value: str) -> tuple[int, int]:
    return con.execute("""
        SELECT count(*) FILTER (WHERE a1 = 'model'), count(*) FILTER (WHERE a1 = 'holdout')
        FROM (SELECT customer_id, min(arm) a1, max(arm) a2 FROM exposures WHERE model_id = ? GROUP BY 1)
        WHERE a1 = a2""", [model_value]).fetchone()


def test_srm_model_split_is_off(con) -> None:
    planned = demo._BY_NAME["upsell-propensity"].treatment_share
    t, c = _first_arm_counts(con, "upsell-propensity")
    n = t + c
    assert t / n > planned + 0.02  # ~0.933 observed vs 0.90 planned
    chi2 = (t - n * planned) ** 2 / (n * planned) + (c - n * (1 - planned)) ** 2 / (n * (1 - planned))
    assert chi2 > 10.83  # p < 0.001, the product's alarm level
    # a healthy model with the same plan stays on plan
    t, c = _first_arm_counts(con, "homepage-recs")
    assert abs(t / (t + c) - 0.9) < 0.015


def test_stale_model_stops_three_weeks_early(con) -> None:
    last = dict(con.execute("SELECT model_id, max(scored_at)::DATE FROM exposures GROUP BY 1").fetchall())
    stale = demo._BY_NAME["push-reactivation"].stale_days
    assert 14 <= stale <= 28
    assert last["push-reactivation"] == AS_OF - dt.timedelta(days=stale + 1)
    for name, day in last.items():
        if name != "push-reactivation":
            assert day >= AS_OF - dt.timedelta(days=2), name


def _unit_outcomes(con, name: str) -> dict[str, tuple]:
    """Per arm: n, mean and variance of each mature unit's KPI over its window (crossovers out)."""
    m = demo._BY_NAME[name]
    conversion = m.aggregation == "conversion"
    rows = con.execute(f"""
        WITH u AS (SELECT customer_id, min(scored_at) AS t0, min(arm) AS a1, max(arm) AS a2
                   FROM exposures WHERE model_id = $model GROUP BY 1),
        mature AS (SELECT * FROM u WHERE a1 = a2 AND t0::DATE + $wait <= $as_of),
        y AS (SELECT mature.customer_id, a1 AS arm,
                     {"(count(o.value) > 0)::INT" if conversion else "coalesce(sum(o.value), 0)"} AS y
              FROM mature LEFT JOIN outcomes o
                ON o.customer_id = mature.customer_id AND o.event_type = $event
               AND o.event_at >= mature.t0 AND o.event_at < mature.t0 + to_days($window)
              GROUP BY 1, 2)
        SELECT arm, count(*), avg(y), var_samp(y) FROM y GROUP BY 1""",
        {"model": _model_value(name), "wait": m.window_days + m.lag, "as_of": AS_OF,
         "event": m.event_type, "window": m.window_days}).fetchall()
    return {r[0]: r[1:] for r in rows}


@pytest.mark.parametrize("name", ["homepage-recs", "signup-risk-gate", "churn-save-offers"])
def test_effect_matches_ground_truth(con, name: str) -> None:
    arms = _unit_outcomes(con, name)
    (nt, mt, vt), (nc, mc, vc) = arms["model"], arms["holdout"]
    se = math.sqrt(vt / nt + vc / nc)
    truth = GROUND_TRUTH[name]
    # 4 standard errors: a wrong truth fails, sampling noise (at this small scale) does not
    assert abs((mt - mc) - truth.effect_abs) < 4 * se, (mt - mc, truth.effect_abs, se)
    assert abs(mc - truth.baseline) < 4 * math.sqrt(vc / nc), (mc, truth.baseline)


def test_no_holdout_series(con) -> None:
    m = demo._BY_NAME["dynamic-pricing"]
    launch = AS_OF - dt.timedelta(days=m.launch_days_before)
    ratio = con.execute("""
        SELECT avg(region_a_orders / (region_b_orders + region_c_orders + region_d_orders))
               FILTER (WHERE day >= $launch AND day < $launch + 140)
             / avg(region_a_orders / (region_b_orders + region_c_orders + region_d_orders))
               FILTER (WHERE day < $launch AND day >= $launch - 140)
        FROM daily_kpis""", {"launch": launch}).fetchone()[0]
    assert ratio == pytest.approx(1 + GROUND_TRUTH["dynamic-pricing"].effect_rel, abs=0.015)
    corr = con.execute("SELECT corr(region_a_orders, region_b_orders) FROM daily_kpis WHERE day < ?",
                       [launch]).fetchone()[0]
    assert corr > 0.8


def test_realistic_outcomes(con) -> None:
    # most units of a revenue model buy nothing in their window
    zeros = con.execute("""
        WITH u AS (SELECT customer_id, min(scored_at) t0 FROM exposures WHERE model_id = 'homepage-recs' GROUP BY 1)
        SELECT avg((NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.customer_id = u.customer_id
                   AND o.event_type = 'purchase' AND o.event_at >= t0 AND o.event_at < t0 + INTERVAL 14 DAY))::INT)
        FROM u""").fetchone()[0]
    assert zeros >= 0.75
    # pre-period events exist (CUPED), the where-filter matters (refunds), and events fall outside windows
    pre = con.execute("""
        SELECT count(*) FROM outcomes o JOIN (SELECT customer_id, min(scored_at) t0 FROM exposures
                                               WHERE model_id = 'email-send-time' GROUP BY 1) u USING (customer_id)
        WHERE o.event_at < u.t0""").fetchone()[0]
    assert pre > 1000
    types = dict(con.execute("SELECT event_type, count(*) FROM outcomes GROUP BY 1").fetchall())
    assert {"purchase", "refund", "renewal", "chargeback", "signup"} <= set(types)
    assert con.execute("SELECT max(value) FROM outcomes WHERE event_type = 'refund'").fetchone()[0] < 0


def test_shared_units(con) -> None:
    pairs = con.execute("""
        SELECT a.model_id, b.model_id, count(DISTINCT a.customer_id)
        FROM exposures a JOIN exposures b ON a.customer_id = b.customer_id AND a.model_id < b.model_id
        GROUP BY 1, 2""").fetchall()
    assert len(pairs) == 1
    a, b, n = pairs[0]
    assert {a, b} == {"homepage-recs", "search-ranking-v4"} and n > 100


def test_score_drift(con) -> None:
    early, late = con.execute("""
        SELECT avg(score) FILTER (WHERE scored_at < (SELECT min(scored_at) + INTERVAL 60 DAY FROM exposures
                                                     WHERE model_id = 'fraud_screen_v2')),
               avg(score) FILTER (WHERE scored_at >= ?::TIMESTAMP - INTERVAL 60 DAY)
        FROM exposures WHERE model_id = 'fraud_screen_v2'""", [AS_OF]).fetchone()
    assert late > early * 1.3


def test_manifest_validates(built: demo.DemoBuild) -> None:
    from valuetrack.registry.manifest import load_manifest

    entries = load_manifest(built.manifest)
    assert [e.spec.name for e in entries] == [m.name for m in MODELS] == list(GROUND_TRUTH)
    data = tomllib.loads(built.manifest.read_text())
    home = data["models"][0]
    assert home["connection"] == "demo" and home["monthly_cost"] == pytest.approx(4500 * SCALE)
    assert len(home["interventions"]) == 2
    assert home["attribution"]["outcomes"]["where"] == "event_type = 'purchase'"
    text = built.manifest.read_text()
    assert "[[models.interventions]]" in text and "[models.attribution.exposures]" in text
    assert "[models.attribution.series]" in text


def test_ground_truth_covers_the_cases() -> None:
    assert len(GROUND_TRUTH) >= 8
    for t in GROUND_TRUTH.values():
        assert t.verdict in VERDICTS and set(t.flags) <= set(FLAGS) and set(t.may_also_flag) <= set(FLAGS)
        assert math.isclose(t.effect_abs, t.baseline * t.effect_rel, rel_tol=1e-9, abs_tol=1e-12)
    verdicts = {t.verdict for t in GROUND_TRUTH.values()}
    assert {"valuable", "valuable_with_cuped", "no_effect", "negative", "cost_exceeds_value", "srm",
            "stale"} <= verdicts
    assert any(not t.higher_is_better and t.verdict == "valuable" for t in GROUND_TRUTH.values())
    assert any(t.aggregation == "conversion" for t in GROUND_TRUTH.values())
    assert any(t.method != "ab" and t.verdict == "valuable" for t in GROUND_TRUTH.values())
    cost = GROUND_TRUTH["churn-save-offers"]
    assert 0 < cost.gross_per_month < cost.monthly_cost
    assert GROUND_TRUTH["fraud-screen"].effect_abs < 0 < GROUND_TRUTH["fraud-screen"].gross_per_month


def test_is_current(built: demo.DemoBuild, tmp_path: Path) -> None:
    folder = built.directory
    assert is_current(folder, AS_OF, seed=SEED, scale=SCALE)
    assert not is_current(folder, AS_OF + dt.timedelta(days=1), seed=SEED, scale=SCALE)
    assert not is_current(folder, AS_OF, seed=SEED + 1, scale=SCALE)
    assert not is_current(folder, AS_OF, seed=SEED, scale=1.0)
    assert not is_current(tmp_path, AS_OF)
    (tmp_path / demo.DB_NAME).write_bytes(b"not a database")
    (tmp_path / demo.MANIFEST_NAME).write_text("")
    assert not is_current(tmp_path, AS_OF)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_failed_build_leaves_existing_files_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build_demo(tmp_path, as_of=AS_OF, seed=SEED, scale=0.01)
    db, manifest = tmp_path / demo.DB_NAME, tmp_path / demo.MANIFEST_NAME
    before = (_digest(db), _digest(manifest), sorted(p.name for p in tmp_path.iterdir()))
    real_write = demo._write_warehouse

    def write_then_crash(path, *args, **kwargs):
        real_write(path, *args, **kwargs)  # the new warehouse is fully written to the temp file...
        assert path.parent == tmp_path and path != db
        raise RuntimeError("disk on fire")  # ...and then the build fails

    monkeypatch.setattr(demo, "_write_warehouse", write_then_crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        build_demo(tmp_path, as_of=AS_OF + dt.timedelta(days=3), seed=SEED, scale=0.01)
    assert (_digest(db), _digest(manifest), sorted(p.name for p in tmp_path.iterdir())) == before
    assert is_current(tmp_path, AS_OF, seed=SEED, scale=0.01)


def test_bad_parameters(tmp_path: Path) -> None:
    from valuetrack.errors import ParameterError

    with pytest.raises(ParameterError, match="scale"):
        build_demo(tmp_path, scale=0)
    with pytest.raises(ParameterError, match="seed"):
        build_demo(tmp_path, seed=-1)
    assert not any(tmp_path.iterdir())
