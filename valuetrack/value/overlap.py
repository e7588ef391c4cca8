"""Models that share units or a KPI, and a portfolio total that does not count value twice.

Two A/B models overlap when they serve the same units (same exposures table and unit column,
units in both treatment arms) and they *share a KPI* when they read the same outcomes (same
table, value column and filter). Each model's A/B estimate is its effect with the other model
in place, so for units served by both, both estimates can claim the same outcome. The portfolio
total therefore deducts, for every pair that shares units and a KPI and where both create value,
the smaller of the two models' value on the shared units (gross × shared / treated units of
that model): the conservative reading, in which the overlap creates value only once.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, Sequence

from valuetrack.registry.spec import ModelSpec


@dataclass(frozen=True)
class Overlap:
    """Two models that share units.

    Attributes:
        model_a, model_b: the models (names in order).
        shared_units: units served by both models' treatment arms.
        shared_kpi: both read the same outcomes (table, value column and filter).
        share_a, share_b: shared units as a share of each model's treated units (None if unknown).
        deduction: value deducted from the portfolio total for this pair (0 unless both create
            value and share the KPI).
    """

    model_a: str
    model_b: str
    shared_units: int
    shared_kpi: bool
    share_a: float | None = None
    share_b: float | None = None
    deduction: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def overlap_groups(specs: Sequence[ModelSpec]) -> list[list[ModelSpec]]:
    """Groups of A/B models that could share units: same connection, exposures table and unit
    column. Only groups with at least one pair sharing a KPI are returned (overlap without a
    shared KPI cannot double-count value)."""
    groups: dict[tuple[str, str, str], list[ModelSpec]] = {}
    for s in sorted((s for s in specs if s.has_holdout), key=lambda s: s.name):
        ex = s.attribution.exposures
        groups.setdefault((s.connection, ex.table, ex.unit), []).append(s)
    return [g for g in groups.values() if any(shares_kpi(a, b) for a, b in combinations(g, 2))]


def shares_kpi(a: ModelSpec, b: ModelSpec) -> bool:
    oa, ob = a.attribution.outcomes, b.attribution.outcomes
    if oa is None or ob is None or a.connection != b.connection:
        return False
    return (oa.table, oa.value, (oa.where or "").strip()) == (ob.table, ob.value, (ob.where or "").strip())


def deduplicate(overlaps: Sequence[Overlap], gross: dict[str, float | None],
                treated_units: dict[str, float]) -> list[Overlap]:
    """Fill in shares and the deduction of each overlap (see the module docstring)."""
    out = []
    for o in overlaps:
        na, nb = treated_units.get(o.model_a) or 0.0, treated_units.get(o.model_b) or 0.0
        sa_ = min(1.0, o.shared_units / na) if na else None
        sb_ = min(1.0, o.shared_units / nb) if nb else None
        ga, gb = gross.get(o.model_a), gross.get(o.model_b)
        deduction = 0.0
        if o.shared_kpi and sa_ is not None and sb_ is not None and ga and gb and ga > 0 and gb > 0:
            deduction = min(ga * sa_, gb * sb_)
        out.append(Overlap(o.model_a, o.model_b, o.shared_units, o.shared_kpi, sa_, sb_, deduction))
    return out
