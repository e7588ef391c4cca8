"""Overlap counted once: units per membership pattern counted in the warehouse match a brute-force
count; the portfolio total counts the units of each pattern once, at the largest per-unit value
among the models that create value there (hand-computed 2-, 3- and 4-way cases); any number of
models is counted by pattern (masks of several 64-bit words) unless more than 4,096 patterns occur,
when the refresh falls back to pairs, with a warning; the deduction's uncertainty enters the total."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.conftest import VALID_MANIFEST
from valuetrack.queries import MASK_BITS, membership_query, shared_units_query
from valuetrack.registry.manifest import parse_manifest
from valuetrack.value.overlap import (MAX_PATTERN_MODELS, Pattern, deduct, kpi_groups, pairs_from_patterns,
                                      patterns_from_masks, shares_kpi)
from valuetrack.value.portfolio import ModelValue, PortfolioValue

AS_OF = dt.date(2025, 6, 1)


def _specs(n: int = 2):
    base = parse_manifest(VALID_MANIFEST)[0].spec
    same = [base.replace(name=f"model-{chr(ord('a') + i)}") for i in range(n)]
    other_kpi = base.replace(name="model-z", attribution=base.attribution.__class__(
        **{**base.attribution.__dict__, "outcomes": base.attribution.outcomes.__class__(
            **{**base.attribution.outcomes.__dict__, "where": "event_type = 'refund'"})}))
    return same, other_kpi


def test_kpi_groups_hold_models_sharing_units_and_a_kpi() -> None:
    (a, b, c), z = _specs(3)
    assert shares_kpi(a, b) and not shares_kpi(a, z)
    assert [[s.name for s in g] for g in kpi_groups([z, c, b, a])] == [["model-a", "model-b", "model-c"]]
    assert kpi_groups([a, z]) == []  # no other model shares a's KPI: nothing can be counted twice


def _exposures(tmp_path, models: list[str], n: int = 4000, seed: int = 4):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "customer_id": rng.integers(0, 900, n),
        "scored_at": pd.Timestamp("2025-05-01") + pd.to_timedelta(rng.integers(0, 40 * 24, n), unit="h"),
        "model_id": rng.choice(models, n),
        "arm": rng.choice(["model", "holdout"], n, p=[0.8, 0.2]),
        "score": rng.random(n), "country": "FR",
    })
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    with engine.begin() as conn:
        frame.to_sql("exposures", conn, index=False)
    cutoff = pd.Timestamp(dt.datetime(2025, 6, 1, 22, 0))  # midnight after as_of in Europe/Paris, in UTC
    served = frame[(frame["arm"] == "model") & (frame["scored_at"] < cutoff)].groupby("model_id")["customer_id"].apply(set)
    return engine, served


def test_membership_query_matches_brute_force(tmp_path) -> None:
    specs, _ = _specs(4)
    names = [s.name for s in specs]
    engine, served = _exposures(tmp_path, names)
    with engine.connect() as conn:
        rows = conn.execute(membership_query(specs, as_of=AS_OF)).all()
    got = {p.models: p.units for p in patterns_from_masks(names, rows)}
    expected: dict[tuple[str, ...], int] = {}
    for unit in set().union(*served):
        members = tuple(m for m in names if unit in served[m])
        expected[members] = expected.get(members, 0) + 1
    assert got == expected and len(got) > 8  # a rich mix of 1-, 2-, 3- and 4-way patterns
    # the pairs derived from the patterns are the pairwise query's counts
    with engine.connect() as conn:
        pairwise = {(names[r.model_a], names[r.model_b]): r.shared for r in conn.execute(shared_units_query(specs, as_of=AS_OF))}
    derived = pairs_from_patterns(patterns_from_masks(names, rows))
    assert {(o.model_a, o.model_b): o.shared_units for o in derived} == pairwise
    ab = next(o for o in derived if (o.model_a, o.model_b) == ("model-a", "model-b"))
    assert ab.share_a == len(served["model-a"] & served["model-b"]) / len(served["model-a"])


def _mixed(tmp_path):
    """Two shared tables (models in two time zones and with two treatment labels on each, two
    reading the same model value) and a model without a model column; returns the engine, the
    specs and ``units(spec, day, since=None)``: the units it served before the end of ``day`` (from
    the start of ``since`` on), by brute force."""
    from valuetrack.queries import as_of_cutoff

    specs, _ = _specs(7)
    names = [s.name for s in specs]
    engine, _ = _exposures(tmp_path, names)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE exposures_b AS SELECT * FROM exposures"))
        conn.execute(sa.text("UPDATE exposures_b SET scored_at = scored_at + INTERVAL 7 HOUR"))
    with engine.connect() as conn:
        frames = {t: pd.read_sql_query(sa.text(f"SELECT * FROM {t}"), conn) for t in ("exposures", "exposures_b")}

    def reading(spec, tz: str, **exposures):
        ex = dataclasses.replace(spec.attribution.exposures, **exposures)
        return spec.replace(timezone=tz, attribution=dataclasses.replace(spec.attribution, exposures=ex))

    specs = [reading(specs[0], "Europe/Paris"), reading(specs[1], "Pacific/Auckland", treatment="holdout"),
             reading(specs[2], "America/Los_Angeles", model_value="model-a"),  # model-a's rows, its own cutoff
             reading(specs[3], "Europe/Paris", table="exposures_b"),
             reading(specs[4], "Asia/Tokyo", table="exposures_b", treatment="holdout"),
             reading(specs[5], "UTC", table="exposures_b", model_value="model-d"),
             reading(specs[6], "Europe/Paris", model=None)]  # every model's rows: read on its own

    def units(spec, day: dt.date, since: dt.date | None = None) -> set:
        ex = spec.attribution.exposures
        f = frames[ex.table]
        f = f[(f[ex.arm] == ex.treatment) & (f[ex.timestamp] < pd.Timestamp(as_of_cutoff(day, spec.timezone)))]
        if since is not None:
            f = f[f[ex.timestamp] >= pd.Timestamp(as_of_cutoff(since - dt.timedelta(days=1), spec.timezone))]
        return set(f[f[ex.model] == (ex.model_value or spec.name)][ex.unit] if ex.model else f[ex.unit])

    return engine, specs, units


def _brute_force(specs, units, day: dt.date) -> dict[tuple[str, ...], int]:
    names = [s.name for s in specs]
    served = {s.name: units(s, day) for s in specs}
    want: dict[tuple[str, ...], int] = {}
    for unit in set().union(*served.values()):
        members = tuple(n for n in names if unit in served[n])
        want[members] = want.get(members, 0) + 1
    return want


def test_models_sharing_a_table_are_read_by_one_scan_each_with_its_zone_and_arm(tmp_path) -> None:
    """Two shared tables and a model read on its own (:func:`_mixed`): one scan per shared table,
    the patterns and pairs are the brute-force counts."""
    from itertools import combinations

    engine, specs, units = _mixed(tmp_path)
    names = [s.name for s in specs]
    as_of = dt.date(2025, 5, 20)
    served = {s.name: units(s, as_of) for s in specs}
    assert served["model-c"] != served["model-a"]  # the same rows, another zone: the zones matter here
    want = _brute_force(specs, units, as_of)
    query = membership_query(specs, as_of=as_of)
    sql = str(query.compile(engine))
    assert sql.count("FROM exposures_b") == 1 and sql.count("FROM exposures ") == 2  # 2 shared scans + 1 alone
    with engine.connect() as conn:
        got = {p.models: p.units for p in patterns_from_masks(names, conn.execute(query).all())}
        pairs = {(names[r.model_a], names[r.model_b]): r.shared for r in conn.execute(shared_units_query(specs, as_of=as_of))}
    assert got == want
    assert any({"model-a", "model-d", "model-g"} <= set(k) for k in got)  # units met in all three parts
    a_pairs = {(a, b): len(served[a] & served[b]) for a, b in combinations(names, 2) if served[a] & served[b]}
    assert pairs == a_pairs


def test_counts_advanced_day_by_day_are_the_counts_over_the_whole_history(tmp_path) -> None:
    """D64: counted once over the whole history, then each day only over the units served since
    the stored counts' settled day (their masks now, before it and before the new settled day):
    every day's patterns, and the counts kept at each settled day, are the brute-force counts;
    a settled day that moves by several days at once (a refresh skipped) too."""
    from valuetrack.queries import membership_changes
    from valuetrack.value.overlap import advance_counts, settled_day

    engine, specs, units = _mixed(tmp_path)
    # outcomes counted 3 days after exposure, landing a day late: a settled day 3 days back
    specs = [s.replace(attribution=dataclasses.replace(s.attribution, window_days=3, outcome_lag_days=1)) for s in specs]
    names = [s.name for s in specs]
    n = len(specs)

    def count(as_of: dt.date, since: dt.date | None, base: dict) -> tuple[dict, dict, int]:
        """The counts now and at the new settled day, and how many units the query grouped."""
        day = settled_day(specs, as_of)
        with engine.connect() as conn:
            frame = pd.read_sql_query(membership_query(specs, as_of=as_of, settled=day, since=since), conn)
        now, later = advance_counts(base, membership_changes(frame, n))
        return now, later, int(frame["units"].sum())

    def patterns(counts: dict) -> dict:
        return {p.models: p.units for p in patterns_from_masks(names, counts.items())}

    as_of = dt.date(2025, 5, 20)
    now, base, whole = count(as_of, None, {})
    assert patterns(now) == _brute_force(specs, units, as_of)
    since = settled_day(specs, as_of)
    assert patterns(base) == _brute_force(specs, units, since - dt.timedelta(days=1)) != patterns(now)
    for step in (1, 1, 1, 4, 1):  # daily looks, one skipping three days
        as_of += dt.timedelta(days=step)
        now, later, read = count(as_of, since, base)
        assert patterns(now) == _brute_force(specs, units, as_of), as_of
        # only the units served since the stored counts' settled day were grouped
        assert read == len(set().union(*(units(s, as_of, since) for s in specs))) < 0.7 * whole
        since = settled_day(specs, as_of)
        assert patterns(later) == _brute_force(specs, units, since - dt.timedelta(days=1)), as_of
        base = later


def test_counts_that_no_longer_add_up_are_not_advanced() -> None:
    from valuetrack.value.overlap import advance_counts

    base = {0b01: 5, 0b11: 2}
    # two units of pattern {a} join b; one new unit of {b}, settled in {b} as well
    assert advance_counts(base, [(0b11, 0b01, 0b01, 2), (0b10, 0, 0b10, 1)]) == ({0b01: 3, 0b11: 4, 0b10: 1},
                                                                                 {0b01: 5, 0b11: 2, 0b10: 1})
    assert advance_counts(base, [(0b11, 0b10, 0b10, 1)]) is None  # a unit of {b} that the counts never had


def _p(group: str, models: str, units: int) -> Pattern:
    return Pattern(tuple(group), tuple(models), units)


def test_two_way_overlap_counts_the_shared_units_once() -> None:
    # a: 1,000 units, gross 1,000 (1 per unit); b: 200 units, gross 300 (1.5 per unit); 100 shared
    pats = [_p("ab", "a", 900), _p("ab", "b", 100), _p("ab", "ab", 100)]
    d = deduct(pats, {"a": 1000.0, "b": 300.0}, {"a": 100.0, "b": 50.0}, {})
    # the 100 shared units keep b's value (150) and drop a's (100)
    assert d.amount == pytest.approx(100.0)
    assert d.kept == pytest.approx({"a": 0.9})
    assert d.se == pytest.approx(0.1 * 100.0)
    assert d.patterns == [{"models": ["a", "b"], "units": 100, "pairwise": False, "deduction": pytest.approx(100.0),
                           "counted_at": "b"}]
    # total: 1,000 + 300 − 100 = 1,200 = 800 units of a at 1 + 100 shared at 1.5 + 100 of b alone at 1.5 ... as
    # a sum over units: 900 × 1 (a alone) + 100 × 1.5 (b alone) + 100 × 1.5 (shared, at b) = 1,200
    assert 1000.0 + 300.0 - d.amount == pytest.approx(900 * 1 + 100 * 1.5 + 100 * 1.5)


def test_three_identical_full_overlaps_of_value_v_total_v() -> None:
    v, se = 65_040.0, 8_000.0
    d = deduct([_p("abc", "abc", 5000)], {m: v for m in "abc"}, {m: se for m in "abc"}, {})
    assert 3 * v - d.amount == pytest.approx(v)  # the pairwise rule deducted 3 × v here and totalled 0
    assert d.patterns[0]["counted_at"] == "a"  # ties: the first by name keeps its value
    pv = _portfolio({m: (v, se, 1000.0) for m in "abc"}, d)
    t = pv.totals
    assert t["gross"] == pytest.approx(v) and t["net"] == pytest.approx(v - 3000.0)
    assert t["gross_se"] == pytest.approx(se)  # b's and c's estimates no longer count
    assert t["reconciliation"]["rows"] == pytest.approx(3 * (v - 1000.0))
    assert t["reconciliation"]["overlap"] == pytest.approx(-2 * v)


def test_three_way_partial_overlap_by_hand() -> None:
    # served: a 400 (gross 400: 1 per unit), b 200 (gross 400: 2), c 200 (gross 100: 0.5)
    pats = [_p("abc", "abc", 100), _p("abc", "ab", 100), _p("abc", "a", 200), _p("abc", "c", 100)]
    d = deduct(pats, {"a": 400.0, "b": 400.0, "c": 100.0}, {"a": 40.0, "b": 30.0, "c": 20.0}, {})
    # abc: 100 units at b's 2 → deduct a's 100 and c's 50; ab: 100 units at b's 2 → deduct a's 100
    assert d.amount == pytest.approx(250.0)
    total = 900.0 - d.amount
    assert total == pytest.approx(100 * 2 + 100 * 2 + 200 * 1 + 100 * 0.5)  # 650: each unit once, at its best model
    assert d.kept == pytest.approx({"a": 0.5, "c": 0.5})
    assert d.se == pytest.approx(math.hypot(0.5 * 40.0, 0.5 * 20.0))
    assert {tuple(r["models"]): r["deduction"] for r in d.patterns} == pytest.approx({("a", "b", "c"): 150.0, ("a", "b"): 100.0})
    # the pairwise rule over-deducts the three-way units: ab 200, ac 50, bc 50
    pairwise = [Pattern(tuple("abc"), pair, n, True) for pair, n in ((("a", "b"), 200), (("a", "c"), 100), (("b", "c"), 100))]
    old = deduct(pairwise, {"a": 400.0, "b": 400.0, "c": 100.0}, {}, {"a": 400, "b": 200, "c": 200})
    assert old.amount == pytest.approx(300.0) and old.warnings


def test_four_way_overlap_with_a_model_destroying_value() -> None:
    # served: a 200 (gross 200: 1 per unit), b 150 (450: 3), c 150 (300: 2), d 150 (−150: −1)
    pats = [_p("abcd", "abcd", 100), _p("abcd", "ab", 50), _p("abcd", "cd", 50), _p("abcd", "a", 50)]
    gross = {"a": 200.0, "b": 450.0, "c": 300.0, "d": -150.0}
    d = deduct(pats, gross, {m: 10.0 for m in gross}, {})
    # abcd: keep b's 300, drop a's 100 and c's 200, d's loss stays; ab: keep b's 150, drop a's 50; cd: nothing
    assert d.amount == pytest.approx(350.0)
    assert sum(gross.values()) - d.amount == pytest.approx(100 * 3 - 100 * 1 + 50 * 3 + (50 * 2 - 50 * 1) + 50 * 1)
    assert {tuple(r["models"]): r["counted_at"] for r in d.patterns} == {
        ("a", "b", "c", "d"): "b", ("a", "b"): "b", ("c", "d"): None}
    assert d.kept == pytest.approx({"a": 0.25, "c": 1 - 100 / 150})


def test_a_month_uses_the_to_date_shares() -> None:
    """Each month's deduction takes the model's value that month on its to-date share of shared units."""
    pats = [_p("ab", "ab", 50), _p("ab", "a", 50), _p("ab", "b", 150)]  # a: half its units shared; b: a quarter
    d = deduct(pats, {"a": 60.0, "b": 400.0}, {}, {})
    assert d.amount == pytest.approx(30.0)  # a's 30 on the shared half < b's 100 on its shared quarter


def test_models_not_valued_or_without_estimate_claim_nothing() -> None:
    pats = [_p("abc", "abc", 100)]
    d = deduct(pats, {"a": 100.0, "b": None}, {}, {})  # c not valued, b without an estimate
    assert d.amount == 0.0 and d.patterns[0]["counted_at"] is None


def _mv(name: str, gross: float | None, se: float | None, cost: float) -> ModelValue:
    day = dt.date(2025, 5, 31)
    fields = {f.name: None for f in dataclasses.fields(ModelValue)}
    fields.update(model=name, display_name=name, team="t", owner="o", status="active", method="ab", kpi="k",
                  currency="USD", period_start=day, period_end=day, as_of=AS_OF, treated_units=100.0,
                  predictions=0.0, gross=gross, gross_se=se, cost=cost, net=None if gross is None else gross - cost,
                  provisional=False, trusted=True, live_days=30, registry_revision=1, data_window=(None, None),
                  alpha=0.05, state="ok")
    return ModelValue(**fields)


def _portfolio(figures: dict[str, tuple[float | None, float | None, float]], d) -> PortfolioValue:
    models = [_mv(n, *f) for n, f in figures.items()]
    return PortfolioValue(AS_OF, "to-date", AS_OF, AS_OF, "USD", 0.05, models, [], d.pairs,
                          overlap_patterns=d.patterns, deduction=d)


def test_totals_reconcile_rows_overlap_and_models_without_an_estimate() -> None:
    pats = [_p("ab", "ab", 100), _p("ab", "a", 900), _p("ab", "b", 100)]
    figures = {"a": (1000.0, 100.0, 200.0), "b": (300.0, 50.0, 50.0), "new": (None, None, 75.25)}
    d = deduct(pats, {n: f[0] for n, f in figures.items()}, {n: f[1] for n, f in figures.items()}, {})
    t = _portfolio(figures, d).totals
    r = t["reconciliation"]
    assert r == {"rows": pytest.approx(800.0 + 250.0), "overlap": pytest.approx(-100.0), "no_estimate_cost": -75.25,
                 "total": t["net"], "models_without_estimate": ["new"]}
    assert r["rows"] + r["overlap"] + r["no_estimate_cost"] == pytest.approx(r["total"], abs=1e-9)
    assert t["net"] == pytest.approx(1300.0 - 100.0 - 325.25)
    assert t["gross_se"] == pytest.approx(math.hypot(0.9 * 100.0, 50.0))
    assert t["double_counted"] == pytest.approx(100.0) and t["double_counted_se"] == pytest.approx(10.0)
    z = 1.959963984540054
    assert t["ci_net"] == pytest.approx([t["net"] - z * t["gross_se"], t["net"] + z * t["gross_se"]])


def _record(tmp_path, specs):
    """Run the refresh's overlap counting on the DuckDB warehouse of ``_exposures``; the stored patterns."""
    from valuetrack.config import ConnectionSettings
    from valuetrack.connectors import get_connector
    from valuetrack.refresh import _count_overlaps
    from valuetrack.store.db import open_engine
    from valuetrack.store.results import OverlapStore

    store = OverlapStore(open_engine(f"sqlite:///{tmp_path / 'app.db'}"))
    ctx = type("Ctx", (), {"overlaps": store})()
    conn = get_connector(ConnectionSettings(name="w", url=f"duckdb:///{tmp_path / 'w.duckdb'}"), None)
    store.replace(*_count_overlaps(ctx, specs, {specs[0].connection: conn}, None, AS_OF, None))
    conn.dispose()
    return store, [Pattern.from_dict(p) for p in store.patterns()]


