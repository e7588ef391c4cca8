"""Formatting numbers for people (CLI text, flags, reports and the app share it)."""

from __future__ import annotations

import math


def money(value: float | None, currency: str = "USD", *, signed: bool = False) -> str:
    """1234567.8 → '$1.23M'; None/NaN → '—'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency, "")
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    v = abs(value)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            body = f"{v / div:.2f}{suffix}"
            break
    else:
        body = f"{v:,.0f}"
    return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {currency}"
