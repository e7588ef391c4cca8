"""A/B attribution on sufficient statistics: Welch, delta method, CUPED, sequential, SRM, Bayesian.

Everything here works on per-arm sums (``n, Σy, Σy²`` and, for CUPED, ``Σx, Σx², Σxy``) so that
the warehouse can do the scan and only aggregates travel. There is one implementation,
:func:`analyze_ab_batch`, vectorised over arrays of sufficient statistics (shape ``(models,)`` or
``(models, days)``); :func:`analyze_ab` is a thin view of it for one comparison and returns a
frozen :class:`ABResult`.

By default the numbers match GrowthBook's gbstats 0.8.0 (two-sided Welch t test, delta-method
relative effect, pooled-θ CUPED, the asymptotic confidence sequence, the χ² SRM check). We depart
from it on purpose in one formula: the variance of the *relative* CUPED effect, where we take the
full delta method (gbstats drops the covariance between the adjusted difference and the
unadjusted control mean it is divided by). ``ABConfig(gbstats_compat=True)`` reproduces gbstats
exactly, including its refusal of an arm with zero variance. docs/methods-ab.md explains both.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special

from valuetrack.attribution import sequential as _seq
from valuetrack.errors import ParameterError, ValidationError
from valuetrack.jsonsafe import num
from valuetrack.formatting import p_value

__all__ = [
    "ArmStats",
    "RatioArmStats",
    "ABConfig",
    "ABResult",
    "analyze_ab",
    "analyze_ab_batch",
    "batch_to_frame",
    "srm_test",
    "attribute_frame",
    "check_covariate_window",
    "benjamini_hochberg",
    "e_benjamini_hochberg",
    "e_value",
]

METRICS = ("mean", "proportion", "ratio")

# Reasons a result is not trusted (the first that applies wins). Kept as constants so that
# callers can match on them and the batch path can assign them without formatting per cell.
REASON_EMPTY_CONTROL = "empty arm: the control arm has no units"
REASON_EMPTY_TREATMENT = "empty arm: the treatment arm has no units"
REASON_N_LT_2 = "fewer than 2 units in an arm: a variance needs at least 2 (n < 2)"
REASON_RATIO_DEN_ZERO = "the ratio's denominator sums to 0 in an arm, so the ratio is undefined"
REASON_ZERO_VARIANCE = "zero variance in both arms: every unit has the same value, nothing to test"
REASON_ZERO_VARIANCE_COMPAT = (
    "zero variance in one arm: refused under gbstats_compat, as gbstats does"
)
REASON_SRM = (
    "sample ratio mismatch: the split of units between arms differs from the planned treatment "
    "share (chi-squared p < srm_alpha); assignment or logging is broken, do not trust the effect"
)

NOTE_ONE_ARM_ZERO_VAR = "one arm has zero variance: the interval rests on the other arm alone"
NOTE_ZERO_BASE = "control mean is 0: the relative effect is undefined"
NOTE_THETA_ZERO = "CUPED covariate (or outcome) has no variance: no adjustment was made"
NOTE_PRIOR_NO_BASE = "a relative prior cannot be scaled to the metric when the control mean is 0"

_REASON_TABLE = np.array(
    [None, REASON_EMPTY_CONTROL, REASON_EMPTY_TREATMENT, REASON_N_LT_2, REASON_RATIO_DEN_ZERO,
     REASON_ZERO_VARIANCE, REASON_ZERO_VARIANCE_COMPAT, REASON_SRM],
    dtype=object,
)
_NOTES = (NOTE_ONE_ARM_ZERO_VAR, NOTE_ZERO_BASE, NOTE_THETA_ZERO, NOTE_PRIOR_NO_BASE)
_NOTE_TABLE = np.array(
    ["; ".join(n for i, n in enumerate(_NOTES) if bits >> i & 1) or None for bits in range(256)],
    dtype=object,
)


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmStats:
    """Sufficient statistics of one arm for a mean or proportion metric.

    Every field may be a scalar or an array (all arrays of one call broadcast together). Sums add
    exactly across days and segments, so ``a + b`` is the arm over both.

    Attributes:
        n: number of units in the arm.
        sum_y: Σy, the sum of the per-unit outcome.
        sum_y2: Σy², the sum of squared outcomes (for a 0/1 metric equal to ``sum_y``).
        sum_x: Σx of the CUPED pre-period covariate, or None without CUPED.
        sum_x2: Σx² of the covariate, or None.
        sum_xy: Σxy, the sum of the per-unit product of outcome and covariate, or None.
    """

    n: Any
    sum_y: Any
    sum_y2: Any
    sum_x: Any = None
    sum_x2: Any = None
    sum_xy: Any = None

    @property
    def has_covariate(self) -> bool:
        """True when all three covariate sums are present."""
        return self.sum_x is not None and self.sum_x2 is not None and self.sum_xy is not None

    @classmethod
    def from_values(cls, y: ArrayLike, x: ArrayLike | None = None) -> "ArmStats":
        """Sufficient statistics of unit-level outcomes ``y`` (and covariate ``x``)."""
        y = np.asarray(y, dtype=float)
        if x is None:
            return cls(n=y.size, sum_y=float(y.sum()), sum_y2=float((y * y).sum()))
        x = np.asarray(x, dtype=float)
        if x.shape != y.shape:
            raise ParameterError(f"x must have the shape of y {y.shape}; got {x.shape}")
        return cls(
            n=y.size,
            sum_y=float(y.sum()),
            sum_y2=float((y * y).sum()),
            sum_x=float(x.sum()),
            sum_x2=float((x * x).sum()),
            sum_xy=float((x * y).sum()),
        )

    def __add__(self, other: "ArmStats") -> "ArmStats":
        if not isinstance(other, ArmStats):
            return NotImplemented
        def add(a: Any, b: Any) -> Any:
            return None if a is None or b is None else np.add(a, b)
        return ArmStats(*(add(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)))


@dataclass(frozen=True)
class RatioArmStats:
    """Sufficient statistics of one arm for a ratio metric (Σ numerator / Σ denominator per unit).

    The unit of randomisation is the unit (e.g. a customer); the ratio is e.g. revenue per
    session, with numerator and denominator summed per unit. Fields may be arrays.

    Attributes:
        n: number of units.
        sum_num: Σ numerator.
        sum_num2: Σ numerator².
        sum_den: Σ denominator.
        sum_den2: Σ denominator².
        sum_num_den: Σ numerator × denominator.
    """

    n: Any
    sum_num: Any
    sum_num2: Any
    sum_den: Any
    sum_den2: Any
    sum_num_den: Any

    @classmethod
    def from_values(cls, num: ArrayLike, den: ArrayLike) -> "RatioArmStats":
        """Sufficient statistics of unit-level numerators and denominators."""
        a = np.asarray(num, dtype=float)
        b = np.asarray(den, dtype=float)
        if a.shape != b.shape:
            raise ParameterError(f"den must have the shape of num {a.shape}; got {b.shape}")
        return cls(a.size, float(a.sum()), float((a * a).sum()), float(b.sum()), float((b * b).sum()), float((a * b).sum()))

    def __add__(self, other: "RatioArmStats") -> "RatioArmStats":
        if not isinstance(other, RatioArmStats):
            return NotImplemented
        return RatioArmStats(*(np.add(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)))


def check_covariate_window(
    covariate_start: _dt.date | _dt.datetime,
    covariate_end: _dt.date | _dt.datetime,
    exposure_start: _dt.date | _dt.datetime,
) -> None:
    """Refuse a CUPED covariate window that overlaps exposure.

    The covariate must be measured before the unit could be affected by the model, or CUPED
    subtracts part of the effect. Windows are half-open: ``[covariate_start, covariate_end)``.

    Raises:
        ParameterError: the window is empty or ends after ``exposure_start``.
    """
    if covariate_end <= covariate_start:
        raise ParameterError(
            f"covariate_window: must end after it starts; got [{covariate_start}, {covariate_end})"
        )
    if covariate_end > exposure_start:
        raise ParameterError(
            f"covariate_window: ends {covariate_end}, after exposure starts {exposure_start}; "
            "the CUPED covariate must be measured wholly before exposure (end <= exposure start)"
        )


@dataclass(frozen=True)
class ABConfig:
    """How to analyse an A/B comparison.

    Attributes:
        metric: "mean" (any numeric per-unit outcome), "proportion" (0/1 outcome, variance
            p(1−p)) or "ratio" (per-unit numerator over denominator, delta method).
        alpha: two-sided error rate of every interval and test, in (0, 1).
        cuped: adjust with the pre-period covariate in the arms' ``sum_x, sum_x2, sum_xy``.
        sequential_tuning: total sample size (both arms) at which the confidence sequence is
            tightest (gbstats' ``sequential_tuning_parameter``), > 0.
        planned_treatment_share: planned share of units in the treatment arm, in (0, 1); the SRM
            check tests the observed split against it.
        srm_alpha: the SRM alarm level, in (0, 1); 0.001 so that daily checks over many models do
            not cry wolf every day.
        prior_mean: mean of the Gaussian prior on the effect (on ``prior_scale``).
        prior_sd: standard deviation of the prior, > 0, or None for a flat (improper) prior.
        prior_scale: "relative" (the prior is on the relative effect, rescaled by the control mean
            as gbstats does) or "absolute" (in metric units per unit).
        higher_is_better: direction of the KPI; sets which way ``expected_loss`` counts.
        gbstats_compat: reproduce gbstats 0.8.0 exactly (the relative CUPED variance without the
            covariance term; an arm with zero variance refused).
        covariate_window: optional ``(start, end)`` of the CUPED covariate (half-open); checked
            against ``exposure_start`` by :func:`check_covariate_window`.
        exposure_start: when exposure to the model began (needed with ``covariate_window``).
    """

    metric: str = "mean"
    alpha: float = 0.05
    cuped: bool = False
    sequential_tuning: float = 5000.0
    planned_treatment_share: float = 0.5
    srm_alpha: float = 0.001
    prior_mean: float = 0.0
    prior_sd: float | None = None
    prior_scale: str = "relative"
    higher_is_better: bool = True
    gbstats_compat: bool = False
    covariate_window: tuple[Any, Any] | None = None
    exposure_start: Any = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ParameterError(f"metric must be one of {', '.join(METRICS)}; got {self.metric!r}")
        _open_unit("alpha", self.alpha)
        _open_unit("planned_treatment_share", self.planned_treatment_share)
        _open_unit("srm_alpha", self.srm_alpha)
        if not _finite_number(self.sequential_tuning) or self.sequential_tuning <= 0:
            raise ParameterError(f"sequential_tuning must be > 0; got {self.sequential_tuning!r}")
        if not _finite_number(self.prior_mean):
            raise ParameterError(f"prior_mean must be a finite number; got {self.prior_mean!r}")
        if self.prior_sd is not None and (not _finite_number(self.prior_sd) or self.prior_sd <= 0):
            raise ParameterError(f"prior_sd must be > 0 (or None for a flat prior); got {self.prior_sd!r}")
        if self.prior_scale not in ("relative", "absolute"):
            raise ParameterError(f"prior_scale must be 'relative' or 'absolute'; got {self.prior_scale!r}")
        if self.cuped and self.metric == "ratio":
            raise ParameterError("cuped: not available for metric='ratio'; use 'mean' or 'proportion'")
        if self.covariate_window is not None:
            if self.exposure_start is None:
                raise ParameterError("exposure_start: required when covariate_window is given")
            start, end = self.covariate_window
            check_covariate_window(start, end, self.exposure_start)

    @property
    def prior(self) -> dict:
        """The prior, stated: ``{"type": "flat"}`` or a normal with mean, sd and scale."""
        if self.prior_sd is None:
            return {"type": "flat"}
        return {"type": "normal", "mean": float(self.prior_mean), "sd": float(self.prior_sd), "scale": self.prior_scale}


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def _open_unit(name: str, v: Any) -> None:
    if not _finite_number(v) or not (0.0 < float(v) < 1.0):
        raise ParameterError(f"{name} must be in (0, 1); got {v!r}")


# --------------------------------------------------------------------------------------------
# the vectorised engine
# --------------------------------------------------------------------------------------------


def srm_test(n_control: ArrayLike, n_treatment: ArrayLike, planned_treatment_share: ArrayLike = 0.5) -> np.ndarray:
    """Sample-ratio-mismatch χ² test (1 degree of freedom) against the planned split.

    Args:
        n_control: units in the control arm (scalar or array).
        n_treatment: units in the treatment arm.
        planned_treatment_share: planned share of units in treatment, in (0, 1).

    Returns:
        The p-value (1.0 when there are no units at all, as gbstats returns); a 0-d array for
        scalar input. Alarm when it is below ``srm_alpha`` (0.001 by default).
    """
    share = np.asarray(planned_treatment_share, dtype=float)
    if np.any(~((share > 0) & (share < 1))):
        raise ParameterError(f"planned_treatment_share must be in (0, 1); got {planned_treatment_share!r}")
    nc = np.asarray(n_control, dtype=float)
    nt = np.asarray(n_treatment, dtype=float)
    if np.any(nc < 0) or np.any(nt < 0):
        raise ParameterError("n_control and n_treatment must be >= 0")
    total = nc + nt
    with np.errstate(divide="ignore", invalid="ignore"):
        et = share * total
        ec = (1.0 - share) * total
        chi2 = (nt - et) ** 2 / et + (nc - ec) ** 2 / ec
        p = special.erfc(np.sqrt(0.5 * chi2))  # chi-squared(1) upper tail, exactly
    return np.where(total > 0, p, 1.0)


def _arr(v: Any, name: str) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    if not np.all(np.isfinite(a)):
        raise ParameterError(f"{name}: sufficient statistics must be finite numbers")
    return a


def _check_arm(arm: Any, side: str, config: ABConfig) -> dict[str, np.ndarray]:
    if config.metric == "ratio":
        if not isinstance(arm, RatioArmStats):
            raise ParameterError(f"{side}: metric='ratio' needs RatioArmStats; got {type(arm).__name__}")
        names = ("n", "sum_num", "sum_num2", "sum_den", "sum_den2", "sum_num_den")
    else:
        if not isinstance(arm, ArmStats):
            raise ParameterError(f"{side}: metric={config.metric!r} needs ArmStats; got {type(arm).__name__}")
        names = ("n", "sum_y", "sum_y2")
        if config.cuped:
            if not arm.has_covariate:
                raise ParameterError(f"{side}: cuped=True needs sum_x, sum_x2 and sum_xy on both arms")
            names += ("sum_x", "sum_x2", "sum_xy")
    out = {k: _arr(getattr(arm, k), f"{side}.{k}") for k in names}
    n = out["n"]
    if np.any(n < 0) or np.any(n != np.round(n)):
        raise ParameterError(f"{side}.n must be a whole number >= 0")
    for k in names:
        if k.endswith("2") and np.any(out[k] < 0):
            raise ParameterError(f"{side}.{k} is a sum of squares and must be >= 0")
    if config.metric == "proportion" and np.any((out["sum_y"] < 0) | (out["sum_y"] > n)):
        raise ParameterError(f"{side}.sum_y must be in [0, n] for a proportion (0/1) metric")
    return out


def _sample_var(n: np.ndarray, s: np.ndarray, s2: np.ndarray) -> np.ndarray:
    # n-1 denominator; rounding can push a true 0 slightly negative, so clip
    return np.maximum((s2 - s * s / n) / (n - 1.0), 0.0)


def _sample_cov(n: np.ndarray, sa: np.ndarray, sb: np.ndarray, sab: np.ndarray) -> np.ndarray:
    return (sab - sa * sb / n) / (n - 1.0)


def _moments(a: dict[str, np.ndarray], metric: str) -> dict[str, np.ndarray]:
    """Per-arm mean and per-unit variance of the metric (before any CUPED adjustment)."""
    n = a["n"]
    if metric == "ratio":
        mn, md = a["sum_num"] / n, a["sum_den"] / n
        vn = _sample_var(n, a["sum_num"], a["sum_num2"])
        vd = _sample_var(n, a["sum_den"], a["sum_den2"])
        c = _sample_cov(n, a["sum_num"], a["sum_den"], a["sum_num_den"])
        var = vn / md**2 - 2.0 * c * mn / md**3 + mn**2 * vd / md**4
        return {"mean": a["sum_num"] / a["sum_den"], "var": np.maximum(var, 0.0)}
    m = a["sum_y"] / n
    var = m * (1.0 - m) if metric == "proportion" else _sample_var(n, a["sum_y"], a["sum_y2"])
    return {"mean": m, "var": np.maximum(var, 0.0)}


def _pooled_theta(c: dict[str, np.ndarray], t: dict[str, np.ndarray], metric: str) -> np.ndarray:
    """θ = Cov(y, x) / Var(x) over both arms pooled (about the grand means), 0 when undefined."""
    n = c["n"] + t["n"]
    sy, sx = c["sum_y"] + t["sum_y"], c["sum_x"] + t["sum_x"]
    if metric == "proportion":
        p = sy / n
        vy = p * (1.0 - p)
    else:
        vy = _sample_var(n, sy, c["sum_y2"] + t["sum_y2"])
    vx = _sample_var(n, sx, c["sum_x2"] + t["sum_x2"])
    cov = _sample_cov(n, sy, sx, c["sum_xy"] + t["sum_xy"])
    ok = (vx > 0) & (vy > 0) & (n > 1)
    return np.where(ok, cov / np.where(ok, vx, 1.0), 0.0)


def _t_quantile(dof: np.ndarray, q: float) -> np.ndarray:
    """Student-t quantile; for dof >= 1000 by its Cornish–Fisher series (error < 1e-13 there), as
    ``stdtrit`` dominates the batch run time on (models, days) arrays."""
    dof = np.asarray(dof, dtype=float)
    big = dof >= 1000.0
    if not big.any():
        return special.stdtrit(dof, q)
    z = special.ndtri(q)
    z2 = z * z
    g1 = (z2 + 1.0) * z / 4.0
    g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0
    g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0
    g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0
    with np.errstate(divide="ignore", invalid="ignore"):
        v = 1.0 / dof
        approx = z + v * (g1 + v * (g2 + v * (g3 + v * g4)))
    if big.all():
        return approx
    out = approx.copy()
    small = ~big
    out[small] = special.stdtrit(dof[small], q)
    return out


def _t_two_sided(t_abs: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """Two-sided Student-t p-value ``2 P(T > |t|)``.

    Where ``dof >= 1000`` and ``|t|^11 < 1e-9 dof^5`` the equivalent normal deviate is taken from
    the inverted Cornish–Fisher series (four terms in 1/dof) and the tail from ``erfc``; relative
    error below 1e-8 against ``stdtr`` there, and four times faster on (models, days) arrays.
    """
    t = np.abs(np.asarray(t_abs, dtype=float))
    dof = np.broadcast_to(np.asarray(dof, dtype=float), t.shape)
    v = 1.0 / dof
    t2 = t * t
    h1 = -(t2 + 1.0) * t / 4.0
    h2 = ((13.0 * t2 + 8.0) * t2 + 3.0) * t / 96.0
    h3 = (((-35.0 * t2 - 19.0) * t2 - 1.0) * t2 + 15.0) * t / 384.0
    h4 = ((((6271.0 * t2 + 4836.0) * t2 - 153.0) * t2 - 2520.0) * t2 - 945.0) * t / 92160.0
    z = t + v * (h1 + v * (h2 + v * (h3 + v * h4)))
    ok = (dof >= 1000.0) & (t2**5 * t < 1e-9 * dof**5)
    out = special.erfc(z / math.sqrt(2.0))
    slow = ~ok
    if slow.any():
        out = np.where(ok, out, 2.0 * special.stdtr(np.where(slow, dof, 1.0), -np.where(slow, t, 0.0)))
    return out


def _core(c: dict[str, np.ndarray], t: dict[str, np.ndarray], config: ABConfig, share: np.ndarray, cuped: bool) -> dict[str, Any]:
    shape = np.broadcast_shapes(*(v.shape for v in (*c.values(), *t.values(), share)))
    c = {k: np.broadcast_to(v, shape) for k, v in c.items()}
    t = {k: np.broadcast_to(v, shape) for k, v in t.items()}
    na, nb = c["n"], t["n"]
    metric = config.metric
    alpha = config.alpha
    mc, mt = _moments(c, metric), _moments(t, metric)
    base = mc["mean"]  # unadjusted control mean: the denominator of every relative effect
    mean_t_unadj = mt["mean"]
    va, vb = mc["var"], mt["var"]
    theta = np.zeros(shape)
    if cuped:
        theta = _pooled_theta(c, t, metric)
        mxa, mxb = c["sum_x"] / na, t["sum_x"] / nb
        vxa = _sample_var(na, c["sum_x"], c["sum_x2"])
        vxb = _sample_var(nb, t["sum_x"], t["sum_x2"])
        cxa = _sample_cov(na, c["sum_y"], c["sum_x"], c["sum_xy"])
        cxb = _sample_cov(nb, t["sum_y"], t["sum_x"], t["sum_xy"])
        adj_a, adj_b = base - theta * mxa, mean_t_unadj - theta * mxb
        vya, vyb = va, vb
        va = np.maximum(vya + theta**2 * vxa - 2.0 * theta * cxa, 0.0)
        vb = np.maximum(vyb + theta**2 * vxb - 2.0 * theta * cxb, 0.0)
    else:
        adj_a, adj_b = base, mean_t_unadj

    effect = adj_b - adj_a
    ua, ub = va / na, vb / nb
    var_abs = ua + ub
    se = np.sqrt(var_abs)
    dof = var_abs**2 / (ua**2 / (na - 1.0) + ub**2 / (nb - 1.0))

    effect_rel = effect / base
    if cuped and not config.gbstats_compat:
        # full delta method for (adj_b - adj_a) / ybar_a: ybar_a appears in numerator and denominator
        num = effect + base
        ctrl = (num**2 * vya + theta**2 * base**2 * vxa - 2.0 * num * theta * base * cxa) / (base**4 * na)
        var_rel = vb / (base**2 * nb) + np.maximum(ctrl, 0.0)
    else:
        # gbstats' form; for an unadjusted metric it is the exact delta method of ybar_b / ybar_a
        var_rel = vb / (base**2 * nb) + va * mean_t_unadj**2 / (base**4 * na)
    se_rel = np.sqrt(var_rel)

    # --- why not (first reason wins), and non-fatal notes --------------------------------
    # integer codes, turned into strings once by table lookup (fast on (models, days) arrays)
    reason_code = np.zeros(shape, dtype=np.int8)

    def flag(mask: np.ndarray, code: int) -> None:
        np.copyto(reason_code, code, where=mask & (reason_code == 0))

    flag(na == 0, 1)
    flag(nb == 0, 2)
    flag((na < 2) | (nb < 2), 3)
    if metric == "ratio":
        flag((c["sum_den"] == 0) | (t["sum_den"] == 0), 4)
    flag((va <= 0) & (vb <= 0), 5)
    if config.gbstats_compat:
        flag((va <= 0) | (vb <= 0), 6)
    degenerate = reason_code != 0
    srm_p = srm_test(na, nb, share)
    srm_alarm = srm_p < config.srm_alpha

    note_bits = np.zeros(shape, dtype=np.uint8)

    def add_note(mask: np.ndarray, bit: int) -> None:
        note_bits[...] |= (mask & ~degenerate).astype(np.uint8) << bit

    add_note((va <= 0) | (vb <= 0), 0)
    add_note(base == 0, 1)
    if cuped:
        add_note(theta == 0, 2)

    good = ~degenerate
    good_rel = good & (base != 0) & np.isfinite(se_rel)

    def keep(x: np.ndarray, mask: np.ndarray = good) -> np.ndarray:
        return np.where(mask, x, np.nan)

    effect, se, dof = keep(effect), keep(se), keep(dof)
    effect_rel, se_rel = keep(effect_rel, good_rel), keep(se_rel, good_rel)
    tq = _t_quantile(dof, 1.0 - alpha / 2.0)
    n_total = na + nb
    csm = _seq.cs_multiplier(n_total, alpha, config.sequential_tuning)

    def interval(est: np.ndarray, half: np.ndarray) -> np.ndarray:
        return np.stack([est - half, est + half], axis=-1)

    def two_sided(est: np.ndarray, s: np.ndarray) -> np.ndarray:
        return _t_two_sided(est / s, dof)

    log_e = _seq.log_e_value(effect, se, n_total, alpha, config.sequential_tuning)
    log_e_rel = _seq.log_e_value(effect_rel, se_rel, n_total, alpha, config.sequential_tuning)

    # --- Bayesian view on the absolute effect: normal likelihood x normal (or flat) prior ------
    if config.prior_sd is None:
        post_mean, post_sd = effect, se
    else:
        if config.prior_scale == "relative":
            pm, psd = config.prior_mean * np.abs(base), config.prior_sd * np.abs(base)
            bad_prior = base == 0
            add_note(bad_prior, 3)
        else:
            pm, psd = np.full(shape, config.prior_mean), np.full(shape, config.prior_sd)
            bad_prior = np.zeros(shape, dtype=bool)
        prec = 1.0 / se**2 + 1.0 / psd**2
        post_mean = np.where(bad_prior, np.nan, (effect / se**2 + pm / psd**2) / prec)
        post_sd = np.where(bad_prior, np.nan, np.sqrt(1.0 / prec))
    prob_positive = special.ndtr(post_mean / post_sd)
    signed = post_mean if config.higher_is_better else -post_mean
    zz = signed / post_sd
    # E[max(0, -delta)] for delta ~ N(mu, sd^2): sd*phi(mu/sd) - mu*Phi(-mu/sd)
    expected_loss = np.maximum(post_sd * np.exp(-0.5 * zz**2) / math.sqrt(2.0 * math.pi) - signed * special.ndtr(-zz), 0.0)

    untrusted = degenerate | srm_alarm
    np.copyto(reason_code, 7, where=~degenerate & srm_alarm)
    reason = _REASON_TABLE[reason_code]
    note = _NOTE_TABLE[note_bits]

    out: dict[str, Any] = {
        "method": "ab",
        "metric": metric,
        "cuped": bool(cuped),
        "alpha": float(alpha),
        "trusted": ~untrusted,
        "reason": reason,
        "note": note,
        "n_control": na.astype(np.int64),
        "n_treatment": nb.astype(np.int64),
        "mean_control": np.where(na > 0, base, np.nan),
        "mean_treatment": np.where(nb > 0, mean_t_unadj, np.nan),
        "effect_abs": effect,
        "se_abs": se,
        "ci_abs": interval(effect, tq * se),
        "cs_abs": interval(effect, csm * se),
        "p_value": two_sided(effect, se),
        "p_value_seq": np.minimum(1.0, np.exp(-log_e)),
        "e_value": np.exp(log_e),
        "effect_rel": effect_rel,
        "se_rel": se_rel,
        "ci_rel": interval(effect_rel, tq * se_rel),
        "cs_rel": interval(effect_rel, csm * se_rel),
        "p_value_rel": two_sided(effect_rel, se_rel),
        "p_value_seq_rel": np.minimum(1.0, np.exp(-log_e_rel)),
        "e_value_rel": np.exp(log_e_rel),
        "dof": dof,
        "srm_p_value": srm_p,
        "srm_alarm": srm_alarm,
        "theta": keep(theta) if cuped else None,
        "posterior_mean": post_mean,
        "posterior_sd": post_sd,
        "prob_positive": prob_positive,
        "expected_loss": expected_loss,
        "prior": config.prior,
        "sequential_tuning": float(config.sequential_tuning),
        "gbstats_compat": bool(config.gbstats_compat),
    }
    return out


def analyze_ab_batch(
    control: ArmStats | RatioArmStats,
    treatment: ArmStats | RatioArmStats,
    config: ABConfig | None = None,
    *,
    planned_treatment_share: ArrayLike | None = None,
    as_frame: bool = False,
) -> dict[str, Any] | pd.DataFrame:
    """Analyse many comparisons at once: arrays of sufficient statistics in, arrays out.

    Args:
        control: the control arm's sums; each field a scalar or an array (e.g. shape
            ``(models,)`` or ``(models, days)`` of cumulative sums). Arrays broadcast.
        treatment: the treatment arm's sums, same kind as ``control``.
        config: the analysis settings (defaults: mean metric, alpha 0.05, no CUPED).
        planned_treatment_share: per-comparison planned treatment share for the SRM check,
            overriding ``config.planned_treatment_share`` (arrays broadcast).
        as_frame: return :func:`batch_to_frame` of the result instead of the dict.

    Returns:
        A dict with the field names of :class:`ABResult`. Array fields have the broadcast shape
        of the inputs; intervals (``ci_*``, ``cs_*``) have a trailing axis of 2 (lower, upper).
        Scalar settings (``method``, ``metric``, ``cuped``, ``alpha``, ``prior``,
        ``sequential_tuning``, ``gbstats_compat``) are plain values. Undefined numbers are NaN,
        and ``reason`` (why not trusted) or ``note`` (non-fatal) says why. With CUPED,
        ``unadjusted`` holds the same dict computed without the covariate; otherwise it is None.

    Raises:
        ParameterError: statistics of the wrong kind, non-finite, negative counts, or CUPED
            without covariate sums.
    """
    config = config or ABConfig()
    c = _check_arm(control, "control", config)
    t = _check_arm(treatment, "treatment", config)
    share = np.asarray(config.planned_treatment_share if planned_treatment_share is None else planned_treatment_share, dtype=float)
    if np.any(~((share > 0) & (share < 1))):
        raise ParameterError(f"planned_treatment_share must be in (0, 1); got {planned_treatment_share!r}")
    with np.errstate(all="ignore"):
        out = _core(c, t, config, share, config.cuped)
        if config.cuped:
            unadj = _core(c, t, config, share, False)
            unadj["unadjusted"] = None
            out["unadjusted"] = unadj
            base_var = unadj["se_abs"] ** 2
            out["variance_reduction"] = 1.0 - out["se_abs"] ** 2 / base_var
        else:
            out["unadjusted"] = None
            out["variance_reduction"] = None
    return batch_to_frame(out) if as_frame else out


_SCALAR_KEYS = ("method", "metric", "cuped", "alpha", "prior", "sequential_tuning", "gbstats_compat")
_INTERVAL_KEYS = ("ci_abs", "cs_abs", "ci_rel", "cs_rel")


def batch_to_frame(batch: Mapping[str, Any]) -> pd.DataFrame:
    """Flatten a batch result into a DataFrame: one row per comparison (per model, per day).

    Intervals become ``<name>_lo`` / ``<name>_hi`` columns and the unadjusted result
    ``unadjusted_<name>`` columns. For 2-D inputs the index is (model, day) positions.
    """
    shape = np.shape(batch["effect_abs"])
    size = int(np.prod(shape)) if shape else 1
    cols: dict[str, Any] = {}

    def put(prefix: str, b: Mapping[str, Any]) -> None:
        for key, val in b.items():
            if key == "unadjusted" or val is None:
                continue
            name = prefix + key
            if key in _INTERVAL_KEYS:
                arr = np.asarray(val).reshape(size, 2)
                cols[name + "_lo"], cols[name + "_hi"] = arr[:, 0], arr[:, 1]
            elif key == "prior":
                cols[name] = [_prior_text(val)] * size
            elif key in _SCALAR_KEYS:
                cols[name] = [val] * size
            else:
                cols[name] = np.asarray(val).reshape(size)

    put("", batch)
    if batch.get("unadjusted") is not None:
        put("unadjusted_", {k: v for k, v in batch["unadjusted"].items() if k not in _SCALAR_KEYS})
    if len(shape) <= 1:
        index = pd.RangeIndex(size, name="model")
    else:
        index = pd.MultiIndex.from_product([range(s) for s in shape], names=["model", "day", *[f"axis{i}" for i in range(2, len(shape))]])
    return pd.DataFrame(cols, index=index)


def _prior_text(prior: Mapping[str, Any]) -> str:
    if prior["type"] == "flat":
        return "flat"
    return f"normal(mean={prior['mean']}, sd={prior['sd']}, scale={prior['scale']})"


# --------------------------------------------------------------------------------------------
# one comparison: the frozen result
# --------------------------------------------------------------------------------------------


def _iv(v: Any) -> tuple[float, float] | None:
    lo, hi = num(v[0]), num(v[1])
    return None if lo is None or hi is None else (lo, hi)


@dataclass(frozen=True)
class ABResult:
    """The result of one A/B comparison (all numbers are per unit of randomisation).

    Undefined numbers are None, never NaN; ``reason`` or ``note`` says why.

    Attributes:
        method: always "ab".
        metric: "mean", "proportion" or "ratio".
        cuped: whether the effect is CUPED-adjusted (then ``unadjusted`` holds the plain one).
        alpha: the two-sided error rate of every interval and test.
        trusted: False when the inputs are degenerate or the SRM check failed.
        reason: why the result is not trusted, or None.
        note: non-fatal remarks (e.g. relative effect undefined, no CUPED adjustment), or None.
        n_control: units in the control arm.
        n_treatment: units in the treatment arm.
        mean_control: the control arm's (unadjusted) mean of the metric.
        mean_treatment: the treatment arm's (unadjusted) mean of the metric.
        effect_abs: treatment minus control, in metric units per unit (CUPED-adjusted if cuped).
        se_abs: standard error of ``effect_abs``.
        ci_abs: fixed-horizon (1 − alpha) interval of ``effect_abs`` (Welch t).
        cs_abs: always-valid (1 − alpha) confidence sequence of ``effect_abs``.
        p_value: two-sided fixed-horizon p-value of ``effect_abs`` (Welch t).
        p_value_seq: always-valid p-value of ``effect_abs`` (``min(1, 1/e_value)``).
        e_value: the confidence sequence's e-value against no effect (capped at e^700).
        effect_rel: ``effect_abs`` divided by the unadjusted control mean (0.05 = +5 %).
        se_rel: delta-method standard error of ``effect_rel``.
        ci_rel: fixed-horizon interval of ``effect_rel``.
        cs_rel: always-valid confidence sequence of ``effect_rel``.
        p_value_rel: two-sided fixed-horizon p-value of ``effect_rel``.
        p_value_seq_rel: always-valid p-value of ``effect_rel``.
        e_value_rel: e-value of ``effect_rel`` against 0.
        dof: Welch–Satterthwaite degrees of freedom.
        srm_p_value: χ² p-value of the observed split against the planned treatment share.
        srm_alarm: ``srm_p_value < srm_alpha``.
        theta: the pooled CUPED coefficient, or None without CUPED.
        variance_reduction: 1 − Var(CUPED effect)/Var(unadjusted effect), or None.
        posterior_mean: posterior mean of ``effect_abs`` under ``prior`` (``effect_abs`` when flat).
        posterior_sd: posterior sd of ``effect_abs`` under ``prior`` (``se_abs`` when flat).
        prob_positive: posterior P(effect_abs > 0) under ``prior``.
        expected_loss: posterior E[max(0, −effect)] (or E[max(0, effect)] when lower is better):
            what shipping the model costs per unit, on average, if it is in fact worse.
        prior: the prior, stated: {"type": "flat"} or {"type": "normal", "mean", "sd", "scale"}.
        sequential_tuning: the confidence sequence's tuning parameter.
        gbstats_compat: whether gbstats' exact formulas were used.
        unadjusted: the same result without CUPED (with ``cuped`` False), or None.
    """

    method: str
    metric: str
    cuped: bool
    alpha: float
    trusted: bool
    reason: str | None
    note: str | None
    n_control: int
    n_treatment: int
    mean_control: float | None
    mean_treatment: float | None
    effect_abs: float | None
    se_abs: float | None
    ci_abs: tuple[float, float] | None
    cs_abs: tuple[float, float] | None
    p_value: float | None
    p_value_seq: float | None
    e_value: float | None
    effect_rel: float | None
    se_rel: float | None
    ci_rel: tuple[float, float] | None
    cs_rel: tuple[float, float] | None
    p_value_rel: float | None
    p_value_seq_rel: float | None
    e_value_rel: float | None
    dof: float | None
    srm_p_value: float | None
    srm_alarm: bool
    theta: float | None
    variance_reduction: float | None
    posterior_mean: float | None
    posterior_sd: float | None
    prob_positive: float | None
    expected_loss: float | None
    prior: dict = field(default_factory=lambda: {"type": "flat"})
    sequential_tuning: float = 5000.0
    gbstats_compat: bool = False
    unadjusted: "ABResult | None" = None

    @classmethod
    def _from_batch(cls, b: Mapping[str, Any], i: int = 0) -> "ABResult":
        kw: dict[str, Any] = {}
        for f_ in fields(cls):
            key = f_.name
            val = b.get(key)
            if key == "unadjusted":
                kw[key] = None if val is None else cls._from_batch(val, i)
            elif key in ("method", "metric", "prior"):
                kw[key] = val
            elif key in ("cuped", "gbstats_compat"):
                kw[key] = bool(val)
            elif key in ("alpha", "sequential_tuning"):
                kw[key] = float(val)
            elif key in ("reason", "note"):
                kw[key] = np.asarray(val, dtype=object).reshape(-1)[i]
            elif key in ("trusted", "srm_alarm"):
                kw[key] = bool(np.asarray(val).reshape(-1)[i])
            elif key in ("n_control", "n_treatment"):
                kw[key] = int(np.asarray(val).reshape(-1)[i])
            elif key in _INTERVAL_KEYS:
                kw[key] = _iv(np.asarray(val).reshape(-1, 2)[i])
            elif val is None:
                kw[key] = None
            else:
                kw[key] = num(np.asarray(val).reshape(-1)[i])
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the field names of DESIGN.md (intervals as [lo, hi], null for None)."""
        out: dict[str, Any] = {}
        for f_ in fields(self):
            v = getattr(self, f_.name)
            if f_.name == "unadjusted":
                out["unadjusted"] = None if v is None else v.to_dict()
            elif isinstance(v, tuple):
                out[f_.name] = list(v)
            elif isinstance(v, dict):
                out[f_.name] = dict(v)
            else:
                out[f_.name] = v
        return out

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame; intervals as ``_lo``/``_hi`` columns, ``unadjusted_*`` beside."""
        row: dict[str, Any] = {}

        def put(prefix: str, r: "ABResult") -> None:
            for f_ in fields(r):
                v = getattr(r, f_.name)
                if f_.name == "unadjusted":
                    continue
                if f_.name in _INTERVAL_KEYS:
                    row[prefix + f_.name + "_lo"] = None if v is None else v[0]
                    row[prefix + f_.name + "_hi"] = None if v is None else v[1]
                elif f_.name == "prior":
                    row[prefix + f_.name] = _prior_text(v)
                else:
                    row[prefix + f_.name] = v

        put("", self)
        if self.unadjusted is not None:
            put("unadjusted_", self.unadjusted)
        return pd.DataFrame([row])


def analyze_ab(
    control: ArmStats | RatioArmStats,
    treatment: ArmStats | RatioArmStats,
    config: ABConfig | None = None,
) -> ABResult:
    """Analyse one A/B comparison from its arms' sufficient statistics.

    A thin view of :func:`analyze_ab_batch` (one implementation for both).

    Args:
        control: the holdout's sums (scalars).
        treatment: the model's arm's sums.
        config: analysis settings; defaults to ``ABConfig()``.

    Returns:
        The frozen :class:`ABResult`.

    Raises:
        ParameterError: misuse (array inputs, wrong kind of statistics, bad config).
    """
    config = config or ABConfig()
    for side, arm in (("control", control), ("treatment", treatment)):
        if any(np.ndim(getattr(arm, f_.name)) != 0 for f_ in fields(arm) if getattr(arm, f_.name) is not None):
            raise ParameterError(f"{side}: analyze_ab takes scalars; use analyze_ab_batch for arrays")
    batch = analyze_ab_batch(control, treatment, config)
    res = ABResult._from_batch(batch)
    if res.srm_alarm and res.reason == REASON_SRM:
        n = res.n_control + res.n_treatment
        detail = (
            f"sample ratio mismatch: {res.n_treatment} of {n} units "
            f"({res.n_treatment / n:.2%}) in treatment against a planned "
            f"{config.planned_treatment_share:.2%} (chi-squared p = {p_value(res.srm_p_value)} < "
            f"srm_alpha = {config.srm_alpha:g}); assignment or logging is broken, do not trust the effect"
        )
        res = _replace(res, reason=detail)
    return res


def _replace(res: ABResult, **changes: Any) -> ABResult:
    from dataclasses import replace

    return replace(res, **changes)


# --------------------------------------------------------------------------------------------
# unit-level rows (the `valuetrack attribute ab` path)
# --------------------------------------------------------------------------------------------


def _arm_mask(series: pd.Series, label: Any) -> np.ndarray:
    """Rows whose arm equals ``label``, which may arrive as a string from the command line."""
    mask = (series == label).to_numpy()
    if mask.any():
        return mask
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        try:
            num = float(label)
        except (TypeError, ValueError):
            num = None
        if num is not None:
            return (series.astype(float) == num).to_numpy()
    return (series.astype(str) == str(label)).to_numpy()


def attribute_frame(
    frame: pd.DataFrame,
    *,
    metric: str,
    arm_col: str,
    control: Any,
    treatment: Any,
    covariate: str | None = None,
    alpha: float = 0.05,
    metric_type: str | None = None,
    denominator: str | None = None,
    **options: Any,
) -> ABResult:
    """A/B result from unit-level rows (one row per unit): the `valuetrack attribute ab` engine.

    Args:
        frame: one row per unit of randomisation.
        metric: the outcome column (the ratio's numerator when ``denominator`` is given).
        arm_col: the column naming each unit's arm.
        control: the control arm's label (matched as given, numerically, or as text).
        treatment: the treatment arm's label.
        covariate: a pre-period covariate column for CUPED, or None.
        alpha: two-sided error rate.
        metric_type: "mean", "proportion" or "ratio"; by default "ratio" with a denominator,
            "proportion" when the metric is all 0/1, else "mean".
        denominator: the ratio's per-unit denominator column.
        **options: further :class:`ABConfig` fields (e.g. ``planned_treatment_share``).

    Raises:
        ValidationError: missing columns, non-numeric or missing values, unknown arm labels
            (naming --control/--treatment and listing the labels found), an empty arm.
        ParameterError: bad settings (e.g. alpha outside (0, 1)).
    """
    from valuetrack.io import numeric_column, require_columns

    require_columns(frame, [("--metric", metric), ("--arm-col", arm_col), ("--covariate", covariate), ("--denominator", denominator)])
    if metric_type is not None and metric_type not in METRICS:
        raise ParameterError(f"metric_type must be one of {', '.join(METRICS)}; got {metric_type!r}")
    arms = frame[arm_col]
    found = sorted({str(v) for v in arms.dropna().unique()})
    shown = ", ".join(found[:20]) + (f", … ({len(found)} labels)" if len(found) > 20 else "")
    problems = []
    masks = {}
    for opt, label in (("--control", control), ("--treatment", treatment)):
        m = _arm_mask(arms, label)
        if not m.any():
            problems.append(f"{opt}: no rows have {arm_col} = {label!r}; labels found: {shown}")
        masks[opt] = m
    if str(control) == str(treatment):
        problems.append(f"--control and --treatment name the same arm {control!r}")
    if problems:
        raise ValidationError(problems)

    def column(opt: str, col: str) -> np.ndarray:
        values = numeric_column(frame, opt, col)
        used = masks["--control"] | masks["--treatment"]
        missing = values.isna().to_numpy() & used
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise ValidationError(
                f"{opt}: column {col!r} has {int(missing.sum())} missing value(s) (first at row {row + 1}); "
                "fill or drop them first"
            )
        if not np.all(np.isfinite(values.to_numpy()[used])):
            raise ValidationError(f"{opt}: column {col!r} has infinite values")
        return values.to_numpy()

    y = column("--metric", metric)
    if denominator is not None:
        kind = metric_type or "ratio"
        if kind != "ratio":
            raise ParameterError(f"denominator is only used with metric_type='ratio'; got {kind!r}")
        d = column("--denominator", denominator)
    else:
        if metric_type == "ratio":
            raise ParameterError("metric_type='ratio' needs a denominator column")
        used_y = y[masks["--control"] | masks["--treatment"]]
        kind = metric_type or ("proportion" if np.isin(used_y, (0.0, 1.0)).all() else "mean")
    if kind == "proportion" and not np.isin(y[masks["--control"] | masks["--treatment"]], (0.0, 1.0)).all():
        raise ValidationError(f"--metric: column {metric!r} must be 0/1 for a proportion metric")
    x = column("--covariate", covariate) if covariate is not None else None
    config = ABConfig(metric=kind, alpha=alpha, cuped=covariate is not None, **options)

    def stats_for(m: np.ndarray) -> ArmStats | RatioArmStats:
        if kind == "ratio":
            return RatioArmStats.from_values(y[m], d[m])
        return ArmStats.from_values(y[m], None if x is None else x[m])

    return analyze_ab(stats_for(masks["--control"]), stats_for(masks["--treatment"]), config)


# re-exported so callers can reach the whole A/B toolkit from one module
from valuetrack.attribution.portfolio import benjamini_hochberg, e_benjamini_hochberg  # noqa: E402
from valuetrack.attribution.sequential import e_value  # noqa: E402
