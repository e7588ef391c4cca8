"""Annotations, excluded windows and overrides in words, for the model page and every report format
(one wording; the figures come from the ledger). Plain text: pages escape it (ui/safe.py, table_html),
the HTML/PDF template autoescapes it, CSV and XLSX neutralise it (safetext.py).
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from valuetrack.formatting import money, pct

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean(text: Any) -> str:
    """Typed text without control characters (a spreadsheet refuses them, a terminal obeys them);
    the store refuses them in new notes, this guards what was stored before."""
    return _CONTROL.sub(" ", str(text or ""))

ANNOTATION_LABELS = {"release": "Release", "incident": "Incident", "campaign": "Campaign", "other": "Note"}


def what(note: Mapping[str, Any], currency: str) -> str:
    """What a note is, without its text: 'Release on 2026-01-10', 'Excluded 2026-03-12 to 2026-03-14',
    'Override: +$1,000.00 on 2026-02-03', 'Override: 60% of gross value counted, launch to open'."""
    kind, start, end = note.get("kind"), note.get("start"), note.get("end")
    if kind == "annotation":
        return f"{ANNOTATION_LABELS.get(note.get('category') or 'other', 'Note')} on {start}"
    if kind == "exclusion":
        return f"Excluded {start} to {end}"
    if note.get("category") == "amount":
        return f"Override: {money(note.get('amount'), currency, cents=True, signed=True)} on {start}"
    return (f"Override: {pct(note.get('amount'), 0)} of gross value counted, {start or 'launch'} to "
            f"{end or 'open'}")


def note_rows(notes: Iterable[Mapping[str, Any]], currency: str) -> list[list[str]]:
    """[what, text, by, when] per note, oldest first."""
    return [[f"#{n.get('id')} {what(n, currency)}", clean(n.get("text")), clean(n.get("created_by")),
             str(n.get("created_at") or "")[:16].replace("T", " ")] for n in notes]


def override_rows(overrides: Iterable[Mapping[str, Any]] | None, currency: str) -> list[list[str]]:
    """[what, reason, by, its part of the period's adjustment] per override counted in a period."""
    out = []
    for o in overrides or ():
        note = {"kind": "override", **o}
        out.append([f"#{o.get('id')} {what(note, currency)}", clean(o.get("text")), clean(o.get("by")),
                    money(o.get("effect"), currency, cents=True, signed=True)])
    return out


def adjusted_rows(net: float | None, adjusted: float | None, amount: float | None, currency: str) -> list[list[str]]:
    """Net value unadjusted, from overrides, adjusted: the three lines every total shows."""
    return [["Net value (unadjusted: statistics and flags use it)", money(net, currency, cents=True)],
            ["From overrides agreed with finance", money(amount or 0.0, currency, cents=True, signed=True)],
            ["Net value, adjusted", money(adjusted, currency, cents=True)]]


def exclusion_rows(ex: Mapping[str, Any] | None, currency: str, level: int = 95) -> list[list[str]]:
    """[figure, with the exclusions (as valued), without them] for the estimate to date."""
    if not ex:
        return []
    w, wo = ex.get("with") or {}, ex.get("without") or {}

    def num(v: Any) -> str:
        return "—" if v is None else f"{v:,.4g}"

    def ci(v: Any, fmt: Any) -> str:
        return "—" if not v else f"{fmt(v[0])} to {fmt(v[1])}"

    cash = lambda v: money(v, currency, cents=True)  # noqa: E731
    rows = [["Effect" + (" per unit" if w.get("effect_se") is not None else " (average per day)"),
             num(w.get("effect")), num(wo.get("effect"))],
            ["Effect, standard error", num(w.get("effect_se")), num(wo.get("effect_se"))],
            [f"Effect, {level}% interval", ci(w.get("effect_ci"), num), ci(wo.get("effect_ci"), num)],
            ["p-value (no effect)", num(w.get("p_value")), num(wo.get("p_value"))],
            ["Gross value to date", cash(w.get("gross")), cash(wo.get("gross"))],
            [f"Gross value, {level}% interval", ci(w.get("ci_gross"), cash), ci(wo.get("ci_gross"), cash)],
            ["Net value to date", cash(w.get("net")), cash(wo.get("net"))]]
    return rows


def exclusion_sentence(ex: Mapping[str, Any] | None) -> str:
    """One sentence on what the excluded windows change."""
    if not ex:
        return ""
    shift = ex.get("shift_se")
    moved = "" if shift is None else (f" Without the exclusion the estimate would sit {abs(shift):.2f} standard errors "
                                      f"{'higher' if shift > 0 else 'lower'}.")
    return (f"{ex.get('days', 0)} day(s) are left out of attribution: the estimate never sees them and no value "
            f"is claimed for them; their cost still counts.{moved}")
