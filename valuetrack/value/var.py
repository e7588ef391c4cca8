"""Value at risk of a portfolio of models: what its net value might be in a bad year (or month).

Pure statistics (numpy only): the inputs are each model's daily volume history, today's money per
unit of volume and the month-to-month drift of that money, and its fixed cost. The method, its
assumptions and its calibration are in docs/methods-var.md. In short:

- **Volume.** log volume = weekday level + z, with z = λ·f + e: one common demand factor f shared
  by every model, and an idiosyncratic part e per model, each an AR(1) process in days. The factor
  is estimated by *common correlated effects* (Pesaran 2006): the cross-sectional mean of the
  models' standardised daily log-volume residuals; loadings λ by least squares on it; AR(1)
  coefficients by least squares on consecutive days.
- **Effect drift.** The money per unit of volume moves as a monthly random walk; its step variance
  is estimated by the method of moments from the monthly estimates, net of their sampling variance.
  Models that share a KPI and units draw correlated steps (correlation = their overlap share).
- **Cost.** Fixed monthly cost pro-rated over the horizon; per-prediction cost moves with volume
  (it is netted into the money per unit).
- **Simulation.** Each model's volume is drawn per month segment, not per day, with the exact mean
  and variance of its daily paths' sum (D47); ``simulate_daily`` draws every day (the reference).

Today's estimate is taken as right: its own uncertainty is what the value intervals show, and
this simulation answers the other question, how much the coming year can vary around it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from valuetrack.errors import ParameterError
from valuetrack.jsonsafe import num

MAX_PHI = 0.999
"""AR(1) coefficients are capped below 1 so that the simulated volume stays stationary."""
MIN_DAYS = 28
"""Fewer days of volume than this: the model's volume is held at its level (no volume risk)."""


@dataclass(frozen=True)
class VarModelInput:
    """One model, as the simulation sees it.

    Attributes:
        name: the model.
        volume: daily volume history (units scored or treated per day), oldest first, aligned to
            the portfolio's ``days``; NaN where the model has no data that day.
        value_per_unit: money per unit of volume today, net of the per-prediction cost.
        monthly_values: the same money per unit, estimated month by month (oldest first), for the
            drift; NaN where a month has no estimate.
        monthly_ses: the standard errors of ``monthly_values``.
        fixed_monthly_cost: the fixed cost per month (serving, licences, people).
        kpi: a key that is the same for models reading the same outcomes (shared KPI), or None.
    """

    name: str
    volume: np.ndarray
    value_per_unit: float
    monthly_values: np.ndarray = field(default_factory=lambda: np.empty(0))
    monthly_ses: np.ndarray = field(default_factory=lambda: np.empty(0))
    fixed_monthly_cost: float = 0.0
    kpi: str | None = None


@dataclass(frozen=True)
class FactorModel:
    """The fitted volume and drift model (every array has one entry per model).

    Attributes:
        level: log volume by weekday (models × 7; weekday 0 = Monday).
        loadings: λ, each model's loading on the common demand factor (in log volume).
        phi_f, sigma_f: the factor's AR(1) coefficient and innovation sd (factor variance 1).
        phi, sigma: each model's idiosyncratic AR(1) coefficient and innovation sd.
        f_last, e_last: the state on the last day of history.
        level_sd_f, level_sd: standard errors of the factor's and each idiosyncratic part's mean
            (the weekday levels are estimated from a finite, autocorrelated history; each path
            draws its own long-run mean so that this uncertainty is in the tail).
        drift_sd: sd of the monthly step of each model's money per unit.
        drift_corr: correlation of those steps between models (models × models).
        days_used: days of history the factor was estimated on.
    """

    level: np.ndarray
    loadings: np.ndarray
    phi_f: float
    sigma_f: float
    phi: np.ndarray
    sigma: np.ndarray
    f_last: float
    e_last: np.ndarray
    level_sd_f: float
    level_sd: np.ndarray
    drift_sd: np.ndarray
    drift_corr: np.ndarray
    days_used: int

    def volume_correlation(self) -> np.ndarray:
        """The implied stationary correlation of the models' log-volume residuals."""
        var_e = np.where(self.phi < 1, self.sigma ** 2 / (1 - self.phi ** 2), 0.0)
        cov = np.outer(self.loadings, self.loadings) + np.diag(var_e)
        sd = np.sqrt(np.diag(cov))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = cov / np.outer(sd, sd)
        return np.where(np.isfinite(corr), corr, 0.0)


