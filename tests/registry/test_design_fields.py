"""Manifest fields for designs beyond one holdout (issue 19): ramps and a challenger."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest

from tests.manifests import CHURN_MANIFEST
from valuetrack.errors import ValidationError
from valuetrack.registry.spec import ModelSpec


def spec_with(extra: str) -> ModelSpec:
    data = tomllib.loads(CHURN_MANIFEST + extra)
    return ModelSpec.from_dict(data["models"][0])


RAMP = '''
[[models.attribution.allocation]]
from = 2025-03-01
treatment_share = 0.1

[[models.attribution.allocation]]
from = 2025-03-15
treatment_share = 0.5
'''


def test_a_ramp_is_read_with_its_from_dates_and_written_back_the_same() -> None:
    spec = spec_with(RAMP)
    steps = spec.attribution.allocation
    assert [(s.start, s.treatment_share) for s in steps] == [(dt.date(2025, 3, 1), 0.1), (dt.date(2025, 3, 15), 0.5)]
    again = ModelSpec.from_dict(spec.to_dict())
    assert again == spec
    assert spec.to_dict()["attribution"]["allocation"][0] == {"from": dt.date(2025, 3, 1), "treatment_share": 0.1}
    # a model without a ramp serialises as before (no empty list)
    assert "allocation" not in spec_with("").to_dict()["attribution"]


@pytest.mark.parametrize("extra, message", [
    (RAMP.replace("2025-03-15", "2025-02-01"), "allocation: 'from' dates must be distinct and in date order"),
    (RAMP.replace("treatment_share = 0.5", "treatment_share = 1.0"), "allocation[1].treatment_share: must be strictly between 0 and 1"),
    (RAMP.replace("from = 2025-03-01", "start = 2025-03-01"), "allocation[0].start: unknown field"),
    ('\n[models.attribution.challenger]\narm = "holdout"\ntreatment_share = 0.05\n', "challenger.arm: 'holdout' is already"),
    ('\n[models.attribution.challenger]\narm = "v4"\ntreatment_share = 0.1\n', "leaves no holdout"),
    ('\n[models.attribution.challenger]\narm = "v4"\ntreatment_share = 0.05\nmonthly_cost = -1.0\n', "challenger.monthly_cost: must be >= 0"),
    (RAMP + '\n[models.attribution.challenger]\narm = "v4"\ntreatment_share = 0.05\n', "not supported"),
])
def test_bad_designs_are_refused_with_the_field_named(extra: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        spec_with(extra)
    assert any(message in p for p in err.value.problems), err.value.problems


def test_a_challenger_is_read() -> None:
    spec = spec_with('\n[models.attribution.challenger]\narm = "v4"\nlabel = "v4"\ntreatment_share = 0.05\n'
                     'cost_per_1k_predictions = 0.8\n')
    c = spec.attribution.challenger
    assert (c.arm, c.treatment_share, c.cost_per_1k_predictions) == ("v4", 0.05, 0.8)
