"""Bounds on what valuetrack parses, so a hostile or broken file costs a clear error, not a crash,
a minute of CPU or a gigabyte of memory (docs/reliability.md, "Limits"; docs/decisions.md D23).

| input | limit |
| --- | --- |
| manifest and settings files | 5 MB (checked before reading) |
| models in one manifest | 2,000 (register larger portfolios in several files) |
| nesting of tables/arrays in a TOML file | 20 levels (a manifest needs 4) |
| parentheses nested in a where-filter | 32 levels |

Python's own parsers recurse: a 1 KB TOML file nested 500 deep, or a filter with 60 nested
parentheses, ends in RecursionError. ``load_toml`` and ``check_filter_nesting`` refuse those
before parsing, and any RecursionError that still escapes a parser becomes a ValidationError.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any

from valuetrack.errors import ValidationError

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_MODELS = 2000
MAX_DEPTH = 20
MAX_FILTER_PARENS = 32


def read_text(path: Path, what: str) -> str:
    """The file's text if it is not larger than MAX_FILE_BYTES (size checked before reading)."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValidationError(f"{what}: {str(path)!r} is {size / 1e6:.1f} MB; files up to "
                              f"{MAX_FILE_BYTES // (1024 * 1024)} MB are read (split it into several)")
    return path.read_text(encoding="utf-8")


def _bad_dates(text: str, exc: Exception) -> str:
    """A TOML date that is not a day of the calendar (2025-13-11) stops the parser with a message
    about the syntax around it ("Unclosed inline table"): name such dates on the line it stopped at."""
    at = re.search(r"at line (\d+)", str(exc))  # tomllib says where it stopped in its message
    line, lines = int(at.group(1)) if at else None, text.splitlines()
    if not line or line > len(lines):
        return ""
    bad = []
    for token in re.findall(r"(?<![\w.\-])\d{4}-\d{2}-\d{2}(?![\w\-])", lines[line - 1]):
        try:
            dt.date.fromisoformat(token)
        except ValueError:
            bad.append(token)
    return f" ({', '.join(bad)} on line {line} is not a date: YYYY-MM-DD, a real day)" if bad else ""


def load_toml(text: str, source: str) -> dict[str, Any]:
    """tomllib.loads with the size and nesting limits; ValidationError names the problem."""
    if len(text) > MAX_FILE_BYTES:
        raise ValidationError(f"{source}: {len(text) / 1e6:.1f} MB of TOML; up to "
                              f"{MAX_FILE_BYTES // (1024 * 1024)} MB is read (split it into several files)")
    depth = _bracket_depth(text)
    if depth > MAX_DEPTH:
        raise ValidationError(f"{source}: arrays or inline tables nested {depth} deep; at most {MAX_DEPTH} "
                              "levels are read (a manifest needs 4)")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{source}: not valid TOML: {exc}{_bad_dates(text, exc)}") from None
    except RecursionError:
        raise ValidationError(f"{source}: nested too deeply to read; at most {MAX_DEPTH} levels") from None
    deepest = _data_depth(data)
    if deepest > MAX_DEPTH:  # e.g. dotted keys a.b.c.… that the bracket scan does not see
        raise ValidationError(f"{source}: tables nested {deepest} deep; at most {MAX_DEPTH} levels are read")
    return data


def check_model_count(n: int, source: str) -> None:
    if n > MAX_MODELS:
        raise ValidationError(f"{source}: {n:,} models; one manifest registers at most {MAX_MODELS:,} "
                              "(split the file, each is one transaction)")


def check_filter_nesting(sql: str) -> None:
    """Refuse a where-filter whose parentheses nest deeper than MAX_FILTER_PARENS (outside strings)."""
    depth = deepest = 0
    quote = None
    for ch in sql:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
    if deepest > MAX_FILTER_PARENS:
        raise ValidationError(f"the filter nests parentheses {deepest} deep; at most {MAX_FILTER_PARENS} levels")


def _bracket_depth(text: str) -> int:
    """Deepest nesting of [ ] and { } in TOML values, skipping strings and comments (a cheap
    lexical scan that cannot recurse)."""
    depth = deepest = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if ch in "\"'":
            triple = text.startswith(ch * 3, i)
            end = text.find(ch * 3, i + 3) if triple else _string_end(text, i, ch)
            i = n if end < 0 else end + (3 if triple else 1)
            continue
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(depth - 1, 0)
        i += 1
    return deepest


def _string_end(text: str, start: int, quote: str) -> int:
    i = start + 1
    while i < len(text) and text[i] not in (quote, "\n"):
        i += 2 if quote == '"' and text[i] == "\\" else 1
    return i


def _data_depth(data: Any) -> int:
    deepest, stack = 0, [(data, 0)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return deepest
