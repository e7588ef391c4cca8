"""Manifest parsing: every field, every kind of mistake reported with the model and the field."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import VALID_MANIFEST
from valuetrack.errors import ValidationError
from valuetrack.registry.manifest import dump_manifest, parse_manifest


def test_valid_manifest_reads_every_field() -> None:
    churn, pricing = (e.spec for e in parse_manifest(VALID_MANIFEST))
    assert churn.timezone == "Europe/Paris"
    assert churn.cost_per_1k_predictions == 0.5 and churn.one_off_costs == 25000.0
    assert churn.interventions[0].start == dt.date(2025, 3, 1)
    assert churn.attribution.treatment_share == 0.9
    assert churn.attribution.exposures.segment == "country"
    assert churn.attribution.outcomes.where == "event_type = 'purchase'"
    assert churn.thresholds.unproven_after_days == 90
    assert pricing.attribution.series.controls == ("region_b_orders", "region_c_orders")
    assert [i.label for i in pricing.interventions] == ["launch", "v2 relaunch"]
    assert pricing.status == "active" and pricing.timezone == "UTC"  # defaults


def test_dump_is_canonical_and_round_trips() -> None:
    text = dump_manifest(parse_manifest(VALID_MANIFEST))
    assert dump_manifest(parse_manifest(text)) == text
    assert text.index('name = "churn-save-offers"') < text.index('name = "dynamic-pricing"')


def _broken(old: str, new: str, count: int = 1) -> str:
    assert old in VALID_MANIFEST
    return VALID_MANIFEST.replace(old, new, count)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_broken('team = "retention"', 'team = "retention"\ncolour = "blue"'), "model 'churn-save-offers'.colour: unknown field"),
        (_broken('name = "churn-save-offers"', 'name = "Churn_Save"'), "model 'Churn_Save'.name:"),
        (_broken('[models.kpi]\nname = "retained_revenue"\nunit = "USD"\nvalue_per_unit = 1.0\nhigher_is_better = true\naggregation = "sum"\n', ''),
         "model 'churn-save-offers'.kpi: required field is missing"),
        (_broken('name = "dynamic-pricing"', 'name = "churn-save-offers"'), "model 'churn-save-offers'.name: duplicate"),
        (_broken("monthly_cost = 4000.0", 'monthly_cost = "a lot"'), "model 'churn-save-offers'.monthly_cost: must be a number"),
        (_broken("window_days = 30", "window_days = 30.5"), "model 'churn-save-offers'.attribution.window_days: must be a whole number"),
        (_broken("higher_is_better = true", 'higher_is_better = "yes"'), "kpi.higher_is_better: must be true or false"),
        (_broken("monthly_cost = 4000.0", "monthly_cost = -1.0"), "model 'churn-save-offers'.monthly_cost: must be >= 0"),
        (_broken("where = \"event_type = 'purchase'\"", "where = \"1=1; DROP TABLE outcomes\""), "attribution.outcomes.where:"),
        (_broken("where = \"event_type = 'purchase'\"", "where = \"customer_id IN (SELECT id FROM secrets)\""), "contains a subquery"),
        (_broken('table = "exposures"', 'table = "exposures; drop table x"'), "attribution.exposures.table: 'exposures; drop table x' is not a plain name"),
        (_broken('timezone = "Europe/Paris"', 'timezone = "Mars/Olympus"'), ".timezone: 'Mars/Olympus' is not an IANA time zone"),
        (_broken("treatment_share = 0.9", "treatment_share = 1.5"), "treatment_share: must be strictly between 0 and 1"),
        (_broken('method = "structural"', 'method = "magic"'), "model 'dynamic-pricing'.attribution.method: 'magic' is not one of"),
        (_broken("monthly_cost = 12000.0", "monthly_cost = 12000.0\ncost_per_1k_predictions = 0.5"),
         "model 'dynamic-pricing'.cost_per_1k_predictions: the model has no exposures"),
        (_broken('controls = ["region_b_orders", "region_c_orders"]', "controls = []"), "needs at least one control series"),
        (_broken('status = "active"', 'status = "paused"'), ".status: 'paused' is not one of active, retired"),
        (_broken('unit = "USD"', 'unit = "dollars"'), "kpi.unit: 'dollars' is neither"),
        # the parser's own message is about the syntax around it: the date is named too
        (_broken("start = 2025-03-01", "start = 2025-13-01"), "not valid TOML"),
        (_broken("start = 2025-03-01", "start = 2025-13-01"), "2025-13-01 on line"),
        (_broken("start = 2025-03-01", "start = 2025-02-30"), "2025-02-30 on line"),
        ("[[models]]\nname = 'abc'\n[other]\nx=1\n", "unknown top-level key 'other'"),
        ("", "no [[models]] entries"),
    ],
)
def test_broken_manifest_names_field_and_model(text: str, expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_manifest(text)
    assert expected in str(info.value)


def test_all_problems_are_reported_at_once() -> None:
    text = _broken("monthly_cost = 4000.0", "monthly_cost = -5.0\nbogus = 1")
    text = text.replace('name = "retained_revenue"', "name = 7")
    with pytest.raises(ValidationError) as info:
        parse_manifest(text)
    joined = "\n".join(info.value.problems)
    assert "bogus: unknown field" in joined and "kpi.name: must be a string" in joined and "monthly_cost: must be >= 0" in joined


_DECISIONS = '''
[models.decisions]
table = "fraud_predictions"
id = "prediction_id"
timestamp = "predicted_at"
label = "is_fraud"
label_timestamp = "labelled_at"
score = "score"
threshold = 0.3
value_tp = 130.0
value_fp = -60.0
'''


def _with_decisions(old: str = "", new: str = "") -> str:
    block = _DECISIONS.replace(old, new) if old else _DECISIONS
    marker = '[[models]]\nname = "dynamic-pricing"'
    assert marker in VALID_MANIFEST
    return VALID_MANIFEST.replace(marker, block.lstrip("\n") + "\n" + marker)


def test_decisions_round_trip_and_keep_their_values() -> None:
    specs = parse_manifest(_with_decisions())
    d = specs[0].spec.decisions
    assert (d.table, d.score, d.threshold, d.value_tp, d.value_fp, d.value_fn, d.label_lag_days) == (
        "fraud_predictions", "score", 0.3, 130.0, -60.0, 0.0, 90)
    assert specs[1].spec.decisions is None
    text = dump_manifest(specs)
    assert "[models.decisions]" in text and dump_manifest(parse_manifest(text)) == text


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('score = "score"\n', "", "decisions: give `score` (a probability) or `decision` (1/0)"),
    ("threshold = 0.3", "threshold = 1.0", "decisions.threshold: must be strictly between 0 and 1"),
    ("value_tp = 130.0\nvalue_fp = -60.0\n", "", "give the money of at least one outcome"),
    ('label = "is_fraud"', 'label = "score"', "must be different columns"),
    ('table = "fraud_predictions"', 'table = "p; drop table x"', "decisions.table: 'p; drop table x' is not a plain name"),
    ('id = "prediction_id"', 'id = "id) OR (1=1"', "decisions.id:"),
    ("threshold = 0.3", "threshold = 0.3\nlabel_lag_days = 0", "decisions.label_lag_days: must be between 1 and 730"),
    ("threshold = 0.3", "threshold = 0.3\nvalue_tn = \"free\"", "decisions.value_tn: must be a number"),
])
def test_broken_decisions_name_the_field_and_the_fix(old: str, new: str, expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_manifest(_with_decisions(old, new))
    assert expected in str(info.value) and "model 'churn-save-offers'" in str(info.value)
