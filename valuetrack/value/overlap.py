"""Models that share units and a KPI, and a portfolio total that counts their value once.

Two A/B models overlap when they serve the same units (same exposures table and unit column,
units in both treatment arms) and they *share a KPI* when they read the same outcomes (same
table, value column and filter). Each model's A/B estimate is its effect with the others in
place, so for units served by several of them, each estimate can claim the same outcome.

The refresh counts, for every group of models sharing units and a KPI (a *KPI group*), the units
per *membership pattern*: the units served by exactly the set S of the group's models (one GROUP
BY on a bitmask in the warehouse, :func:`valuetrack.queries.membership_query`). The total then
counts the units of each pattern once, at the largest per-unit value among the models of S that
create value there (docs/methods-value.md, docs/decisions.md D28):

    value of model i on pattern S   v_iS = gross_i × n_S / N_i     (N_i = Σ_{S ∋ i} n_S)
    deduction of S                  Σ_{i ∈ P} v_iS − max_{i ∈ P} v_iS,   P = {i ∈ S : v_iS > 0}

A model destroying value on S keeps its loss in full (a loss is never offset by another model's
gain). The deduction is linear in the models' gross values once the largest is chosen, so the
total is Σ_i k_i·gross_i with k_i the share of model i's value kept, and its variance
Σ_i k_i²·se_i² (the estimates taken as independent, the choice of the largest as fixed).

A KPI group whose units fall into more than :data:`MAX_PATTERNS` patterns (possible only above
12 models) is counted pair by pair instead (:func:`valuetrack.queries.shared_units_query`): for
every pair where both create value, the smaller claim on the shared units is deducted, which
deducts units served by three or more of them more than once; the totals carry a warning saying
so (``totals.overlap_warnings``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Iterable, Mapping, Sequence

from valuetrack.registry.spec import ModelSpec

MAX_PATTERNS = 4096
"""Above this many membership patterns in one KPI group, overlap is counted pair by pair (with a
warning). 12 models make at most 4,095; the patterns that occur in a larger group are bounded only
by its units."""

MAX_PATTERN_MODELS = 12
"""Groups of at most this many models are always counted by pattern (2**12 − 1 ≤ MAX_PATTERNS)."""


@dataclass(frozen=True)
class Overlap:
    """Two models that share units.

    Attributes:
        model_a, model_b: the models (names in order).
        shared_units: units served by both models' treatment arms (whatever else served them).
        shared_kpi: both read the same outcomes (table, value column and filter).
        share_a, share_b: shared units as a share of each model's served units (None if unknown).
        deduction: value deducted for this pair when its group is counted pair by pair; None when
            the group is counted by membership pattern (the deduction is per pattern then).
    """

    model_a: str
    model_b: str
    shared_units: int
    shared_kpi: bool
    share_a: float | None = None
    share_b: float | None = None
    deduction: float | None = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Pattern:
    """Units served by exactly the models ``models`` among the KPI group ``group``, as the refresh
    counted them; for a group counted pair by pair (``pairwise``), units served by both models of
    the pair, whatever else served them."""

    group: tuple[str, ...]
    models: tuple[str, ...]
    units: int
    pairwise: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"group": list(self.group), "models": list(self.models), "units": int(self.units),
                "pairwise": self.pairwise}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Pattern:
        return cls(tuple(d["group"]), tuple(d["models"]), int(d["units"]), bool(d.get("pairwise", False)))


@dataclass(frozen=True)
class Deduction:
    """Value that overlapping models would count more than once, for one period.

    Attributes:
        amount: deducted from the portfolio's gross value.
        se: its standard error (the same estimates as the models' own).
        kept: per model with a deduction, the share of its gross value kept in the total (1 − the
            share deducted); models absent keep all of theirs.
        patterns: per pattern with two or more models: ``models``, ``units``, ``deduction``,
            ``counted_at`` (the model whose value the units keep; None if nothing was deducted),
            ``pairwise``.
        pairs: every pair of models sharing units (for the JSON and the value at risk).
        warnings: sentences for people: groups counted pair by pair, and why.
    """

    amount: float = 0.0
    se: float = 0.0
    kept: dict[str, float] = field(default_factory=dict)
    patterns: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[Overlap] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def shares_kpi(a: ModelSpec, b: ModelSpec) -> bool:
    oa, ob = a.attribution.outcomes, b.attribution.outcomes
    if oa is None or ob is None or a.connection != b.connection:
        return False
    return (oa.table, oa.value, (oa.where or "").strip()) == (ob.table, ob.value, (ob.where or "").strip())


def kpi_groups(specs: Sequence[ModelSpec]) -> list[list[ModelSpec]]:
    """Groups of two or more A/B models that could count the same value twice: same connection,
    exposures table and unit column, and the same outcomes (table, value column and filter).
    Models sorted by name within a group, groups by their first model."""
    groups: dict[tuple[str, ...], list[ModelSpec]] = {}
    for s in sorted((s for s in specs if s.has_holdout and s.attribution.outcomes is not None), key=lambda s: s.name):
        ex, out = s.attribution.exposures, s.attribution.outcomes
        key = (s.connection, ex.table, ex.unit, out.table, out.value, (out.where or "").strip())
        groups.setdefault(key, []).append(s)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0].name)


RECOUNT_AFTER_DAYS = 92
"""A KPI group's stored counts older than this (days from their settled day to the as-of date)
are not advanced: the group is counted again from its whole history (D64)."""


@dataclass(frozen=True)
class SettledCounts:
    """A KPI group's units per membership mask over the exposures before ``settled`` (a day the
    A/B pulls no longer read again): what the next refresh advances instead of counting every
    unit again (D64). ``key``: :func:`membership_key` of the group."""

    key: str
    settled: dt.date
    counts: Mapping[int, int]


def membership_key(group: Sequence[ModelSpec]) -> str:
    """A digest of everything a KPI group's membership counts read: each model's name (its bit),
    connection, exposures table and columns, treatment label, model value and time zone, in bit
    order. Stored counts are advanced only under the same key."""
    parts = []
    for s in group:
        ex = s.attribution.exposures
        parts.append([s.name, s.connection, ex.table, ex.unit, ex.timestamp, ex.arm, ex.model, ex.treatment,
                      (ex.model_value or s.name) if ex.model is not None else None, s.timezone])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def settled_day(group: Sequence[ModelSpec], as_of: dt.date) -> dt.date:
    """The first day whose exposures a refresh on ``as_of`` may still see change: the A/B pulls
    read a cohort day again until ``window_days + outcome_lag_days`` have passed (the group's
    longest), and take the earlier days as final; so do the overlap counts."""
    horizon = max(s.attribution.window_days + s.attribution.outcome_lag_days for s in group)
    return as_of + dt.timedelta(days=1 - horizon)


def advance_counts(counts: Mapping[int, int], rows: Iterable[tuple[int, int, int, int]]
                   ) -> tuple[dict[int, int], dict[int, int]] | None:
    """Counts per mask now and at the new settled day, from ``counts`` (before the old settled
    day) and the membership query's rows ``(mask, base_mask, settled_mask, units)`` for the units
    served since the old settled day: each such unit leaves its old pattern (``base_mask``, 0 when
    new) and joins its pattern now (``mask``) and at the new settled day (``settled_mask``).
    None when a count would go below zero: the warehouse changed before the old settled day, and
    the group must be counted again from its whole history."""
    now, later = defaultdict(int, counts), defaultdict(int, counts)
    for mask, base, settled, units in rows:
        for out in (now, later):
            if base:
                out[base] -= units
        now[mask] += units
        if settled:
            later[settled] += units
    if any(v < 0 for v in now.values()) or any(v < 0 for v in later.values()):
        return None
    return {m: n for m, n in now.items() if n}, {m: n for m, n in later.items() if n}


def patterns_from_masks(group: Sequence[str], rows: Iterable[tuple[int, int]]) -> list[Pattern]:
    """The membership query's rows ``(mask, units)`` as patterns of model names (bit i = group[i])."""
    out = []
    for mask, units in rows:
        members = tuple(name for i, name in enumerate(group) if int(mask) >> i & 1)
        if members and int(units) > 0:
            out.append(Pattern(tuple(group), members, int(units)))
    return sorted(out, key=lambda p: (len(p.models), p.models))


