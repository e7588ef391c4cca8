"""JSON-safe numbers and structures, shared by the results, the stores and the reports
(no NaN or infinity in JSON or in the app database: a missing figure is None)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def num(x: Any) -> float | None:
    """A JSON-safe float: None for None, NaN, ±inf or anything that is not a number."""
    if x is None:
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def pair(p: Any) -> list[float | None] | None:
    """An interval [lo, hi], or None when it is missing altogether."""
    if p is None:
        return None
    lo, hi = num(p[0]), num(p[1])
    return None if lo is None and hi is None else [lo, hi]


def clean(obj: Any) -> Any:
    """Recursively make a structure JSON-safe (NaN → None, numpy → Python, timestamps → ISO)."""
    kind = type(obj)  # the common exact types first: a valuation cleans millions of values
    if kind is float:
        return obj if math.isfinite(obj) else None
    if kind is str or kind is int or obj is None:
        return obj
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return num(obj)
    if isinstance(obj, pd.Timestamp):
        return obj.date().isoformat() if obj == obj.normalize() else obj.isoformat()
    return obj


def effect_fields(result: Any) -> dict[str, Any]:
    """The fields every ts/did result shares, with the names of DESIGN.md."""
    return {
        "method": result.method,
        "alpha": result.alpha,
        "trusted": bool(result.trusted),
        "reason": result.reason,
        "effect_avg": num(result.effect_avg),
        "ci_avg": pair(result.ci_avg),
        "effect_cum": num(result.effect_cum),
        "ci_cum": pair(result.ci_cum),
        "effect_rel": num(result.effect_rel),
        "ci_rel": pair(result.ci_rel),
        "p_value": num(result.p_value),
        "pre_period_fit": clean(result.pre_period_fit) if result.pre_period_fit else None,
        "seed": result.seed,
        "inference": result.inference,
    }
