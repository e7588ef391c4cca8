"""False-discovery control over a portfolio of models.

Two procedures, for two ways of looking:

* :func:`benjamini_hochberg` on fixed-horizon p-values, for a report cut on one date. It controls
  the false-discovery rate at ``q`` for independent or positively dependent p-values.
* :func:`e_benjamini_hochberg` (e-BH, Wang & Ramdas 2022) on e-values, for continuous monitoring.
  It controls the false-discovery rate at ``q`` under *any* dependence between the models. Feed it
  the current values of the confidence sequences' e-processes (``ABResult.e_value``): each is a
  non-negative supermartingale under its null, so its value at any (data-dependent) stopping time
  is an e-value. Do not feed it a running maximum of past e-values; that is not an e-value.

Missing tests (NaN, e.g. a model whose result is degenerate) are never discoveries and do not
count towards the number of hypotheses ``m``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from valuetrack.errors import ParameterError


def _check_q(q: float) -> None:
    if not (0.0 < float(q) < 1.0):
        raise ParameterError(f"q must be in (0, 1) (the false-discovery rate); got {q!r}")


def benjamini_hochberg(p_values: ArrayLike, q: float = 0.05, *, axis: int = 0) -> np.ndarray:
    """Benjamini–Hochberg step-up procedure.

    Args:
        p_values: p-values, one per model along ``axis`` (e.g. shape (models,) or (models, days)).
        q: the false-discovery rate to control, in (0, 1).
        axis: the axis that runs over the hypotheses (models).

    Returns:
        A boolean array of the same shape: True where the hypothesis is rejected (a discovery).

    Raises:
        ParameterError: ``q`` outside (0, 1) or a p-value outside [0, 1].
    """
    _check_q(q)
    p = np.moveaxis(np.asarray(p_values, dtype=float), axis, 0)
    finite = ~np.isnan(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ParameterError("p_values must lie in [0, 1]")
    m = finite.sum(axis=0)  # hypotheses actually tested, per column
    filled = np.where(finite, p, np.inf)
    order = np.argsort(filled, axis=0, kind="stable")
    sorted_p = np.take_along_axis(filled, order, axis=0)
    rank = np.arange(1, p.shape[0] + 1).reshape((-1,) + (1,) * (p.ndim - 1))
    ok = sorted_p <= q * rank / np.maximum(m, 1)
    # step-up: reject every hypothesis up to the largest rank that passes
    k_star = np.where(ok.any(axis=0), p.shape[0] - np.argmax(ok[::-1], axis=0), 0)
    reject_sorted = rank <= k_star
    out = np.empty_like(reject_sorted)
    np.put_along_axis(out, order, reject_sorted, axis=0)
    return np.moveaxis(out & finite, 0, axis)


def bh_adjusted(p_values: ArrayLike) -> np.ndarray:
    """BH-adjusted p-values (q-values) of a 1-D array: reject at level q where ``adjusted <= q``."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ParameterError(f"p_values must be 1-D here; got shape {p.shape}")
    finite = ~np.isnan(p)
    out = np.full(p.shape, np.nan)
    pf = p[finite]
    m = pf.size
    if m == 0:
        return out
    order = np.argsort(pf, kind="stable")
    scaled = pf[order] * m / np.arange(1, m + 1)
    adj = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    res = np.empty(m)
    res[order] = adj
    out[finite] = res
    return out


def e_benjamini_hochberg(e_values: ArrayLike, q: float = 0.05, *, axis: int = 0) -> np.ndarray:
    """e-BH: reject the k* largest e-values, k* = max{k : e_(k) >= m / (q k)}.

    Args:
        e_values: non-negative e-values, one per model along ``axis``.
        q: the false-discovery rate to control, in (0, 1).
        axis: the axis that runs over the hypotheses.

    Returns:
        A boolean array of the same shape, True for discoveries.
    """
    _check_q(q)
    e = np.moveaxis(np.asarray(e_values, dtype=float), axis, 0)
    finite = ~np.isnan(e)
    if np.any(e[finite] < 0):
        raise ParameterError("e_values must be non-negative")
    # e-BH is BH applied to the p-values 1/e (not themselves valid p-values, but the step-up is the same)
    with np.errstate(divide="ignore"):
        p = np.where(finite, np.minimum(1.0, 1.0 / e), np.nan)
    return np.moveaxis(benjamini_hochberg(p, q, axis=0), 0, axis)