@dataclass(frozen=True)
class VarResult:
    """The simulated distribution of the portfolio's net value over one horizon.

    Attributes:
        horizon: "12m" or "1m".
        start, end: the days simulated (the day after the last day of data, and the last).
        level: the tail probability (0.05: the 5 % value at risk).
        expected: the mean simulated net value.
        var: the ``level`` quantile of the net value (a bad year: worse happens with probability
            ``level``).
        es: the expected shortfall, the mean net value in the worst ``level`` share of paths.
        models: per model: expected net value, its own ``level`` quantile, and its contribution
            to the shortfall (the model's mean net value in the portfolio's worst paths).
        paths: the number of simulated paths; seed: the random seed.
    """

    horizon: str
    start: dt.date
    end: dt.date
    level: float
    expected: float
    var: float
    es: float
    models: list[dict[str, Any]]
    paths: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("expected", "var", "es"):
            out[k] = num(out[k])
        return out


def fit(models: Sequence[VarModelInput], days: Sequence[dt.date],
        overlap: np.ndarray | None = None) -> FactorModel:
    """Fit the volume factor model and the drift on the models' history.

    Args:
        models: the models (volume arrays aligned to ``days``).
        days: the history's days, consecutive, oldest first.
        overlap: models × models share of shared units (0 where none); with a shared KPI it is the
            correlation of the drift steps.
    """
    n = len(models)
    if n == 0:
        raise ParameterError("models: at least one model is needed for a value at risk")
    vol = np.vstack([np.asarray(m.volume, dtype=float) for m in models]) if len(days) else np.empty((n, 0))
    if vol.shape[1] != len(days):
        raise ParameterError(f"volume: every model needs one value per day ({len(days)}), got {vol.shape[1]}")
    weekday = np.array([d.weekday() for d in days], dtype=int)
    with np.errstate(divide="ignore", invalid="ignore"):
        logv = np.where(vol > 0, np.log(vol), np.nan)
    enough = np.isfinite(logv).sum(axis=1) >= MIN_DAYS
    level = np.zeros((n, 7))
    for w in range(7):
        cols = logv[:, weekday == w]
        with _quiet():
            level[:, w] = np.nanmean(cols, axis=1) if cols.shape[1] else np.nan
    # a weekday never seen: the model's overall level
    overall = np.array([np.nanmean(r) if np.isfinite(r).any() else 0.0 for r in logv])
    level = np.where(np.isfinite(level), level, overall[:, None])
    z = logv - level[:, weekday]
    z[~enough] = np.nan
    loadings, phi_f, phi, psi, days_used = _factor_moments(z)
    sigma_f = float(np.sqrt(1 - phi_f ** 2))
    sigma = np.sqrt(psi * (1 - phi ** 2))
    f_last, e_last = _state(z, loadings, psi)
    level_sd_f = _mean_sd(1.0, phi_f, days_used) if loadings.any() else 0.0
    level_sd = np.array([_mean_sd(psi[i], phi[i], int(np.isfinite(z[i]).sum())) for i in range(n)])
    drift = np.array([drift_sd(m.monthly_values, m.monthly_ses) for m in models])
    corr = np.eye(n)
    if overlap is not None:
        keys = {k: i for i, k in enumerate(dict.fromkeys(m.kpi for m in models if m.kpi is not None))}
        kpi = np.array([keys.get(m.kpi, -1) if m.kpi is not None else -1 for m in models])
        shared = (kpi[:, None] == kpi[None, :]) & (kpi >= 0)[:, None] & ~np.eye(n, dtype=bool)
        corr = np.where(shared, np.clip(np.asarray(overlap, dtype=float), 0.0, 1.0), corr)
        for group in (np.flatnonzero(kpi == k) for k in keys.values()):  # the blocks of one KPI
            try:
                np.linalg.cholesky(corr[np.ix_(group, group)])
            except np.linalg.LinAlgError:
                corr[np.ix_(group, group)] = _nearest_correlation(corr[np.ix_(group, group)])
    return FactorModel(level, loadings, phi_f, sigma_f, phi, sigma, f_last, e_last, level_sd_f, level_sd,
                       drift, corr, days_used)


