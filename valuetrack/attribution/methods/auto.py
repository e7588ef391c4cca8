"""``auto``: the strongest design the model's data allows (valuetrack.attribution.choose), recorded
with the reason: a holdout → ab; a panel of units → did; control series → structural; else its."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from valuetrack.attribution.methods.base import Effect, Method, get, register

if TYPE_CHECKING:  # pragma: no cover
    from valuetrack.registry.spec import ModelSpec


def choose(spec: ModelSpec, data: Any = None) -> tuple[str, str]:
    """(method, reason) for an ``auto`` model, from its manifest (and its stored series, if given)."""
    from valuetrack.attribution.choose import choose_method

    a = spec.attribution
    n_pre = None
    if data is not None and spec.interventions and len(getattr(data, "series", ())):
        n_pre = int(sum(d < spec.interventions[0].start for d in data.series["day"]))
    return choose_method(spec.has_holdout, len(a.series.controls) if a.series else 0, n_pre_days=n_pre,
                         panel=a.panel is not None)


class AutoMethod(Method):
    name = "auto"
    order = 60
    label = "Automatic"
    description = ("picks ab with a holdout, else did with a panel, else structural with control series, else its; "
                   "reports its choice and why")

    @property
    def form_sections(self) -> tuple[str, ...]:
        return ("exposures", "outcomes", "series", "panel")

    def check(self, spec: ModelSpec, where: str, problems: list[str]) -> None:
        a = spec.attribution
        if not spec.has_holdout and a.series is None and a.panel is None:
            aw = f"{where}.attribution"
            problems.append(f"{aw}: give [{aw}.exposures] and [{aw}.outcomes] (A/B), [{aw}.series] or [{aw}.panel]")
            return
        if not spec.has_holdout:
            chosen = get(choose(spec)[0])
            chosen.validate(spec, where, problems)

    def estimate(self, spec: ModelSpec, data: Any, as_of: dt.date, *, alpha: float = 0.05) -> Effect:
        method, reason = choose(spec, data)
        return get(method).estimate(spec, data, as_of, alpha=alpha).chosen_by(self.name, reason)


register(AutoMethod())
