"""A model's guardrails in words, for the model page and the monthly report (one text, two
surfaces): each guardrail's harm per treated unit against its tolerance, whether it is breached
(the ``guardrail_breach`` flag's evidence), and what its money does to net value
(valuetrack/value/guardrails.py computes the figures; docs/methods-value.md, "Guardrails")."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from valuetrack.formatting import kpi_amount, money

HEAD = ["Guardrail", "Harm is", "Harm per treated unit (95% interval)", "Tolerance", "Status", "Money"]


def guardrail_rows(guardrails: Iterable[Mapping[str, Any]] | None, flags: Iterable[Any], model: str,
                   currency: str) -> list[list[str]]:
    """One row per guardrail (columns ``HEAD``). ``flags`` are the portfolio's flags (objects or
    dicts); the model's ``guardrail_breach`` says which guardrails are breached."""
    breached: set[str] = set()
    joint = False
    for f in flags:
        get = f.get if isinstance(f, Mapping) else lambda k, f=f: getattr(f, k, None)
        if get("model") == model and get("type") == "guardrail_breach":
            rows = (get("evidence") or {}).get("guardrails") or []
            breached = {g["name"] for g in rows if g.get("breached")}
            joint = not breached  # no guardrail clears the bar alone: the family does
    out = []
    for g in guardrails or []:
        unit, harm = g.get("unit"), g.get("harm_per_unit")
        ci = g.get("ci_harm")
        shown = (f"{kpi_amount(harm, unit)} ({kpi_amount(ci[0], unit)} to {kpi_amount(ci[1], unit)})"
                 if harm is not None and ci else "no estimate yet")
        if harm is None:
            status = "no data yet"
        elif g["name"] in breached:
            status = "breached"
        else:
            status = "breached jointly with the others" if joint else "not breached"
        if g.get("value_per_unit") is None:
            value = "no value per unit"
        elif g.get("in_main_kpi"):
            value = f"{money(g.get('value'), currency)}, inside the KPI: not added"
        else:
            value = f"{money(g.get('value'), currency)}, in net value"
        out.append([g["name"], "an increase" if g.get("harm") == "increase" else "a decrease", shown,
                    kpi_amount(g.get("tolerance"), unit), status, value])
    return out
