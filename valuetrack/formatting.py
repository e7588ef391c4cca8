"""Numbers for people: the one module that formats money, percentages, p-values and plain values
for the pages, the reports and the CLI's text (never for --json, which keeps full precision).

Built on Babel, so separators, symbols and their placement follow the locale
(``$VALUETRACK_LOCALE``, default ``en_US``). The rules (docs/decisions.md, D19):

- money shows cents when amounts are small (under 1,000), whole units otherwise; a column of
  figures takes one precision for all its cells (:func:`money_column`);
- compact forms (``$171.2K``) only where space is scarce: tiles and chart axes (:func:`money_compact`);
- a percentage has the precision its caller fixes for the whole column;
- a p-value below 1e-4 reads "< 0.0001" (a float's 1e-300 means nothing to a reader);
- ``None``, NaN, booleans and dicts never reach a page raw (:func:`plain`).
"""

from __future__ import annotations

import math
import os
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any, Iterable, Mapping

from babel import Locale, UnknownLocaleError
from babel.numbers import (format_compact_currency, format_currency, format_decimal, format_percent,
                           get_currency_symbol)

LOCALE_ENV = "VALUETRACK_LOCALE"
MISSING = "—"
SMALL = 1000.0  # money below this (in absolute value) shows cents
P_FLOOR = 1e-4


def locale() -> str:
    """The locale of every formatted number: $VALUETRACK_LOCALE when Babel knows it, else en_US."""
    return _checked(os.environ.get(LOCALE_ENV) or "en_US")


@lru_cache(maxsize=16)
def _checked(name: str) -> str:
    try:
        Locale.parse(name.replace("-", "_"))
        return name.replace("-", "_")
    except (ValueError, UnknownLocaleError):
        return "en_US"


@lru_cache(maxsize=16)
def _patterns(loc: str) -> tuple[str, str]:
    """The locale's currency pattern with cents and without them."""
    with_cents = Locale.parse(loc).currency_formats["standard"].pattern.split(";")[0]
    return with_cents, with_cents.replace(".00", "")


