"""Manifest texts shared by tests, fixtures and the concurrency workers (plain module: no pytest)."""

from __future__ import annotations

import textwrap

VALID_MANIFEST = textwrap.dedent('''
    [[models]]
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

    [[models]]
    name = "dynamic-pricing"
    display_name = "Dynamic pricing"
    owner = "pricing@example.com"
    team = "pricing"
    connection = "demo"
    monthly_cost = 12000.0

    [[models.interventions]]
    start = 2025-01-15
    label = "launch"

    [[models.interventions]]
    start = 2025-06-01
    label = "v2 relaunch"

    [models.kpi]
    name = "orders"
    unit = "count"
    value_per_unit = 7.5

    [models.attribution]
    method = "structural"

    [models.attribution.series]
    table = "daily_kpis"
    date = "day"
    value = "region_a_orders"
    controls = ["region_b_orders", "region_c_orders"]
''')


# its first model alone
CHURN_MANIFEST = VALID_MANIFEST.split('[[models]]\nname = "dynamic-pricing"')[0]


def copy_of_the_most_valuable(models: list[dict], name: str = "the-copy") -> str:
    """Register a copy of the A/B model with the largest gross value in ``models`` (``value --json``'s
    rows): the same exposures rows (its ``model_value``), units and KPI, so the two count the same
    value twice and the portfolio must deduct it once. Returns the original's name."""
    import dataclasses

    from valuetrack.actions import save
    from valuetrack.context import open_context

    ab = [m for m in models if m["method"] == "ab" and m["gross"] is not None]
    original = max(ab, key=lambda m: m["gross"])["model"]
    ctx = open_context()
    spec = ctx.registry.get(original).spec
    a = spec.attribution
    save(ctx, spec.replace(name=name, display_name=name.replace("-", " ").capitalize(), attribution=dataclasses.replace(
        a, exposures=dataclasses.replace(a.exposures, model_value=a.exposures.model_value or original))))
    return original
