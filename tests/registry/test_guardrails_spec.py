"""[[models.guardrails]] in the manifest: read, validated with the field named, round-tripped."""

from __future__ import annotations

import textwrap

import pytest

from tests.conftest import VALID_MANIFEST
from valuetrack.errors import ValidationError
from valuetrack.registry.manifest import dump_manifest, parse_manifest

GUARDRAILS = '''
    [[models.guardrails]]
    name = "refunds"
    harm = "increase"
    tolerance = 0.05
    unit = "USD"
    aggregation = "sum"
    value_per_unit = 1.0
    in_main_kpi = false

    [models.guardrails.outcomes]
    table = "outcomes"
    unit = "customer_id"
    timestamp = "event_at"
    value = "value"
    where = "event_type = 'refund'"

    [[models.guardrails]]
    name = "complaints"
    harm = "increase"
    tolerance = 0.0
    aggregation = "conversion"

    [models.guardrails.outcomes]
    table = "tickets"
    unit = "customer_id"
    timestamp = "opened_at"
    value = "one"
'''


def with_guardrails(text: str = GUARDRAILS) -> str:
    """VALID_MANIFEST with ``text`` appended to its first model (an A/B model)."""
    second = VALID_MANIFEST.index("\n[[models]]", VALID_MANIFEST.index("[[models]]") + 1)
    return VALID_MANIFEST[:second] + "\n" + textwrap.dedent(text) + VALID_MANIFEST[second:]


def test_guardrails_are_read_and_round_trip() -> None:
    entries = parse_manifest(with_guardrails())
    spec = next(e.spec for e in entries if e.spec.guardrails)
    refunds, complaints = spec.guardrails
    assert (refunds.name, refunds.harm, refunds.tolerance, refunds.value_per_unit, refunds.in_main_kpi) == \
        ("refunds", "increase", 0.05, 1.0, False)
    assert refunds.in_net and not complaints.in_net
    assert complaints.unit == "count" and complaints.value_per_unit is None
    assert refunds.outcomes.where == "event_type = 'refund'"
    text = dump_manifest(entries)
    assert dump_manifest(parse_manifest(text)) == text
    # models without guardrails serialise as before (no empty list)
    assert text.count("[[models.guardrails]]") == 2


@pytest.mark.parametrize("old,new,expected", [
    ('harm = "increase"\n    tolerance = 0.05', 'harm = "up"\n    tolerance = 0.05',
     "guardrails[0].harm: 'up' is not one of increase, decrease"),
    ("tolerance = 0.05", "tolerance = -0.05", "guardrails[0].tolerance: must be >= 0"),
    ("value_per_unit = 1.0\n    in_main", "value_per_unit = -1.0\n    in_main", "guardrails[0].value_per_unit: must be >= 0"),
    ('name = "complaints"', 'name = "refunds"', "guardrails: names must be unique"),
    ('name = "complaints"', 'name = "Complaints!"', "guardrails[1].name: 'Complaints!' must be"),
    ("where = \"event_type = 'refund'\"", "where = \"1=1; DROP TABLE x\"", "guardrails[0].outcomes.where"),
    ('aggregation = "conversion"', 'aggregation = "median"', "guardrails[1].aggregation: 'median' is not one of"),
    ('value = "one"\n', '', "guardrails[1].outcomes.value: required field is missing"),
])
def test_bad_guardrails_name_the_field(old: str, new: str, expected: str) -> None:
    text = with_guardrails(GUARDRAILS.replace(old, new, 1))
    with pytest.raises(ValidationError) as err:
        parse_manifest(text)
    assert any(expected in p and "churn-save-offers" in p for p in err.value.problems), err.value.problems


def test_guardrails_need_a_holdout() -> None:
    from valuetrack.registry.spec import ModelSpec

    spec = parse_manifest(with_guardrails())[0].spec
    data = spec.to_dict()
    data["attribution"] = {"method": "structural", "series": {"table": "daily", "date": "day", "value": "v",
                                                              "controls": ["c"]}}
    with pytest.raises(ValidationError) as err:
        ModelSpec.from_dict(data)
    assert any("guardrails: need a holdout" in p for p in err.value.problems)