def simulate(models: Sequence[VarModelInput], fm: FactorModel, start: dt.date, days: int, *,
             paths: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Simulated net value of each model over ``days`` days from ``start``.

    Returns:
        (portfolio net value per path, per-model net value per path (paths × models)).
    """
    return simulate_horizons(models, fm, start, [days], paths=paths, seed=seed)[days]


def simulate_horizons(models: Sequence[VarModelInput], fm: FactorModel, start: dt.date, horizons: Sequence[int], *,
                      paths: int = 4000, seed: int = 0) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Net value per path over the first ``h`` days of one simulation, for each ``h`` in ``horizons``
    (a shorter horizon is the start of the longer one's paths: one simulation serves all).

    The paths are drawn segment by segment, not day by day: the horizon is cut into *segments*
    (calendar months, also cut where a shorter horizon ends), and each model's volume in a segment
    is drawn as a lognormal whose mean and variance are exactly those of the sum of its daily
    volumes, and whose log varies across segments and models as the daily log-volumes' segment means
    do (the common factor, the own parts, the per-path long-run means). docs/methods-var.md derives
    it (D47); tests/value/test_var.py checks it against closed-form moments and against
    :func:`simulate_daily`, which draws every day.

    Returns: per horizon, (portfolio net value per path, per-model net value per path).
    """
    _check(horizons, paths)
    days = max(horizons)
    rng = np.random.default_rng(seed)
    n = len(models)
    seg = _Segments(start, days, horizons)
    factor = _ar1_moments(np.array([fm.f_last]), np.array([fm.phi_f]), np.array([fm.sigma_f]),
                          np.array([fm.level_sd_f]), seg)
    # the factor's segment means, shared by every model (centred: each model adds its own mean)
    f_dev = (_sqrt_psd(factor.seg_cov[0]) @ rng.standard_normal((seg.k, paths))).astype(np.float32)  # segments × paths
    drifting = np.flatnonzero(fm.drift_sd > 0)  # the others' money per unit stays at today's
    steps = _drift_steps(rng, paths, len(seg.months), fm.drift_corr[np.ix_(drifting, drifting)])
    walks = np.cumsum(steps, axis=1) * fm.drift_sd[drifting].astype(np.float32)[:, None, None]  # drifting × months × paths
    per_unit = np.array([m.value_per_unit for m in models], dtype=np.float32)
    horizon_segments = {h: int(np.searchsorted(seg.starts, h)) for h in horizons}  # segments within h days
    per_model = {h: np.empty((paths, n)) for h in horizons}
    for lo in range(0, n, _CHUNK):  # a block of models at a time: memory stays bounded at any portfolio size
        block = slice(lo, min(lo + _CHUNK, n))
        expected, cov_own = _segment_volumes(fm, np.arange(n)[block], seg, factor)
        # the own parts (models × segments × paths); einsum, not a batched matmul: many tiny
        # matrix products are slow in a threaded BLAS on a busy machine
        own = np.einsum("mjk,mkp->mjp", _sqrt_psd(cov_own).astype(np.float32),
                        rng.standard_normal((len(expected), seg.k, paths), dtype=np.float32))
        lam = fm.loadings[block]
        var_log = np.diagonal(cov_own, axis1=1, axis2=2) + lam[:, None] ** 2 * np.diag(factor.seg_cov[0])
        own += lam.astype(np.float32)[:, None, None] * f_dev[None] - (var_log / 2).astype(np.float32)[:, :, None]
        volume = np.exp(own, out=own) * expected.astype(np.float32)[:, :, None]  # models × segments × paths
        # money per unit in each segment's month: today's estimate plus the walk's steps so far
        money = volume * per_unit[block][:, None, None]
        mine = (drifting >= block.start) & (drifting < block.stop)
        money[drifting[mine] - block.start] += volume[drifting[mine] - block.start] * walks[mine][:, seg.month]
        fixed = np.array([m.fixed_monthly_cost for m in models[block]])
        for h, k in horizon_segments.items():
            per_model[h][:, block] = money[:, :k].sum(axis=1, dtype=np.float64).T - fixed * h / (365.25 / 12)
    return {h: (v.sum(axis=1), v) for h, v in per_model.items()}


def simulate_daily(models: Sequence[VarModelInput], fm: FactorModel, start: dt.date, horizons: Sequence[int], *,
                   paths: int = 4000, seed: int = 0) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """:func:`simulate_horizons` drawn day by day: every model's daily AR(1) paths, summed to months.

    The reference the segment-level simulation is checked against (tests/value/test_var.py) and
    timed against (benchmarks/bench_var.py); it costs days × paths per model (about 5 s of CPU for
    200 models where :func:`simulate_horizons` takes about half a second).
    """
    _check(horizons, paths)
    days = max(horizons)
    rng = np.random.default_rng(seed)
    n = len(models)
    dates = [start + dt.timedelta(days=t) for t in range(days)]
    month_keys = sorted({(d.year, d.month) for d in dates})
    month_starts = np.flatnonzero([t == 0 or dates[t].day == 1 for t in range(days)])
    weekday = np.array([d.weekday() for d in dates])
    f = _ar1_paths(fm.f_last, fm.phi_f, fm.sigma_f, fm.level_sd_f, days, paths, rng)
    # the money per unit: a monthly random walk from today's estimate, correlated across shared KPIs
    steps = rng.standard_normal((paths, len(month_keys), n), dtype=np.float32) @ np.linalg.cholesky(
        fm.drift_corr).T.astype(np.float32)
    per_model = {h: np.empty((paths, n)) for h in horizons}
    for i, m in enumerate(models):  # one model at a time: memory stays days × paths at any portfolio size
        e = _ar1_paths(fm.e_last[i], fm.phi[i], fm.sigma[i], fm.level_sd[i], days, paths, rng)
        daily = np.exp(fm.level[i, weekday].astype(np.float32)[:, None] + np.float32(fm.loadings[i]) * f + e)
        per_unit = m.value_per_unit + np.cumsum(steps[:, :, i] * fm.drift_sd[i], axis=1)
        for h in horizons:
            starts = month_starts[month_starts < h]
            volume = np.add.reduceat(daily[:h], starts, axis=0, dtype=np.float64).T  # paths × months
            per_model[h][:, i] = (volume * per_unit[:, :len(starts)]).sum(axis=1) - m.fixed_monthly_cost * h / (365.25 / 12)
    return {h: (v.sum(axis=1), v) for h, v in per_model.items()}


def value_at_risk(models: Sequence[VarModelInput], fm: FactorModel, start: dt.date, days: int, *,
                  horizon: str, level: float = 0.05, paths: int = 4000, seed: int = 0) -> VarResult:
    """The ``level`` value at risk and expected shortfall of the portfolio's net value."""
    return values_at_risk(models, fm, start, {horizon: days}, level=level, paths=paths, seed=seed)[horizon]


def values_at_risk(models: Sequence[VarModelInput], fm: FactorModel, start: dt.date, horizons: dict[str, int], *,
                   level: float = 0.05, paths: int = 4000, seed: int = 0) -> dict[str, VarResult]:
    """:func:`value_at_risk` at several horizons (name → days) from one simulation."""
    if not 0 < level < 0.5:
        raise ParameterError(f"level: the tail probability must be in (0, 0.5), got {level}")
    sims = simulate_horizons(models, fm, start, sorted(set(horizons.values())), paths=paths, seed=seed)
    out = {}
    for name, days in horizons.items():
        total, per_model = sims[days]
        var, es = tail(total, level)
        worst = total <= var
        expected, quantile, shortfall = per_model.mean(axis=0), np.quantile(per_model, level, axis=0), \
            per_model[worst].mean(axis=0)
        rows = [{"model": m.name, "expected": num(expected[i]), "var": num(quantile[i]),
                 "shortfall_contribution": num(shortfall[i])} for i, m in enumerate(models)]
        out[name] = VarResult(name, start, start + dt.timedelta(days=days - 1), level, float(total.mean()), var, es,
                              rows, paths, seed)
    return out


def tail(values: np.ndarray, level: float) -> tuple[float, float]:
    """(the ``level`` quantile, the mean of the values at or below it)."""
    var = float(np.quantile(values, level))
    return var, float(values[values <= var].mean())


def drift_sd(values: np.ndarray, ses: np.ndarray) -> float:
    """Monthly random-walk step sd by the method of moments: E[(Δv)²] = τ² + se²ₘ + se²ₘ₋₁,
    over consecutive months with estimates; 0 when fewer than three months or no excess."""
    v, s = np.asarray(values, dtype=float), np.asarray(ses, dtype=float)
    if len(v) < 3:
        return 0.0
    d2 = np.diff(v) ** 2 - s[1:] ** 2 - s[:-1] ** 2
    d2 = d2[np.isfinite(d2)]
    if len(d2) < 2:
        return 0.0
    return float(np.sqrt(max(0.0, d2.mean())))


# ------------------------------------------------------------------------------------------------

def _factor_moments(z: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, int]:
    """One-factor model by the method of moments on lag-0 and lag-1 (cross-)covariances.

    Under z_i = λ_i f + e_i (f and e_i independent AR(1), Var f = 1): Cov(z_i, z_j) = λ_i λ_j and
    Cov(z_i,t, z_j,t−1) = λ_i λ_j φ_f for i ≠ j, so the factor's loadings and persistence come from
    the *cross*-covariances alone, which the idiosyncratic parts do not touch (a factor proxy such
    as the cross-sectional mean would mix them in and understate persistence when models are few).
    Then ψ_i = Var z_i − λ_i² and φ_i = (Cov(z_i,t, z_i,t−1) − λ_i² φ_f) / ψ_i. Persistence and
    variances get the usual small-sample corrections for a demeaned AR(1) (Kendall 1954).

    Returns: (loadings, φ_f, φ per model, ψ per model, days with at least two models).
    """
    n = z.shape[0]
    ok = np.isfinite(z)
    zf, okf = np.where(ok, z, 0.0), ok.astype(float)
    m0, m1 = okf @ okf.T, okf[:, 1:] @ okf[:, :-1].T
    with _quiet():
        c0 = np.nan_to_num((zf @ zf.T) / m0)
        c1 = np.nan_to_num((zf[:, 1:] @ zf[:, :-1].T) / m1)
    days_used = int((ok.sum(axis=0) >= 2).sum())
    off = ~np.eye(n, dtype=bool) & (m0 >= MIN_DAYS)
    s0, s1 = c0[off].sum(), (c1[off] + c1.T[off]).sum() / 2
    raw, phi_f = np.zeros(n), 0.0  # raw: loadings as seen in the demeaned sample
    if off.any() and s0 > 0:
        phi_f = _kendall(float(np.clip(s1 / s0, 0.0, MAX_PHI)), days_used)
        raw = np.minimum(_rank_one(np.where(off, c0, 0.0), off), np.sqrt(np.maximum(np.diag(c0), 0.0)))
    psi = np.maximum(np.diag(c0) - raw ** 2, 0.0)
    phi = np.zeros(n)
    for i in range(n):
        if psi[i] > 0:
            t = int(ok[i].sum())
            phi[i] = _kendall(float(np.clip((c1[i, i] - raw[i] ** 2 * phi_f) / psi[i], 0.0, MAX_PHI)), t)
            psi[i] /= _demeaned_share(phi[i], t)
    loadings = raw / np.sqrt(_demeaned_share(phi_f, days_used))
    return loadings, phi_f, phi, psi, days_used


def _rank_one(c: np.ndarray, off: np.ndarray, iterations: int = 50) -> np.ndarray:
    """λ ≥ 0 minimising Σ_{i≠j} (c_ij − λ_i λ_j)² over the pairs in ``off`` (alternating least squares)."""
    lam = np.sqrt(np.maximum(c.sum(axis=1) / np.maximum(off.sum(axis=1), 1), 0.0))
    for _ in range(iterations):
        w = off * lam[None, :]
        denom = (w ** 2).sum(axis=1)
        lam = np.maximum((c * w).sum(axis=1), 0.0) / np.where(denom > 0, denom, np.inf)
    return lam


def _kendall(phi: float, t: int) -> float:
    """Kendall's bias correction of a least-squares AR(1) coefficient on a demeaned series."""
    return float(np.clip(phi + (1 + 3 * phi) / max(t, 1), 0.0, MAX_PHI)) if phi > 0 else 0.0


def _demeaned_share(phi: float, t: int) -> float:
    """E[sample variance] / variance for an AR(1) demeaned over t days (at least one half)."""
    return max(0.5, 1 - (1 + phi) / ((1 - phi) * max(t, 1)))


def _mean_sd(var: float, phi: float, t: int) -> float:
    """Standard error of the mean of t days of an AR(1) with variance ``var``: √(var·(1+φ)/((1−φ)·t))."""
    return float(np.sqrt(var * (1 + phi) / ((1 - phi) * t))) if t > 0 and var > 0 else 0.0


def _state(z: np.ndarray, loadings: np.ndarray, psi: np.ndarray) -> tuple[float, np.ndarray]:
    """The factor and idiosyncratic parts on each model's last day of data (the factor by its
    regression score on those last values)."""
    last = np.array([_last_finite(row) for row in z])
    use = (loadings > 0) & (psi > 0)
    f_last = 0.0
    if use.any():
        w = loadings[use] / psi[use]
        f_last = float((w @ last[use]) / (1.0 + w @ loadings[use]))
    return f_last, last - loadings * f_last


def _ar1_paths(last: float, phi: float, sigma: float, level_sd: float, days: int, paths: int,
               rng: np.random.Generator) -> np.ndarray:
    """AR(1) paths (days × paths) from ``last``, reverting to a mean drawn per path with sd
    ``level_sd`` (the uncertainty of the mean estimated from a finite history)."""
    from scipy.signal import lfilter

    mean = (level_sd * rng.standard_normal(paths)).astype(np.float32)
    shocks = np.float32(sigma) * rng.standard_normal((days, paths), dtype=np.float32)
    shocks[0] += np.float32(phi) * (np.float32(last) - mean)
    # single precision throughout (the paths are log-volumes of order 1; float32 halves the time)
    return mean + lfilter(np.array([1.0], np.float32), np.array([1.0, -phi], np.float32), shocks, axis=0)


def _check(horizons: Sequence[int], paths: int) -> None:
    if not horizons or min(horizons) < 1:
        raise ParameterError(f"days: the horizon must be at least one day, got {min(horizons) if horizons else None}")
    if paths < 100:
        raise ParameterError(f"paths: at least 100 simulated paths are needed, got {paths}")


_CHUNK = 64
"""Models simulated together (memory: models × paths × segments per block)."""


class _Segments:
    """The horizon's days cut into segments: calendar months, also cut where a shorter horizon ends."""

    def __init__(self, start: dt.date, days: int, horizons: Sequence[int]) -> None:
        dates = [start + dt.timedelta(days=t) for t in range(days)]
        self.days = days
        self.starts = np.array(sorted({0, *(t for t in range(1, days) if dates[t].day == 1),
                                       *(h for h in horizons if h < days)}))
        self.k = len(self.starts)
        self.length = np.diff(np.append(self.starts, days))
        self.months = sorted({(d.year, d.month) for d in dates})
        self.month = np.array([self.months.index((dates[t].year, dates[t].month)) for t in self.starts])
        self.weekday = np.array([d.weekday() for d in dates])
        of_day = np.repeat(np.arange(self.k), self.length)
        # each segment's days, padded to the longest (the padding has no weight: ``mask``)
        width = int(self.length.max())
        self.mask = np.arange(width)[None, :] < self.length[:, None]
        self.block = np.minimum(self.starts[:, None] + np.arange(width)[None, :], days - 1)  # k × width
        self.block_lag = np.abs(self.block[:, :, None] - self.block[:, None, :])  # k × width × width
        # the pairs of days (one in segment k, one in segment l) at each lag, per pair of days:
        # Σ over those pairs of φ^lag is the Toeplitz part of the segment means' covariance
        t = np.arange(days)
        pairs = ((of_day[:, None] * self.k + of_day[None, :]) * days + np.abs(t[:, None] - t[None, :])).ravel()
        counts = np.bincount(pairs, minlength=self.k * self.k * days).reshape(self.k, self.k, days)
        self.lag_weights = counts / np.outer(self.length, self.length)[:, :, None]

    def mean(self, x: np.ndarray) -> np.ndarray:
        """Segment means of daily values (last axis: days)."""
        return np.add.reduceat(x, self.starts, axis=-1) / self.length


@dataclass(frozen=True)
class _Moments:
    """AR(1) processes from a known state reverting to a mean drawn per path (arrays: processes first).

    x_τ = M + φ^τ (x₀ − M) + Σ_{s≤τ} φ^{τ−s} σ ε_s on days τ = 1, 2, …, with M ~ N(0, s²):
    E x_τ = φ^τ x₀ and Cov(x_τ, x_υ) = s² (1 − φ^τ)(1 − φ^υ) + ψ (φ^|τ−υ| − φ^(τ+υ)), ψ = σ²/(1 − φ²).
    """

    mean: np.ndarray  # daily means (processes × days)
    var: np.ndarray  # daily variances
    seg_mean: np.ndarray  # means of the segment means (processes × segments)
    seg_cov: np.ndarray  # covariance of the segment means (processes × segments × segments)
    blocks: np.ndarray  # covariance of each segment's days (processes × segments × width × width)


def _ar1_moments(last: np.ndarray, phi: np.ndarray, sigma: np.ndarray, level_sd: np.ndarray,
                 seg: _Segments) -> _Moments:
    psi = sigma ** 2 / (1 - phi ** 2)
    powers = phi[:, None] ** np.arange(seg.days + 1)[None, :]  # φ^0 … φ^days
    p = powers[:, 1:]  # φ^τ, τ = 1 … days
    a = 1 - p
    s2, psi_ = (level_sd ** 2)[:, None], psi[:, None]
    pm, am = seg.mean(p), seg.mean(a)
    toeplitz = np.einsum("kld,md->mkl", seg.lag_weights, powers[:, :-1])
    seg_cov = (s2[:, :, None] * am[:, :, None] * am[:, None, :]
               + psi_[:, :, None] * (toeplitz - pm[:, :, None] * pm[:, None, :]))
    pb, ab = p[:, seg.block], a[:, seg.block]  # processes × segments × width
    blocks = (s2[:, :, None, None] * ab[..., :, None] * ab[..., None, :]
              + psi_[:, :, None, None] * (powers[:, seg.block_lag] - pb[..., :, None] * pb[..., None, :]))
    return _Moments(p * last[:, None], s2 * a ** 2 + psi_ * (1 - p ** 2), seg.mean(p * last[:, None]), seg_cov,
                    blocks)


def _segment_volumes(fm: FactorModel, idx: np.ndarray, seg: _Segments,
                     factor: _Moments) -> tuple[np.ndarray, np.ndarray]:
    """For the models ``idx``: each segment's expected volume (models × segments), and the
    covariance of the log-volume's own part across segments (models × segments × segments).

    log volume on day τ is z = level(weekday) + λ f + e, Gaussian; the segment's volume
    V = Σ exp(z) has mean Σ exp(E z + Var z / 2) and variance Σ_τ Σ_υ g_τ g_υ (exp(Cov(z_τ, z_υ)) − 1)
    (g: the daily means). It is drawn as E V · exp(G − Var G / 2) with G Gaussian: λ times the factor's
    segment mean plus the model's own part, whose covariance is that of e's segment means plus, on
    the diagonal, the variance the days within the segment add (what makes Var log V = log(1 + Var V /
    (E V)²): mean and variance of every segment's volume are exact).
    """
    own = _ar1_moments(fm.e_last[idx], fm.phi[idx], fm.sigma[idx], fm.level_sd[idx], seg)
    lam2 = fm.loadings[idx, None] ** 2
    mean = fm.loadings[idx, None] * factor.mean + own.mean
    var = lam2 * factor.var + own.var
    g = np.exp(fm.level[idx][:, seg.weekday] + mean + var / 2)  # models × days
    expected = np.add.reduceat(g, seg.starts, axis=1)
    gb = g[:, seg.block] * seg.mask  # models × segments × width
    cov_days = lam2[:, :, None, None] * factor.blocks + own.blocks
    variance = np.einsum("mkt,mku,mktu->mk", gb, gb, np.expm1(cov_days))
    log_var = np.log1p(np.maximum(variance, 0.0) / expected ** 2)
    own_var = np.diagonal(own.seg_cov, axis1=1, axis2=2)
    within = np.maximum(log_var - lam2 * np.diag(factor.seg_cov[0]) - own_var, 0.0)
    return expected, own.seg_cov + within[:, :, None] * np.eye(seg.k)


def _sqrt_psd(c: np.ndarray) -> np.ndarray:
    """L with L Lᵀ = c for (stacks of) positive semi-definite matrices (singular ones too)."""
    w, v = np.linalg.eigh(c)
    return v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]


