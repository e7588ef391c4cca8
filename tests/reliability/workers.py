"""Writer workers for the concurrency test: run in threads and in spawned processes alike."""

from __future__ import annotations

import random
import time
from typing import Any


POOL = 24  # model names writers create and edit: conc-00 .. conc-23
PRECREATED = 12


def model_name(i: int) -> str:
    return f"conc-{i:02d}"


def base_spec(name: str) -> Any:
    from valuetrack.registry.manifest import parse_manifest

    return parse_manifest(_MANIFEST)[0].spec.replace(name=name)


def warm(_: int) -> None:
    """Import everything a writer needs (spawned processes start cold), then yield to the others."""
    import valuetrack.registry.store  # noqa: F401
    import valuetrack.store.db  # noqa: F401

    base_spec("warm-up")
    time.sleep(0.3)


def writer(url: str, worker: str, duration_s: float, seed: int) -> dict[str, Any]:
    """Register and edit models as fast as possible for ``duration_s``; report every outcome.

    Each edit reads the model (like a form being opened) and saves with the revision it read;
    every 10th edit deliberately saves against a revision it knows is stale.
    """
    from valuetrack.access import Actor
    from valuetrack.errors import AlreadyExists, Conflict, ValuetrackError
    from valuetrack.registry.store import RegistryStore
    from valuetrack.store.db import open_engine

    rng = random.Random(seed)
    store = RegistryStore(open_engine(url))
    actor = Actor(worker)
    out: dict[str, Any] = {"worker": worker, "writes": [], "creates": [], "conflicts": 0, "already_exists": 0,
                           "stale_refused": 0, "stale_accepted": 0, "errors": []}
    deadline = time.monotonic() + duration_s
    n = 0
    while time.monotonic() < deadline:
        n += 1
        name = model_name(rng.randrange(POOL))
        try:
            if rng.random() < 0.05:
                store.create(base_spec(name), actor)
                out["creates"].append(name)
                continue
            current = store.get(name)
            cost = float(f"{abs(hash(worker)) % 997}{n}")  # unique per write
            spec = current.spec.replace(monthly_cost=cost, owner=f"{worker}@example.com")
            stale = n % 10 == 0 and current.revision > 1
            expected = current.revision - 1 if stale else current.revision
            try:
                saved = store.update(spec, expected_revision=expected, actor=actor)
            except Conflict:
                out["stale_refused" if stale else "conflicts"] += 1
                continue
            if stale:
                out["stale_accepted"] += 1
            out["writes"].append((name, saved.revision, cost))
        except AlreadyExists:
            out["already_exists"] += 1
        except ValuetrackError as exc:
            if "no model named" in exc.message:
                continue  # not created yet
            out["errors"].append(exc.message)
    return out


# the first model of tests/conftest.py's VALID_MANIFEST (kept here: workers import nothing from pytest)
_MANIFEST = '''[[models]]
name = "churn-save-offers"
display_name = "Churn save offers v3"
owner = "retention-team@example.com"
team = "retention"
status = "active"
connection = "demo"
timezone = "Europe/Paris"
monthly_cost = 4000.0
cost_per_1k_predictions = 0.5
one_off_costs = 25000.0

[[models.interventions]]
start = 2025-03-01
label = "v3 launch"

[models.kpi]
name = "retained_revenue"
unit = "USD"
value_per_unit = 1.0
higher_is_better = true
aggregation = "sum"

[models.attribution]
method = "ab"
window_days = 30
outcome_lag_days = 3
covariate_days = 30
treatment_share = 0.9

[models.attribution.exposures]
table = "exposures"
unit = "customer_id"
timestamp = "scored_at"
model = "model_id"
arm = "arm"
treatment = "model"
control = "holdout"
score = "score"
segment = "country"

[models.attribution.outcomes]
table = "outcomes"
unit = "customer_id"
timestamp = "event_at"
value = "value"
where = "event_type = 'purchase'"

[models.thresholds]
min_roi = 0.0
unproven_after_days = 90

'''
