"""Always-valid inference: the asymptotic confidence sequence and its e-value.

The confidence sequence is the Gaussian-mixture one of Waudby-Smith et al. (2023), "Time-uniform
central limit theory and asymptotic confidence sequences" (arXiv:2103.06476, eq. 9 and the
tuning of eq. 161), the same as GrowthBook's gbstats 0.8.0 uses. With ``N`` the units seen so far
(both arms), ``se`` the fixed-horizon standard error of the estimate and ``rho²`` the mixture
variance chosen so that the sequence is tightest when ``N`` equals the tuning parameter, the
half-width is::

    se * sqrt( 2 (N rho² + 1) / (N rho²) * log( sqrt(N rho² + 1) / alpha ) )

Its e-value (eq. 155) is the mixture likelihood ratio at the current look::

    E = exp( rho² N z² / (2 (N rho² + 1)) ) / sqrt(N rho² + 1),   z = (estimate - null) / se

``E`` is (asymptotically) a non-negative supermartingale under the null, so its value at any
stopping time is an e-value and ``min(1, 1/E)`` is an always-valid p-value. These functions are
vectorised: every argument may be a scalar or an array, and they broadcast.
"""

from __future__ import annotations

import numpy as np
from scipy import special
from numpy.typing import ArrayLike

#: log of the largest e-value reported; exp(700) is still a finite float64, so JSON stays valid.
MAX_LOG_E_VALUE = 700.0


def mixture_rho2(alpha: ArrayLike, tuning: ArrayLike) -> np.ndarray:
    """The mixture variance rho² that makes the sequence tightest at ``N = tuning`` (eq. 161).

    Args:
        alpha: the sequence's error rate, in (0, 1).
        tuning: the total sample size (both arms) at which the width is optimised, > 0.

    Returns:
        rho², broadcast over the inputs.
    """
    alpha = np.asarray(alpha, dtype=float)
    m2la = -2.0 * np.log(alpha)
    return (m2la + np.log(m2la + 1.0)) / np.asarray(tuning, dtype=float)


def cs_multiplier(n_total: ArrayLike, alpha: ArrayLike, tuning: ArrayLike) -> np.ndarray:
    """How many fixed-horizon standard errors the always-valid half-width spans at ``n_total``.

    The fixed-horizon 95 % interval spans about 1.96; this one spans about 3.0 near the tuning
    size and grows like sqrt(log N) beyond it.
    """
    n = np.asarray(n_total, dtype=float)
    alpha = np.asarray(alpha, dtype=float)
    nr2 = n * mixture_rho2(alpha, tuning)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(2.0 * (nr2 + 1.0) / nr2 * np.log(np.sqrt(nr2 + 1.0) / alpha))


def cs_half_width(se: ArrayLike, n_total: ArrayLike, alpha: ArrayLike, tuning: ArrayLike) -> np.ndarray:
    """Half-width of the asymptotic confidence sequence for an estimate with standard error ``se``."""
    return np.asarray(se, dtype=float) * cs_multiplier(n_total, alpha, tuning)


def log_e_value(
    estimate: ArrayLike,
    se: ArrayLike,
    n_total: ArrayLike,
    alpha: ArrayLike,
    tuning: ArrayLike,
    null: ArrayLike = 0.0,
) -> np.ndarray:
    """Natural log of the mixture e-value against ``estimate == null`` (capped at 700)."""
    n = np.asarray(n_total, dtype=float)
    r2 = mixture_rho2(alpha, tuning)
    nr2p1 = n * r2 + 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z2 = ((np.asarray(estimate, dtype=float) - np.asarray(null, dtype=float)) / np.asarray(se, dtype=float)) ** 2
    out = r2 * n * z2 / (2.0 * nr2p1) - 0.5 * np.log(nr2p1)
    return np.minimum(out, MAX_LOG_E_VALUE)


def e_value(
    estimate: ArrayLike,
    se: ArrayLike,
    n_total: ArrayLike,
    alpha: ArrayLike,
    tuning: ArrayLike,
    null: ArrayLike = 0.0,
) -> np.ndarray:
    """The mixture e-value against ``estimate == null`` (see the module docstring)."""
    return np.exp(log_e_value(estimate, se, n_total, alpha, tuning, null))


def always_valid_p_value(
    estimate: ArrayLike,
    se: ArrayLike,
    n_total: ArrayLike,
    alpha: ArrayLike,
    tuning: ArrayLike,
    null: ArrayLike = 0.0,
) -> np.ndarray:
    """``min(1, 1/E)``: a p-value that stays valid however often it is looked at."""
    return np.minimum(1.0, np.exp(-log_e_value(estimate, se, n_total, alpha, tuning, null)))

#: Prior sd of the treatment share in the SRM mixture: sized for the shifts that matter (about
#: one percentage point); larger shifts are found faster, smaller ones are not worth a flag.
SRM_PRIOR_SD = 0.01
#: Days after launch at which a time-series model's money flags are decided.
TS_LOOKS = (30, 60, 90, 120, 150, 180)


def srm_log_e(n_treatment: ArrayLike, n_control: ArrayLike, share: ArrayLike,
              prior_sd: float = SRM_PRIOR_SD) -> np.ndarray:
    """Log of the beta-binomial mixture e-value against "the treatment share is ``share``".

    A Beta prior centred on the planned share with sd ``prior_sd`` mixes the alternatives; the
    ratio of its marginal likelihood to the null's is a test martingale under the planned split,
    exactly (no normal approximation), whatever the order in which units arrive.
    """
    k, m, p = _float(n_treatment), _float(n_control), _float(share)
    conc = p * (1.0 - p) / prior_sd**2 - 1.0
    a, b = p * conc, (1.0 - p) * conc
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (special.betaln(a + k, b + m) - special.betaln(a, b)
               - special.xlogy(k, p) - special.xlog1py(m, -p))
    return np.minimum(np.where(np.isfinite(out), out, 0.0), MAX_LOG_E_VALUE)


def ts_look(live_days: ArrayLike) -> np.ndarray:
    """The last scheduled look (days after launch) a time-series model has reached; 0 before the first."""
    looks = np.asarray(TS_LOOKS)
    idx = np.searchsorted(looks, _float(live_days), side="right")
    return np.where(idx > 0, looks[np.maximum(idx - 1, 0)], 0)


def _float(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)