def pairs_from_patterns(patterns: Sequence[Pattern]) -> list[Overlap]:
    """Units shared by every pair (whatever else served them), from exact membership patterns,
    with each model's share of its own served units; pairwise rows pass through."""
    out: list[Overlap] = []
    by_group: dict[tuple[str, ...], list[Pattern]] = defaultdict(list)
    for p in patterns:
        by_group[p.group].append(p)
    for group, ps in by_group.items():
        if ps[0].pairwise:
            out += [Overlap(p.models[0], p.models[1], p.units, True, None, None, 0.0) for p in ps]
            continue
        served = _served(ps)
        shared: dict[tuple[str, str], int] = defaultdict(int)
        for p in ps:
            for a, b in combinations(p.models, 2):
                shared[(a, b)] += p.units
        out += [Overlap(a, b, n, True, n / served[a] if served[a] else None, n / served[b] if served[b] else None, None)
                for (a, b), n in sorted(shared.items())]
    return out


def _served(patterns: Sequence[Pattern]) -> dict[str, int]:
    served: dict[str, int] = defaultdict(int)
    for p in patterns:
        for m in p.models:
            served[m] += p.units
    return served


def deduct(patterns: Sequence[Pattern], gross: Mapping[str, float | None], gross_se: Mapping[str, float | None],
           treated_units: Mapping[str, float]) -> Deduction:
    """The deduction for one period (see the module docstring).

    Args:
        patterns: the stored unit counts (:class:`Pattern`), of every KPI group.
        gross: each valued model's gross value in the period (None: no estimate); models absent
            (not valued) claim nothing.
        gross_se: their standard errors.
        treated_units: each model's treated units to date, for the shares of a group counted pair
            by pair (a membership pattern knows each model's served units itself).
    """
    deducted: dict[str, float] = defaultdict(float)  # share of each model's gross deducted
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    pairs: list[Overlap] = []
    by_group: dict[tuple[str, ...], list[Pattern]] = defaultdict(list)
    for p in patterns:
        by_group[p.group].append(p)
    for group, ps in sorted(by_group.items()):
        if ps[0].pairwise:
            warnings.append(_pairwise_warning(group))
            for p in ps:
                pair, row = _deduct_pair(p, gross, treated_units, deducted)
                pairs.append(pair)
                rows.append(row)
            continue
        served = _served(ps)
        pairs += pairs_from_patterns(ps)
        for p in ps:
            if len(p.models) < 2:
                continue
            value = {m: gross[m] * p.units / served[m] for m in p.models
                     if gross.get(m) is not None and served.get(m)}
            gaining = sorted((m for m, v in value.items() if v > 0), key=lambda m: (-value[m], m))
            for m in gaining[1:]:
                deducted[m] += p.units / served[m]
            rows.append({"models": list(p.models), "units": p.units, "pairwise": False,
                         "deduction": sum(value[m] for m in gaining[1:]),
                         "counted_at": gaining[0] if len(gaining) > 1 else None})
    share = {m: min(1.0, c) for m, c in deducted.items() if c > 0}
    amount = sum(gross[m] * c for m, c in share.items())  # type: ignore[operator]
    se = math.sqrt(sum((c * (gross_se.get(m) or 0.0)) ** 2 for m, c in share.items()))
    return Deduction(amount, se, {m: 1.0 - c for m, c in share.items()}, rows, pairs, warnings)


