"""The same aggregate numbers from DuckDB, Snowflake (fakesnow), BigQuery (emulator) and Athena
(moto + DuckDB), through the real drivers and dialects, on the trap fixture data."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from tests.connectors.standins import connector_for
from tests.connectors.test_queries_fixture import (
    AS_OF, assert_same, brute_force, frame_to_dicts, make_spec, make_tables,
)
from valuetrack.queries import ab_aggregate, health_queries, split_crossovers
from valuetrack.refresh_pull import normalize_ab, normalize_days

NAIVE = make_tables()
START = dt.date(2025, 3, 29)


@pytest.fixture
def warehouse_tables() -> dict[str, pd.DataFrame]:
    """The trap fixture, timestamps as UTC instants (TIMESTAMP in BigQuery, TIMESTAMP_TZ in
    Snowflake, TIMESTAMPTZ in DuckDB, naive UTC timestamp in Athena)."""
    out = {name: frame.copy() for name, frame in NAIVE.items()}
    out["exposures"]["scored_at"] = out["exposures"]["scored_at"].dt.tz_localize("UTC")
    out["outcomes"]["event_at"] = out["outcomes"]["event_at"].dt.tz_localize("UTC")
    return out


@pytest.mark.parametrize("window", [(START, AS_OF), (dt.date(2025, 4, 3), dt.date(2025, 4, 25))],
                         ids=["history", "short window"])  # the short one groups only its own units
@pytest.mark.parametrize("aggregation", ["sum", "mean", "conversion"])
def test_same_numbers_on_every_warehouse(warehouse_engine, aggregation, window):
    connector = connector_for(warehouse_engine)
    spec = make_spec(aggregation, covariate_days=7, segment=True)
    start, as_of = window
    res = connector.run(ab_aggregate(spec, cohort_start=start, cohort_end=as_of, as_of=as_of, dialect_ops=connector.ops),
                        model=spec.name, purpose="ab", timeout_s=120)
    ab, xo = split_crossovers(normalize_ab(res.frame))
    got = frame_to_dicts(ab, xo, True)
    want = brute_force(spec, NAIVE, cohort_start=start, cohort_end=as_of, as_of=as_of)
    assert_same(got[0], want[0], exact=False)
    assert got[1] == want[1]
    assert res.attempts == 1 and "elapsed_s" in res.cost


def test_health_on_every_warehouse(warehouse_engine):
    connector = connector_for(warehouse_engine)
    spec = make_spec("sum")
    hq = health_queries(spec, start=START, end=dt.date(2025, 4, 5), bin_edges=[0.25, 0.5, 0.75], dialect_ops=connector.ops)
    daily = normalize_days(connector.run(hq.daily_exposures, model=spec.name, purpose="health").frame)
    ex = NAIVE["exposures"]
    ex = ex[ex.model_id == "churn-save"]
    local = ex.scored_at.dt.tz_localize("UTC").dt.tz_convert("Europe/Paris").dt.date
    mask = (local >= START) & (local <= dt.date(2025, 4, 5))
    want = ex[mask].assign(day=local[mask]).groupby(["day", "arm"]).size()
    got = daily.set_index(["day", "arm"])["n_exposures"].astype(int)
    assert got.sort_index().to_dict() == want.sort_index().to_dict()
    hist = normalize_days(connector.run(hq.score_histogram, model=spec.name, purpose="health").frame)
    assert int(pd.to_numeric(hist["n"]).sum()) == int(mask.sum())


def test_overlap_membership_on_every_warehouse(warehouse_engine):
    """Units per membership pattern (one GROUP BY on a bitmask) through each real driver and dialect."""
    import dataclasses

    from valuetrack.queries import as_of_cutoff, membership_query
    from valuetrack.value.overlap import patterns_from_masks

    connector = connector_for(warehouse_engine)
    base = make_spec("sum")

    def reading(name: str, model_value: str | None):
        ex = dataclasses.replace(base.attribution.exposures, model_value=model_value)
        return base.replace(name=name, attribution=dataclasses.replace(base.attribution, exposures=ex))

    specs = [base, reading("other-model", None), reading("churn-copy", base.name)]  # the copy reads churn-save's rows
    res = connector.run(membership_query(specs, as_of=AS_OF, dialect_ops=connector.ops), model=base.name,
                        purpose="overlap", timeout_s=120)
    names = [s.name for s in specs]
    got = {p.models: p.units for p in patterns_from_masks(names, zip(res.frame["mask"], res.frame["units"]))}
    ex = NAIVE["exposures"]
    cutoff = pd.Timestamp(as_of_cutoff(AS_OF, base.timezone))
    treated = ex[(ex.arm == "model") & (ex.scored_at < cutoff)]
    served = {name: set(treated[treated.model_id == value].customer_id)
              for name, value in zip(names, [base.name, "other-model", base.name])}
    want: dict[tuple[str, ...], int] = {}
    for unit in set().union(*served.values()):
        members = tuple(n for n in names if unit in served[n])
        want[members] = want.get(members, 0) + 1
    assert got == want and any(len(k) >= 2 for k in got)  # the copy shares every unit churn-save treated


def test_overlap_from_one_scan_on_every_warehouse(warehouse_engine):
    """Models sharing the exposures table through its model column are read by one scan, each with
    its own treatment label and time zone (two of them reading the same model value); a model
    without a model column and one keyed by another column are read on their own. Patterns and
    pairs are the brute-force counts on every warehouse."""
    import dataclasses
    from itertools import combinations

    from valuetrack.queries import as_of_cutoff, membership_query, shared_units_query
    from valuetrack.value.overlap import patterns_from_masks

    connector = connector_for(warehouse_engine)
    base = make_spec("sum")  # churn-save, Europe/Paris, treatment "model"
    as_of = dt.date(2025, 4, 1)  # the zones' midnights fall among the fixture's exposures

    def reading(name: str, tz: str, **exposures):
        ex = dataclasses.replace(base.attribution.exposures, **exposures)
        return base.replace(name=name, timezone=tz, attribution=dataclasses.replace(base.attribution, exposures=ex))

    specs = [base,
             reading("churn-tokyo", "Asia/Tokyo", model_value=base.name),  # churn-save's rows, an earlier cutoff
             reading("holdout-ny", "America/New_York", model_value=base.name, treatment="holdout"),
             reading("other-model", "Europe/Paris"),
             reading("every-model", "UTC", model=None),  # no model column: read on its own
             reading("germany", "Europe/Paris", model="country", model_value="DE")]  # another key: on its own
    names = [s.name for s in specs]
    ex = NAIVE["exposures"]

    def served(spec) -> set:
        e = spec.attribution.exposures
        rows = ex[(ex[e.arm] == e.treatment) & (ex[e.timestamp] < pd.Timestamp(as_of_cutoff(as_of, spec.timezone)))]
        if e.model is not None:
            rows = rows[rows[e.model] == (e.model_value or spec.name)]
        return set(rows[e.unit])

    units = {s.name: served(s) for s in specs}
    assert units["churn-tokyo"] < units[base.name]  # the time zones matter on this data
    want: dict[tuple[str, ...], int] = {}
    for unit in set().union(*units.values()):
        members = tuple(n for n in names if unit in units[n])
        want[members] = want.get(members, 0) + 1
    res = connector.run(membership_query(specs, as_of=as_of, dialect_ops=connector.ops), model=base.name,
                        purpose="overlap", timeout_s=120)
    got = {p.models: p.units for p in patterns_from_masks(names, zip(res.frame["mask"], res.frame["units"]))}
    assert got == want
    res = connector.run(shared_units_query(specs, as_of=as_of, dialect_ops=connector.ops), model=base.name,
                        purpose="overlap", timeout_s=120)
    pairs = {(names[int(r.model_a)], names[int(r.model_b)]): int(r.shared) for r in res.frame.itertuples(index=False)}
    assert pairs == {(a, b): len(units[a] & units[b]) for a, b in combinations(names, 2) if units[a] & units[b]}
    assert ("churn-save", "holdout-ny") in pairs  # a crossover unit: in both arms of the same model


def test_overlap_counts_advanced_from_a_settled_day_on_every_warehouse(warehouse_engine):
    """D64: counts over the exposures before a settled day, advanced by the membership query over
    the units served since (their masks now, before that day and before the next settled day),
    are the brute-force counts on every warehouse: models in four time zones, with two treatment
    labels, one without a model column and one keyed by another column."""
    import dataclasses

    from valuetrack.queries import as_of_cutoff, membership_changes, membership_masks, membership_query
    from valuetrack.value.overlap import advance_counts, patterns_from_masks

    connector = connector_for(warehouse_engine)
    base = make_spec("sum")

    def reading(name: str, tz: str, **exposures):
        ex = dataclasses.replace(base.attribution.exposures, **exposures)
        return base.replace(name=name, timezone=tz, attribution=dataclasses.replace(base.attribution, exposures=ex))

    specs = [base, reading("churn-tokyo", "Asia/Tokyo", model_value=base.name),
             reading("holdout-ny", "America/New_York", model_value=base.name, treatment="holdout"),
             reading("every-model", "UTC", model=None), reading("germany", "Europe/Paris", model="country", model_value="DE")]
    names, n = [s.name for s in specs], len(specs)
    ex = NAIVE["exposures"]

    def want(day: dt.date) -> dict:
        units = {}
        for s in specs:
            e = s.attribution.exposures
            rows = ex[(ex[e.arm] == e.treatment) & (ex[e.timestamp] < pd.Timestamp(as_of_cutoff(day, s.timezone)))]
            units[s.name] = set(rows[rows[e.model] == (e.model_value or s.name)][e.unit] if e.model else rows[e.unit])
        out: dict[tuple[str, ...], int] = {}
        for unit in set().union(*units.values()):
            members = tuple(name for name in names if unit in units[name])
            out[members] = out.get(members, 0) + 1
        return out

    def run(query):
        return connector.run(query, model=base.name, purpose="overlap", timeout_s=120).frame

    since, settled, as_of = dt.date(2025, 4, 8), dt.date(2025, 4, 14), dt.date(2025, 4, 20)
    before = run(membership_query(specs, as_of=since - dt.timedelta(days=1), dialect_ops=connector.ops))
    counts = dict(zip(membership_masks(before, n), map(int, before["units"])))
    frame = run(membership_query(specs, as_of=as_of, settled=settled, since=since, dialect_ops=connector.ops))
    now, later = advance_counts(counts, membership_changes(frame, n))
    assert {p.models: p.units for p in patterns_from_masks(names, now.items())} == want(as_of) != want(since)
    assert {p.models: p.units for p in patterns_from_masks(names, later.items())} == want(settled - dt.timedelta(days=1))
    assert 0 < int(frame["units"].sum()) < sum(want(as_of).values())  # only the units served since


def test_overlap_patterns_of_sixty_four_models_on_every_warehouse(warehouse_engine):
    """64 models: each unit's mask takes two words (models 0–51, then 52–63); every warehouse
    returns the brute-force patterns, bits up to 2**51 intact through its driver."""
    import dataclasses

    from valuetrack.queries import MASK_BITS, as_of_cutoff, mask_columns, membership_masks, membership_query
    from valuetrack.value.overlap import patterns_from_masks

    connector = connector_for(warehouse_engine)
    base = make_spec("sum")
    as_of = dt.date(2025, 4, 1)
    zones = ["Europe/Paris", "Asia/Tokyo", "America/New_York"]
    specs = []
    for k in range(64):
        ex = dataclasses.replace(base.attribution.exposures, model_value=["churn-save", "other-model"][k % 2],
                                 treatment=["model", "holdout"][k // 2 % 2])
        specs.append(base.replace(name=f"m{k:02d}", timezone=zones[k % 3],
                                  attribution=dataclasses.replace(base.attribution, exposures=ex)))
    names = [s.name for s in specs]
    ex = NAIVE["exposures"]
    units = {}
    for s in specs:
        e = s.attribution.exposures
        rows = ex[(ex.arm == e.treatment) & (ex.model_id == e.model_value)
                  & (ex.scored_at < pd.Timestamp(as_of_cutoff(as_of, s.timezone)))]
        units[s.name] = set(rows.customer_id)
    want: dict[tuple[str, ...], int] = {}
    for unit in set().union(*units.values()):
        members = tuple(n for n in names if unit in units[n])
        want[members] = want.get(members, 0) + 1
    res = connector.run(membership_query(specs, as_of=as_of, dialect_ops=connector.ops, limit=4097), model=base.name,
                        purpose="overlap", timeout_s=120)
    assert mask_columns(64) == ["mask", "mask_1"]
    got = {p.models: p.units for p in patterns_from_masks(names, zip(membership_masks(res.frame, 64), res.frame["units"]))}
    assert got == want
    assert any(int(k[0][1:]) < MASK_BITS <= int(k[-1][1:]) for k in got)  # patterns across the two words