def _missing(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def _round(value: float, digits: int) -> Decimal:
    """Half away from zero, as people round money (Python's round() goes to even: 12.5 → 12)."""
    q = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return q + Decimal(0) if q else Decimal(0).quantize(q)  # no "-$0"


def money(value: float | None, currency: str = "USD", *, cents: bool | None = None, signed: bool = False) -> str:
    """A full money figure: 0.5 → '$0.50', 393621 → '$393,621'; None/NaN → '—'.

    Args:
        value: the amount in ``currency``.
        currency: ISO 4217 code.
        cents: force cents on (True) or off (False); by default cents only under 1,000.
        signed: put '+' before a positive amount (changes, deltas).
    """
    if _missing(value):
        return MISSING
    v = float(value)
    if cents is None:
        cents = abs(v) < SMALL
    v = _round(v, 2 if cents else 0)
    loc = locale()
    text = format_currency(v, currency, format=_patterns(loc)[0 if cents else 1], locale=loc, currency_digits=False)
    return "+" + text if signed and v > 0 else text


def symbol(currency: str) -> str:
    """The currency's symbol in the locale ('$' for USD in en_US; the code where there is none)."""
    return get_currency_symbol(currency, locale=locale())


def money_column(values: Iterable[float | None], currency: str = "USD") -> list[str]:
    """A column of money figures with one precision: cents only when every amount is small."""
    values = list(values)
    finite = [abs(float(v)) for v in values if not _missing(v)]
    cents = bool(finite) and max(finite) < SMALL
    return [money(v, currency, cents=cents) for v in values]


def money_compact(value: float | None, currency: str = "USD") -> str:
    """A short money figure for tiles and chart axes: 171210 → '$171.2K'; small amounts in full."""
    if _missing(value):
        return MISSING
    v = float(value)
    if abs(v) < SMALL:
        return money(v, currency)
    return format_compact_currency(v, currency, locale=locale(), fraction_digits=1)


def interval(ci: Iterable[float | None] | None, currency: str = "USD", *, compact: bool = False) -> str:
    """'−$2,400 to $8,200' for a money interval (both ends at one precision); 'no interval yet'."""
    ends = list(ci or [])
    if len(ends) != 2 or any(_missing(v) for v in ends):
        return "no interval yet"
    lo = hi = ""
    if compact and max(abs(float(v)) for v in ends) >= SMALL:
        lo, hi = (money(v, currency, cents=False) if abs(float(v)) < SMALL else money_compact(v, currency) for v in ends)
    if lo == hi:  # not compact, or a narrow interval the compact form cannot tell apart ('$3.9M to $3.9M')
        lo, hi = money_column(ends, currency)
    return f"{lo} to {hi}"


def pct(value: float | None, digits: int = 0, *, signed: bool = False) -> str:
    """A fraction as a percentage at a fixed precision: 2.771 → '277%' (digits=0); None → '—'."""
    if _missing(value):
        return MISSING
    v = _round(value, digits + 2)
    loc = locale()
    pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
    text = format_percent(v, pattern, locale=loc)
    return "+" + text if signed and v > 0 else text


def p_value(p: float | None) -> str:
    """A p-value: two significant digits, '< 0.0001' below 1e-4, '—' when there is none."""
    if _missing(p):
        return MISSING
    p = float(p)
    if p < P_FLOOR:
        return "< " + format_decimal(P_FLOOR, "0.0000", locale=locale())
    return format_decimal(min(p, 1.0), "@#", locale=locale())


def number(value: float | None, digits: int | None = 0) -> str:
    """A plain number with the locale's separators at a fixed precision: 12345.6 → '12,346';
    ``digits=None``: as typed, up to 3 decimals (-500.0 → '-500', 1.5 → '1.5')."""
    if _missing(value):
        return MISSING
    if digits is None:
        return format_decimal(_round(value, 3), "#,##0.###", locale=locale())
    v = _round(value, digits)
    return format_decimal(v, "#,##0" + ("." + "0" * digits if digits else ""), locale=locale())


def plain(value: Any) -> str:
    """Any value as words a person reads: None → '—', True → 'yes', 0.013712 → '0.0137',
    {'holdout_days': 102, 'mape': 0.0137} → 'holdout days 102, MAPE 0.0137'."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return number(value)
    if isinstance(value, float):
        if _missing(value):
            return MISSING
        if value != 0 and abs(value) < 1e-3:
            return format_decimal(value, "0.###E0", locale=locale())
        return format_decimal(value, "@@@" if abs(value) < 1000 else "#,##0", locale=locale())
    if isinstance(value, Mapping):
        return ", ".join(f"{label(k)} {plain(v)}" for k, v in value.items()) or MISSING
    if isinstance(value, (list, tuple, set)):
        return ", ".join(plain(v) for v in value) or MISSING
    if hasattr(value, "item"):  # numpy scalars
        return plain(value.item())
    return str(value)


_ACRONYMS = {"mape": "MAPE", "rmse": "RMSE", "srm": "SRM", "psi": "PSI", "ci": "CI", "se": "std. error", "r2": "R²"}


def label(key: str) -> str:
    """A field name as words: 'holdout_days' → 'holdout days', 'mape' → 'MAPE'."""
    return " ".join(_ACRONYMS.get(w.lower(), w) for w in str(key).replace("_", " ").split())


def kpi_amount(value: Any, unit: str | None) -> str:
    """An amount in a KPI's unit (guardrails): a rate in percentage points ('0.74 points'), a
    currency amount with its code ('0.552 USD'), a count as a plain number."""
    if value is None or _missing(value):
        return MISSING
    if unit == "rate":
        return f"{plain(float(value) * 100)} points"
    return plain(float(value)) if unit in (None, "count") else f"{plain(float(value))} {unit}"