def test_seventy_models_are_counted_by_pattern_across_two_mask_words(tmp_path) -> None:
    """More models than a mask word holds: each unit's mask takes two words; the patterns are the
    brute-force ones, including patterns across the words' boundary."""
    specs, _ = _specs(70)
    names = [s.name for s in specs]
    engine, served = _exposures(tmp_path, names, n=8000)
    engine.dispose()
    store, stored = _record(tmp_path, specs)
    want: dict[tuple[str, ...], int] = {}
    for unit in set().union(*served):
        members = tuple(m for m in names if unit in served[m])
        want[members] = want.get(members, 0) + 1
    assert not any(p.pairwise for p in stored) and {p.models: p.units for p in stored} == want
    assert any(names[MASK_BITS - 1] in p.models and names[MASK_BITS] in p.models for p in stored)
    assert deduct(stored, {n: 1.0 for n in names}, {}, {}).warnings == []


def test_pairwise_fallback_above_max_patterns_warns(tmp_path, monkeypatch) -> None:
    """More membership patterns than the refresh accepts (here 30, in production 4,096): it counts
    pairs instead, and the total says so."""
    import valuetrack.value.overlap as overlap

    monkeypatch.setattr(overlap, "MAX_PATTERNS", 30)
    specs, _ = _specs(MAX_PATTERN_MODELS + 1)
    names = [s.name for s in specs]
    engine, served = _exposures(tmp_path, names, n=6000)
    engine.dispose()
    store, stored = _record(tmp_path, specs)
    assert stored and all(p.pairwise and len(p.models) == 2 for p in stored)
    assert {p.models: p.units for p in stored} == {
        (a, b): len(served[a] & served[b]) for i, a in enumerate(names) for b in names[i + 1:] if served[a] & served[b]}
    d = deduct(stored, {n: 1000.0 for n in names}, {}, {n: float(len(served[n])) for n in names})
    assert d.warnings and "more than 30 membership patterns" in d.warnings[0] and "pair by pair" in d.warnings[0]
    assert {(o["model_a"], o["model_b"]) for o in store.read()} == {p.models for p in stored}