def _drift_steps(rng: np.random.Generator, paths: int, months: int, corr: np.ndarray) -> np.ndarray:
    """Standard normal monthly steps (models × months × paths), correlated as ``corr`` (mixed within
    each group of models correlated with one another: ``corr`` is block-diagonal by shared KPI)."""
    from scipy.sparse.csgraph import connected_components

    n = len(corr)
    steps = rng.standard_normal((n, months, paths), dtype=np.float32)
    count, label = connected_components(corr != 0, directed=False)
    for c in range(count):
        group = np.flatnonzero(label == c)
        if len(group) > 1:
            chol = np.linalg.cholesky(corr[np.ix_(group, group)]).astype(np.float32)
            steps[group] = (chol @ steps[group].reshape(len(group), -1)).reshape(len(group), months, paths)
    return steps


def _last_finite(x: np.ndarray) -> float:
    ok = np.flatnonzero(np.isfinite(x))
    return float(x[ok[-1]]) if len(ok) else 0.0


def _nearest_correlation(c: np.ndarray) -> np.ndarray:
    """Clip negative eigenvalues so that the matrix is a valid correlation (Cholesky works)."""
    w, v = np.linalg.eigh(c)
    c = v @ np.diag(np.clip(w, 1e-9, None)) @ v.T
    d = np.sqrt(np.diag(c))
    return c / np.outer(d, d)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """numpy's nan-functions warn on all-NaN rows (a model without data): those give NaN by design."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
