"""The one interface every attribution method implements, the one effect type it returns, and the
registry that everything listing methods reads (manifest validation, the register form, the CLI,
labels in pages and reports, the JSON schemas' enums, the docs table).

Adding a method is one module: subclass :class:`Method`, fill in ``name``, ``label``, ``sections``
and :meth:`Method.estimate`, and call :func:`register` on an instance (see docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Protocol

from valuetrack.errors import ParameterError, ValidationError, ValuetrackError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from valuetrack.registry.spec import Attribution, ModelSpec


class DailyGap(Protocol):
    """A counterfactual gap per day (time-series and panel methods): what value/ sums per period."""

    def gap_between(self, start: Any, end: Any) -> tuple[float, float, tuple[float, float]]:
        """(estimate, standard error, (lower, upper)) of the gap summed over [start, end]."""

    def to_frame(self) -> pd.DataFrame:
        """Daily frame for charts: date, actual, counterfactual, lower, upper, effect, cum_effect, ..."""


@dataclass(frozen=True)
class Effect:
    """A model's estimated effect to date, in KPI units (before money): what every method returns.

    Attributes:
        method: the method that produced it (a registered method name).
        per_unit: per-unit methods (A/B): absolute effect per treated unit (CUPED-adjusted when a
            covariate exists); None for daily-gap methods or when there is no estimate.
        per_unit_se: its standard error.
        effect_rel: relative effect (fraction), or None.
        p_value: two-sided p-value of "no effect".
        srm_p_value: sample-ratio-mismatch p-value (A/B), or None.
        trusted: False when the method's own checks failed.
        reason: why not trusted / why no estimate, or None.
        mature_through: last mature cohort day (A/B), or None.
        ts: the daily gap (:class:`DailyGap`: time-series and panel methods), or None; value/ sums it
            over each period with its standard error.
        details: the method's own fields (to_dict of its result): diagnostics for pages and JSON.
        requested_method: the registered method when it differs ("auto"), else None.
        method_reason: why this method was chosen (``auto``), else None.
    """

    method: str
    per_unit: float | None
    per_unit_se: float | None
    effect_rel: float | None
    p_value: float | None
    srm_p_value: float | None
    trusted: bool
    reason: str | None
    mature_through: dt.date | None
    ts: Any = None
    details: dict[str, Any] = field(default_factory=dict)
    requested_method: str | None = None
    method_reason: str | None = None

    @classmethod
    def none(cls, method: str, reason: str, mature_through: dt.date | None = None) -> Effect:
        """No estimate yet (no data), with the reason; not a failure."""
        return cls(method, None, None, None, None, None, True, reason, mature_through)

    def chosen_by(self, requested: str, reason: str) -> Effect:
        return dataclasses.replace(self, requested_method=requested, method_reason=reason)


class NotEstimable(ValuetrackError):
    """The model's data cannot give an estimate (too short, constant, no post-period...): the model
    gets an error state with this message; the others are valued as usual."""

    code = "not_estimable"


class Method:
    """One attribution method.

    Class attributes:
        name: the manifest's ``attribution.method`` value (``[a-z_]``, at most 64 characters).
        label: how pages and reports name it.
        sections: the manifest sections of ``[models.attribution]`` it reads: any of "exposures",
            "outcomes" (A/B), "series" (daily series), "panel" (long table of units).
        needs_interventions: the model must give at least one ``[[models.interventions]]`` start.
        single_intervention: the method fits one break; relaunches are refused.
        description: one line for the docs table.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    sections: ClassVar[tuple[str, ...]] = ()
    needs_interventions: ClassVar[bool] = False
    single_intervention: ClassVar[bool] = False
    description: ClassVar[str] = ""
    order: ClassVar[int] = 100
    """Where it is listed (built-ins first: ab, structural, its, did, synthetic_control, auto)."""

    @property
    def form_sections(self) -> tuple[str, ...]:
        """The sections the register form shows for this method (``auto``: every one)."""
        return self.sections

    def check(self, spec: ModelSpec, where: str, problems: list[str]) -> None:
        """Manifest checks beyond the generic ones (sections present, interventions): append problems."""

    def estimate(self, spec: ModelSpec, data: Any, as_of: dt.date, *, alpha: float = 0.05) -> Effect:
        """The effect to date from the model's stored aggregates.

        Args:
            spec: the registered model.
            data: its stored aggregates (``ab``, ``series`` frames, both cut before ``as_of``).
            as_of: the valuation date.
            alpha: 1 − confidence level.

        Returns:
            An :class:`Effect`; degenerate data returns one carrying a reason. Misuse raises a
            ValuetrackError whose message says what to fix; anything else is reported by value/ as
            a failed fit of this model only.
        """
        raise NotImplementedError

    # -- generic manifest checks, from the class attributes --------------------------------------

    def validate(self, spec: ModelSpec, where: str, problems: list[str]) -> None:
        a = spec.attribution
        aw = f"{where}.attribution"
        needed = [s for s in self.sections if getattr(a, s, None) is None]
        if needed:
            problems.append(f"{aw}: method {self.name!r} needs " + " and ".join(f"[{aw}.{s}]" for s in needed))
        if self.needs_interventions and not spec.interventions:
            problems.append(f"{where}.interventions: method {self.name!r} needs at least one start date")
        if self.single_intervention and len(spec.interventions) > 1:
            problems.append(f"{where}.interventions: method {self.name!r} fits one launch; give one start date "
                            "(or register each relaunch as its own model)")
        self.check(spec, where, problems)


_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add a method to the registry (its ``name`` must be new); returns it."""
    import re

    if not re.fullmatch(r"[a-z][a-z0-9_]{1,63}", method.name or ""):
        raise ParameterError(f"method name {method.name!r} must be 2-64 characters of a-z, 0-9 and '_'")
    if method.name in _REGISTRY and type(_REGISTRY[method.name]) is not type(method):
        raise ParameterError(f"a method named {method.name!r} is already registered")
    _REGISTRY[method.name] = method
    return method


def unregister(name: str) -> None:
    """Remove a method (tests register throw-away methods)."""
    _REGISTRY.pop(name, None)


def _load() -> dict[str, Method]:
    # the built-in methods register themselves on import (one module each)
    from valuetrack.attribution.methods import ab, auto, panel, timeseries  # noqa: F401

    return _REGISTRY


def names() -> tuple[str, ...]:
    """Every registered method's name, in listing order."""
    return tuple(m.name for m in all_methods())


def all_methods() -> Iterator[Method]:
    """Every registered method, in listing order (``order``, then registration)."""
    registered = list(_load().values())
    return iter(sorted(registered, key=lambda m: (m.order, registered.index(m))))


def get(name: str) -> Method:
    """The method called ``name``; ValidationError naming the known ones otherwise."""
    methods = _load()
    if name not in methods:
        raise ValidationError(f"attribution.method: {name!r} is not a known method; use one of {', '.join(methods)}")
    return methods[name]


def label(name: str) -> str:
    """The method's label for pages and reports (the name itself for an unknown method)."""
    m = _load().get(name)
    return m.label if m else name


def labels() -> dict[str, str]:
    return {m.name: m.label for m in all_methods()}