def test_twelve_models_are_counted_by_pattern(tmp_path) -> None:
    specs, _ = _specs(MAX_PATTERN_MODELS)
    engine, served = _exposures(tmp_path, [s.name for s in specs], n=6000)
    engine.dispose()
    _, stored = _record(tmp_path, specs)
    assert not any(p.pairwise for p in stored)
    assert sum(p.units for p in stored) == len(set().union(*served))  # every served unit in exactly one pattern
    assert deduct(stored, {s.name: 1.0 for s in specs}, {}, {}).warnings == []


def test_a_database_upgraded_in_place_deducts_its_stored_pairs_with_a_warning(tmp_path) -> None:
    """Before its first refresh with patterns (migration 0017), an upgraded database has pairs only:
    they are deducted pair by pair (the rule before), and the totals say so until the next refresh."""
    from types import SimpleNamespace

    from valuetrack.store.db import open_engine
    from valuetrack.store.results import OverlapStore
    from valuetrack.value.overlap import Overlap
    from valuetrack.value.portfolio import stored_patterns

    store = OverlapStore(open_engine(f"sqlite:///{tmp_path / 'app.db'}"))
    store.replace([Overlap("a", "b", 100, True), Overlap("a", "c", 40, False)], AS_OF)  # as the old refresh stored them
    patterns = stored_patterns(SimpleNamespace(overlaps=store))
    assert patterns == [Pattern(("a", "b"), ("a", "b"), 100, True)]  # a pair without a shared KPI claims nothing
    d = deduct(patterns, {"a": 1000.0, "b": 300.0}, {}, {"a": 1000.0, "b": 200.0})
    assert d.amount == pytest.approx(min(1000 * 0.1, 300 * 0.5)) and "valuetrack refresh" in d.warnings[0]
    store.replace([], AS_OF, [_p("ab", "ab", 100), _p("ab", "a", 900)])  # the next refresh: patterns win
    assert not any(p.pairwise for p in stored_patterns(SimpleNamespace(overlaps=store)))