def _deduct_pair(p: Pattern, gross: Mapping[str, float | None], treated_units: Mapping[str, float],
                 deducted: dict[str, float]) -> tuple[Overlap, dict[str, Any]]:
    """The pre-pattern rule for one pair: the smaller claim on the shared units, if both gain."""
    a, b = p.models
    na, nb = treated_units.get(a) or 0.0, treated_units.get(b) or 0.0
    sa_ = min(1.0, p.units / na) if na else None
    sb_ = min(1.0, p.units / nb) if nb else None
    ga, gb = gross.get(a), gross.get(b)
    amount, at = 0.0, None
    if sa_ is not None and sb_ is not None and ga is not None and gb is not None and ga > 0 and gb > 0:
        (small, s_share, g_small), (at, _, _) = sorted([(a, sa_, ga), (b, sb_, gb)], key=lambda x: x[2] * x[1])
        amount = g_small * s_share
        deducted[small] += s_share
    return (Overlap(a, b, p.units, True, sa_, sb_, amount),
            {"models": [a, b], "units": p.units, "pairwise": True, "deduction": amount, "counted_at": at})


def _pairwise_warning(group: Sequence[str]) -> str:
    names = ", ".join(group)
    if len(group) > MAX_PATTERN_MODELS:
        return (f"{len(group)} models share units and a KPI ({names}): their units fall into more than "
                f"{MAX_PATTERNS:,} membership patterns, so their overlap is deducted pair by pair, which deducts units "
                "served by three or more of them more than once (the total is understated).")
    return (f"The overlap of {names} is deducted pair by pair, as counted before membership patterns: "
            "`valuetrack refresh` counts the patterns and then counts each shared unit once.")
