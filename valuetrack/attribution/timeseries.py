"""Time-series attribution: a structural counterfactual for a model launched without a holdout.

The counterfactual is a structural time-series model (statsmodels ``UnobservedComponents``): a local
level, weekly seasonality for daily data, yearly seasonality only
with two years of pre-period, and a regression on control series whose coefficients live in the
state vector (so their uncertainty is carried by the Kalman filter). It is fitted on the pre-period
and forecast over the post-period; the gap between the actual series and the forecast is the effect.

The level variance follows the data: the fit averages over a grid of ratios q = σ²_level/σ²_irregular,
each weighted by its likelihood (σ²_irregular profiled out) times a half-Cauchy prior on
σ_level/σ_irregular. Intervals come from joint simulated paths of the post-period counterfactual:
each path draws q from those weights and σ²_irregular from its posterior given q (parameter
uncertainty), then the state at the intervention from the Kalman filter (level, seasonality and
regression-coefficient uncertainty), then the future state and observation noise. Averages, sums
and any sub-period (``gap_between``) are computed path by path, never by adding pointwise bounds.

Every fit is checked against placebo interventions in its own pre-period (windows as long as the
post-period, forecast from the filter state at their start): the root-mean-square of their
standardized gaps is a calibration factor that widens the interval when above 1 and marks the fit
untrusted above ``placebo_max_factor``; with fewer than ``placebo_min_windows`` windows, or a
post-period longer than the pre-period, the fit is "unchecked". See docs/methods-timeseries.md.

The model is only trusted to ``horizon_cap_days`` after the intervention: random-walk intervals widen without
end and the control relationships drift, so beyond the cap the model must be re-validated (re-fitted
on a new pre-period) and days past it are not attributed.

Diagnostics (the placebo calibration, a held-out pre-period fit, Ljung–Box on the one-step errors, and a
check that no control series moved at the intervention) give a verdict: ``trusted`` and ``reason``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from valuetrack.jsonsafe import clean, effect_fields, num
from valuetrack.errors import ParameterError, ValidationError
from valuetrack.formatting import p_value

__all__ = [
    "TSConfig",
    "TSResult",
    "FitCache",
    "fit_structural",
    "fit_its",
    "attribute_ts_frame",
    "choose_method",
    "check_leak",
]

_DAY = pd.Timedelta(days=1)
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class TSConfig:
    """Settings of a time-series attribution.

    Attributes:
        alpha: 1 − confidence level of every interval (0.05 → 95 % intervals).
        seed: seed of the random generator of the simulated paths; reported in the result.
        n_paths: number of joint simulated post-period paths behind every interval and p-value.
        horizon_cap_days: the attributable horizon: days after the intervention beyond this are not
            attributed and the result asks for the model to be re-validated.
        level_prior_scale: scale of the half-Cauchy prior on σ_level/σ_irregular (the level's daily
            sd as a fraction of the noise sd); heavy-tailed, so the data decide when they can.
        level_grid: number of log-spaced ratios σ_level/σ_irregular in [0.001, 3] the fit averages
            over; each costs one Kalman filter pass.
        weekly: weekly seasonality; None = on for daily data with at least 28 pre-period days.
        yearly: yearly seasonality (trigonometric); None = on only with at least 730 pre-period days.
        yearly_harmonics: number of harmonics of the yearly seasonality.
        min_pre_periods: fewer pre-period observations than this gives an untrusted, empty result.
        diagnostics: run the held-out fit, Ljung–Box and leak checks (the placebo calibration runs
            on every fit, since it can widen the interval).
        holdout_days: length of the held-out stretch at the end of the pre-period; None = the
            post-period length, at most a quarter of the pre-period.
        placebo_min_windows: fewer placebo windows than this (each as long as the post-period, inside
            the pre-period) → the fit is "unchecked" and its interval is not calibrated.
        placebo_max_factor: a placebo calibration factor above this → untrusted (the interval is
            widened by the factor either way).
        holdout_min_coverage: held-out pointwise interval coverage below this → untrusted.
        holdout_alpha: the held-out stretch's average gap significant at this level → untrusted.
        ljung_box_lags: lags of the Ljung–Box test on the standardized one-step errors.
        ljung_box_alpha: Ljung–Box p-value below this → untrusted (autocorrelation the model misses).
        leak_z: a control whose shift at the intervention is this many robust standard deviations
            away from its pre-period shifts is taken to be touched by the treatment → untrusted.
        leak_window: days either side of the intervention compared by the leak check (capped by the
            post-period length and a quarter of the pre-period).
    """

    alpha: float = 0.05
    seed: int = 0
    n_paths: int = 1000
    horizon_cap_days: int = 180
    level_prior_scale: float = 0.1
    level_grid: int = 25
    weekly: bool | None = None
    yearly: bool | None = None
    yearly_harmonics: int = 2
    min_pre_periods: int = 21
    diagnostics: bool = True
    holdout_days: int | None = None
    placebo_min_windows: int = 3
    placebo_max_factor: float = 2.0
    holdout_min_coverage: float = 0.5
    holdout_alpha: float = 0.01
    ljung_box_lags: int = 14
    ljung_box_alpha: float = 1e-6
    leak_z: float = 3.0
    leak_window: int = 28

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ParameterError(f"alpha must be in (0, 1); got {self.alpha}")
        if self.n_paths < 100:
            raise ParameterError(f"n_paths must be at least 100; got {self.n_paths}")
        if self.horizon_cap_days < 1:
            raise ParameterError(f"horizon_cap_days must be at least 1; got {self.horizon_cap_days}")
        if self.level_prior_scale <= 0:
            raise ParameterError(f"level_prior_scale must be > 0; got {self.level_prior_scale}")
        if self.level_grid < 5:
            raise ParameterError(f"level_grid must be at least 5; got {self.level_grid}")
        if self.placebo_min_windows < 1 or self.placebo_max_factor <= 1:
            raise ParameterError("placebo_min_windows must be at least 1 and placebo_max_factor above 1")
        if self.min_pre_periods < 8:
            raise ParameterError(f"min_pre_periods must be at least 8; got {self.min_pre_periods}")


# --------------------------------------------------------------------------------------------------
# result


@dataclass(frozen=True)
class TSResult:
    """The effect of an intervention on a time series, with its verdict.

    Attributes:
        method: "structural" or "its".
        alpha: 1 − confidence level of the intervals.
        seed: seed of the simulated paths (None for ITS, which does not simulate).
        trusted: whether the diagnostics support using the estimate.
        reason: why it is not trusted (every failed check, "; "-joined), or None.
        effect_avg: average daily effect over the attributable post-period (actual − counterfactual).
        ci_avg: [lo, hi] interval of ``effect_avg``.
        effect_cum: cumulative effect over the attributable post-period.
        ci_cum: [lo, hi] interval of ``effect_cum`` (from joint paths).
        effect_rel: cumulative effect ÷ counterfactual total (a fraction; 0.05 = +5 %).
        ci_rel: [lo, hi] interval of ``effect_rel``.
        p_value: two-sided p-value of "no effect" on the cumulative gap (simulation tail area for
            the structural model, Newey–West t test for ITS).
        pre_period_fit: held-out fit of the pre-period: ``holdout_days``, ``mape`` (fraction),
            ``coverage`` (share of held-out days inside the pointwise interval), ``rmse``.
        intervention: the first day of the (latest) intervention window.
        post_start: first attributed day.
        post_end: last attributed day (the horizon cap or the window end, whichever is earlier).
        horizon_capped: the post-period ran past ``horizon_cap_days`` and was cut; re-validate.
        n_pre: observations the counterfactual was fitted on.
        n_post: attributed post-period days with an observed actual value.
        controls: control series used as regressors.
        model: description of the fitted model (components, parameters, level-variance prior).
        diagnostics: each check's figures and whether it passed.
        warnings: notes that do not by themselves make the estimate untrusted.
        inference: "simulation" (structural) or "newey-west" (ITS).
        windows: with several intervention windows, one result per window (this result's top-level
            figures are the latest window's); empty for a single window.
        dates: the attributed post-period dates (for to_frame / gap_between).
        actual: actual values on ``dates``.
        counterfactual: point forecast of the counterfactual on ``dates``.
        paths: simulated counterfactual paths, shape (n_paths, len(dates)); None for ITS.
        cf_sd: pointwise standard error of the counterfactual when there are no paths (ITS).
        cum_sd: standard error of the cumulative effect for each prefix (ITS).
        gap_cov: covariance of the pointwise effects (ITS), for sums over sub-periods.
    """

    method: str
    alpha: float
    seed: int | None
    trusted: bool
    reason: str | None
    effect_avg: float | None = None
    ci_avg: tuple[float, float] | None = None
    effect_cum: float | None = None
    ci_cum: tuple[float, float] | None = None
    effect_rel: float | None = None
    ci_rel: tuple[float, float] | None = None
    p_value: float | None = None
    pre_period_fit: dict | None = None
    intervention: pd.Timestamp | None = None
    post_start: pd.Timestamp | None = None
    post_end: pd.Timestamp | None = None
    horizon_capped: bool = False
    n_pre: int = 0
    n_post: int = 0
    controls: tuple[str, ...] = ()
    model: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    inference: str = "simulation"
    windows: tuple["TSResult", ...] = ()
    dates: pd.DatetimeIndex | None = field(default=None, repr=False, compare=False)
    actual: np.ndarray | None = field(default=None, repr=False, compare=False)
    counterfactual: np.ndarray | None = field(default=None, repr=False, compare=False)
    paths: np.ndarray | None = field(default=None, repr=False, compare=False)
    cf_sd: np.ndarray | None = field(default=None, repr=False, compare=False)
    cum_sd: np.ndarray | None = field(default=None, repr=False, compare=False)
    gap_cov: np.ndarray | None = field(default=None, repr=False, compare=False)

    # ---- exports

    def to_dict(self) -> dict:
        """JSON-ready dict with the names of DESIGN.md (no NaN: missing figures are None)."""
        out = {
            **effect_fields(self),
            "intervention": clean(self.intervention),
            "post_period": [clean(self.post_start), clean(self.post_end)]
            if self.post_start is not None
            else None,
            "horizon_capped": bool(self.horizon_capped),
            "n_pre": int(self.n_pre),
            "n_post": int(self.n_post),
            "controls": list(self.controls),
            "model": clean(self.model),
            "diagnostics": clean(self.diagnostics),
            "warnings": list(self.warnings),
        }
        if self.windows:
            out["windows"] = [w.to_dict() for w in self.windows]
        return out

    def to_frame(self) -> pd.DataFrame:
        """Pointwise daily series of the attributed post-period (all windows, in date order).

        Columns: ``date, actual, counterfactual, lower, upper, effect, effect_lower, effect_upper,
        cum_effect, cum_lower, cum_upper`` (the cumulative band from joint paths, per window).
        """
        parts = self.windows or (self,)
        frames = [w._frame_one() for w in parts if w.dates is not None and len(w.dates)]
        if not frames:
            cols = ["date", "actual", "counterfactual", "lower", "upper", "effect", "effect_lower",
                    "effect_upper", "cum_effect", "cum_lower", "cum_upper"]
            return pd.DataFrame({c: [] for c in cols})
        return pd.concat(frames, ignore_index=True)

    def _frame_one(self) -> pd.DataFrame:
        a = self.alpha
        actual = np.asarray(self.actual, float)
        cf = np.asarray(self.counterfactual, float)
        obs = np.isfinite(actual)
        if self.paths is not None:
            lo, hi, cum_lo, cum_hi = self._bands
        else:
            z = stats.norm.ppf(1 - a / 2)
            lo, hi = cf - z * self.cf_sd, cf + z * self.cf_sd
            point = np.cumsum(np.where(obs, actual - cf, 0.0))
            cum_lo, cum_hi = point - z * self.cum_sd, point + z * self.cum_sd
        effect = actual - cf
        return pd.DataFrame(
            {
                "date": self.dates,
                "actual": actual,
                "counterfactual": cf,
                "lower": lo,
                "upper": hi,
                "effect": effect,
                "effect_lower": actual - hi,
                "effect_upper": actual - lo,
                "cum_effect": np.cumsum(np.where(obs, effect, 0.0)),
                "cum_lower": cum_lo,
                "cum_upper": cum_hi,
            }
        )

    @functools.cached_property
    def _bands(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The simulated paths' daily bands ``(lower, upper, cum_lower, cum_upper)`` at ``alpha``,
        once per result (a kept result's: as they were stored, FitCache)."""
        a = self.alpha
        actual = np.asarray(self.actual, float)
        obs = np.isfinite(actual)
        paths = self._simulated()
        lo, hi = _day_quantiles(paths.T, [a / 2, 1 - a / 2])
        # days × paths: each day's cumulative gaps contiguous for the sort (cumsum adds in the same order)
        gaps = np.where(obs, actual, 0.0)[:, None] - np.where(obs[:, None], paths.T, 0.0)
        cum_hi, cum_lo = _day_quantiles(np.cumsum(gaps, axis=0), [1 - a / 2, a / 2])
        return lo, hi, cum_lo, cum_hi

    def gap_between(self, start: Any, end: Any) -> tuple[float, float, tuple[float, float]]:
        """The counterfactual gap (actual − counterfactual, summed) over [start, end], inclusive.

        For the value layer: a month's incremental KPI. The interval and standard error come from
        the same joint paths as ``ci_cum`` (windows are simulated separately and combined path by
        path). Days outside the attributed period contribute nothing.

        Returns:
            (estimate, standard error, (lower, upper)) at the result's ``alpha``; (0, 0, (0, 0))
            when no attributed day falls in the range.
        """
        start, end = pd.Timestamp(start), pd.Timestamp(end)
        if end < start:
            raise ParameterError(f"gap_between: end {end.date()} is before start {start.date()}")
        sels = []
        for w in self.windows or (self,):
            if w.dates is None or not len(w.dates):
                sels.append(None)
                continue
            days = w._days if start.tz is None and end.tz is None else None
            if days is not None:  # the window's days as integers: the same selection without pandas
                sel = (days[0] >= start.as_unit("ns").value) & (days[0] <= end.as_unit("ns").value) & days[1]
            else:
                sel = (w.dates >= start) & (w.dates <= end) & np.isfinite(np.asarray(w.actual, float))
            sels.append(sel if sel.any() else None)
        # the selected days are every observed day between the first and the last selected one: periods
        # that select the same days (every month-end past the horizon cap) share one computation
        key = tuple(None if sel is None else (int(sel.argmax()), len(sel) - int(sel[::-1].argmax())) for sel in sels)
        if key not in self._gaps:
            self._gaps[key] = self._gap_of(sels)
        return self._gaps[key]

    @functools.cached_property
    def _gaps(self) -> dict:
        """:meth:`gap_between`'s answers by the days they sum (a valuation asks for some twenty periods)."""
        return {}

    def _gap_of(self, sels: list[np.ndarray | None]) -> tuple[float, float, tuple[float, float]]:
        total_point, total_paths, total_var, any_day = 0.0, None, 0.0, False
        for w, sel in zip(self.windows or (self,), sels):
            if sel is None:
                continue
            any_day = True
            act = np.asarray(w.actual, float)[sel]
            total_point += float(np.sum(act - np.asarray(w.counterfactual)[sel]))
            if w.paths is not None:
                g = act.sum() - w._simulated()[:, sel].sum(axis=1)  # (a view of a run of days would add in another order)
                total_paths = g if total_paths is None else total_paths + g[: len(total_paths)]
            else:
                # ITS: the variance of a sum of forecasts from the OLS covariance
                total_var += float(w._its_sum_var(np.asarray(sel)))
        if not any_day:
            return 0.0, 0.0, (0.0, 0.0)
        if total_paths is not None:
            se = float(np.std(total_paths, ddof=1))
            lo, hi = np.quantile(total_paths, [self.alpha / 2, 1 - self.alpha / 2])
            return total_point, se, (float(lo), float(hi))
        se = math.sqrt(total_var)
        z = stats.norm.ppf(1 - self.alpha / 2)
        return total_point, se, (float(total_point - z * se), float(total_point + z * se))

    @functools.cached_property
    def _days(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The attributed dates as nanoseconds and whether each has an actual value (for
        :meth:`gap_between`, asked some fifty periods per valuation); None for dates with a time zone."""
        if self.dates is None or getattr(self.dates, "tz", None) is not None:
            return None
        return pd.DatetimeIndex(self.dates).as_unit("ns").asi8, np.isfinite(np.asarray(self.actual, float))

    def _simulated(self) -> np.ndarray:
        """The simulated paths; a result restored from a kept one (:class:`FitCache`) computes them
        first, once, by fitting again (then every figure is checked to be the one it restored)."""
        paths = self.paths
        if isinstance(paths, _KeptPaths):
            full = paths.recompute()
            if full.to_dict() != self.to_dict():  # the key missed an input the figures depend on
                raise RuntimeError("a kept time-series result differs from the one fitted again from the same "
                                   "inputs; this is a bug in valuetrack (FitCache's result key)")
            self.__dict__["paths"] = paths = full.paths
        return paths

    def _its_sum_var(self, sel: np.ndarray) -> float:
        w = sel.astype(float)
        if self.gap_cov is None:
            return float(np.sum(np.asarray(self.cf_sd)[sel] ** 2))
        return float(w @ np.asarray(self.gap_cov) @ w)


def _empty_result(method: str, cfg: TSConfig, reason: str, **kw: Any) -> TSResult:
    return TSResult(method=method, alpha=cfg.alpha, seed=cfg.seed if method == "structural" else None,
                    trusted=False, reason=reason, inference="simulation" if method == "structural"
                    else "newey-west", **kw)


# --------------------------------------------------------------------------------------------------
# input handling


def _as_frame(data: pd.Series | pd.DataFrame, metric: str | None, controls: Sequence[str]) -> tuple[pd.DataFrame, str]:
    if isinstance(data, pd.Series):
        name = data.name if data.name is not None else "y"
        frame = data.to_frame(name=name)
        metric = name
    elif isinstance(data, pd.DataFrame):
        frame = data
        if metric is None:
            metric = str(frame.columns[0])
    else:
        raise ParameterError("data must be a pandas Series or DataFrame indexed by date")
    missing = [c for c in [metric, *controls] if c not in frame.columns]
    if missing:
        raise ValidationError(f"--controls: no column {missing[0]!r} in the data; columns are: "
                              + ", ".join(map(str, frame.columns)))
    frame = frame[[metric, *controls]].copy()
    idx = frame.index
    if not isinstance(idx, pd.DatetimeIndex):
        try:
            idx = pd.DatetimeIndex(pd.to_datetime(idx))
        except Exception:
            raise ValidationError("the series must be indexed by dates") from None
    frame.index = idx
    if idx.has_duplicates:
        d = idx[idx.duplicated()][0]
        raise ValidationError(f"--date-col: date {d.date()} appears more than once; aggregate to one row per day first")
    frame = frame.sort_index()
    for c in frame.columns:
        if frame[c].dtype != np.float64:  # (already floats: nothing to coerce)
            frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    # a regular calendar: daily if the data is daily, else the inferred spacing
    step = _infer_step(frame.index)
    if step is not None and len(frame) > 2:
        full = pd.date_range(frame.index[0], frame.index[-1], freq=step)
        if len(full) <= 3 * len(frame):
            frame = frame.reindex(full)
    return frame, metric


def _infer_step(idx: pd.DatetimeIndex) -> pd.Timedelta | None:
    if len(idx) < 3:
        return None
    diffs = np.diff(np.asarray(idx.values, dtype="datetime64[ns]").astype(np.int64))
    step = int(np.min(diffs[diffs > 0])) if (diffs > 0).any() else 0
    if step <= 0:
        return None
    return pd.Timedelta(step, unit="ns")


def _windows_from(intervention: Any, interventions: Iterable | None, index: pd.DatetimeIndex) -> list[tuple[pd.Timestamp, pd.Timestamp | None]]:
    if interventions is None:
        if intervention is None:
            raise ParameterError("give intervention=DATE or interventions=[(start, end_or_None), ...]")
        interventions = [(intervention, None)]
    out = []
    for item in interventions:
        if isinstance(item, (tuple, list)):
            start, end = (item[0], item[1] if len(item) > 1 else None)
        else:
            start, end = item, None
        try:
            s = pd.Timestamp(start)
            e = pd.Timestamp(end) if end is not None else None
        except Exception:
            raise ValidationError(f"--intervention: {start!r} is not a date") from None
        if e is not None and e < s:
            raise ValidationError(f"--intervention: window end {e.date()} is before its start {s.date()}")
        out.append((s, e))
    out.sort(key=lambda w: w[0])
    for (s1, e1), (s2, _) in zip(out, out[1:]):
        if e1 is not None and e1 >= s2:
            raise ValidationError(f"--intervention: windows starting {s1.date()} and {s2.date()} overlap")
    return out


# --------------------------------------------------------------------------------------------------
# the structural model


@dataclass
class _Spec:
    weekly: bool
    yearly: bool
    harmonics: int


def _build_uc(y: np.ndarray, X: np.ndarray | None, spec: _Spec):
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    kwargs: dict[str, Any] = {"level": "llevel"}
    if spec.weekly:
        kwargs.update(seasonal=7, stochastic_seasonal=False)
    if spec.yearly:
        kwargs.update(freq_seasonal=[{"period": 365.25, "harmonics": spec.harmonics}],
                      stochastic_freq_seasonal=[False])
    if X is not None and X.shape[1]:
        kwargs.update(exog=X, mle_regression=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return UnobservedComponents(y, **kwargs)


@dataclass
class _Fitted:
    """A structural model on standardized pre-period data, averaged over level/irregular ratios.

    Attributes:
        q: the ratios σ²_level/σ²_irregular that carry posterior weight, shape (K,).
        weight: their posterior weights (sum 1).
        scale: σ²_irregular maximising the likelihood at each q (profiled out), shape (K,).
        n: observations behind the likelihood (after the filter's burn-in).
        at: the time indices whose predicted states were kept.
        a: predicted state means at ``at``, shape (K, len(at), m).
        P: predicted state covariances at ``at`` for σ²_irregular = 1, shape (K, len(at), m, m).
        errors: standardized one-step errors at the most probable ratio (for Ljung–Box).
        T: the transition matrix (m, m) (time-invariant).
        R: the level's column of the selection matrix (m,).
    """

    q: np.ndarray
    weight: np.ndarray
    scale: np.ndarray
    n: int
    at: tuple[int, ...]
    a: np.ndarray
    P: np.ndarray
    errors: np.ndarray
    T: np.ndarray
    R: np.ndarray

    def state(self, t: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        j = [self.at.index(int(x)) for x in np.atleast_1d(t)]
        return (self.a[:, j[0]], self.P[:, j[0]]) if np.ndim(t) == 0 else (self.a[:, j], self.P[:, j])

    def system(self) -> tuple[np.ndarray, np.ndarray]:
        """Transition T (m, m) and the level's column of the selection matrix R (m,)."""
        return self.T, self.R


class FitCache:
    """What the Kalman filter passes of unchanged pre-periods gave, kept between valuations (D52).

    A structural fit filters its pre-period once per ratio of the grid (25 passes), and again for
    the held-out check. On the next day's valuation of a model already live, the pre-period has
    not changed, so neither has what those passes produce. An entry, keyed by a sha256 of
    everything a fit reads (the standardized pre-period series and controls, the model's
    components, the grid and prior settings, the versions of valuetrack, numpy, scipy and
    statsmodels), holds every ratio's log-likelihood and scale and the kept ratios' predicted
    states at the days the fit was asked for. A fit whose key matches and asks for the same days
    runs no filter pass; one that asks for other days (the post-period, hence the placebo windows,
    grew) filters only the ratios with weight (w ≥ 1e-4). Either way every number is the one a
    fit from scratch gives (the same passes, or their stored results, bit for bit). An entry that
    does not match its key or cannot be read is ignored.

    It also keeps whole results (D65). A model past its horizon cap attributes the same days every
    day: the same pre-period, post-period and settings give the same result, paths and all. A
    single-window structural result is kept under a sha256 of everything its fit window reads
    (the dates and values of the metric and the controls up to the end of the attributed period,
    the window, the settings, the versions): its figures, its daily bands and every sum over days
    the valuation asked for (``gap_between``), not its paths (1.4 MB). A fit whose key matches is
    restored from it without a filter pass or a simulated path. Should a valuation ask for a sum
    the kept result lacks, the result is fitted again from its inputs (the paths), checked to give
    the very figures it restored, and answers from them. :meth:`keep` packs the results once the
    valuation has asked its sums.

    ``stored``: key → payload as read from the app database. After the fits, ``used`` holds every
    key a fit used: its payload when new or changed, None when the stored one is still right;
    ``passes`` counts the filter passes run and ``restored`` the results restored.
    """

    def __init__(self, stored: dict[str, bytes] | None = None) -> None:
        self.stored = dict(stored or {})
        self.used: dict[str, bytes | None] = {}
        self.passes = 0
        self.restored = 0
        self.asked: list[str] = []  # the fit keys asked for, in order (a kept result names those behind it)
        self._results: dict[str, tuple[TSResult, int | None, tuple[str, ...]]] = {}

    def keep(self) -> None:
        """Pack the results fitted or restored since the last call, with the sums asked of them."""
        for key, (result, asked, fits) in self._results.items():
            if asked is not None and len(_path_sums(result)) == asked and not isinstance(result.paths, np.ndarray):
                self.used.setdefault(key, None)  # restored and nothing new asked: the stored entry stands
            else:
                try:
                    self._put(key, _pack_result(key, result, fits))
                except Exception:  # noqa: BLE001 - a result that cannot be packed is simply not kept
                    log.debug("a structural result could not be kept", exc_info=True)
                    continue
            for k in fits:  # the fits behind it stay kept (a result fitted again uses them)
                self.used.setdefault(k, None)
        self._results.clear()

    def _get(self, key: str) -> bytes | None:
        new = self.used.get(key)
        return new if new is not None else self.stored.get(key)

    def _put(self, key: str, payload: bytes) -> None:
        self.used[key] = None if self.stored.get(key) == payload else payload


_FIT_FORMAT = 1  # the payload's layout; a change makes every stored entry a miss


def _fit_key(y: np.ndarray, X: np.ndarray | None, spec: _Spec, cfg: TSConfig) -> str:
    import scipy
    import statsmodels

    from valuetrack import __version__

    h = hashlib.sha256(json.dumps({
        "fit": "structural", "format": _FIT_FORMAT,
        "versions": [__version__, np.__version__, scipy.__version__, statsmodels.__version__],
        "spec": [spec.weekly, spec.yearly, spec.harmonics], "grid": cfg.level_grid,
        "prior": cfg.level_prior_scale, "shape": [len(y), 0 if X is None else X.shape[1]]}).encode())
    h.update(np.ascontiguousarray(y, dtype=float).tobytes())
    if X is not None:
        h.update(np.ascontiguousarray(X, dtype=float).tobytes())
    return h.hexdigest()


def _grid(cfg: TSConfig) -> tuple[np.ndarray, np.ndarray]:
    """The ratios r = σ_level/σ_irregular and their log prior (half-Cauchy on r, density on log r)."""
    r = np.exp(np.linspace(math.log(1e-3), math.log(3.0), cfg.level_grid))
    return r, np.log(r) - np.log1p((r / cfg.level_prior_scale) ** 2)


def _weights(log_prior: np.ndarray, llf: np.ndarray) -> np.ndarray:
    log_w = log_prior + llf if np.isfinite(llf).any() else log_prior  # no likelihood: the prior alone
    w = np.exp(log_w - np.max(log_w))
    return w / w.sum()


_STATES_MAX_BYTES = 2**20
"""Kept states larger than this are not stored (only the likelihoods): a short post-period has a
placebo window starting nearly every day, and its days move with the next day anyway."""


def _pack(key: str, llf: np.ndarray, scale: np.ndarray, fit: _Fitted) -> bytes:
    a, P, at = fit.a, fit.P, fit.at
    if a.nbytes + P.nbytes > _STATES_MAX_BYTES:
        a, P, at = a[:, :0], P[:, :0], ()
    buf = io.BytesIO()
    np.savez(buf, key=np.array(key), llf=llf, scale=scale, n=np.array(fit.n), at=np.array(at, dtype=np.int64),
             a=a, P=P, errors=fit.errors, T=fit.T, R=fit.R)
    return buf.getvalue()


def _unpack(payload: bytes | None, key: str, n_grid: int, n_obs: int) -> dict | None:
    """A stored entry's arrays, or None when it is missing, unreadable or not this key's."""
    if payload is None:
        return None
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            e = {k: z[k] for k in z.files}
        m = e["T"].shape[0]
        K, n_at = e["a"].shape[:2]
        ok = (str(e["key"]) == key and e["llf"].shape == e["scale"].shape == (n_grid,)
              and e["T"].shape == (m, m) and e["R"].shape == (m,) and e["a"].shape == (K, n_at, m)
              and e["P"].shape == (K, n_at, m, m) and e["errors"].shape == (n_obs,) and e["at"].shape == (n_at,))
        return e if ok else None
    except Exception:  # noqa: BLE001 - a corrupt entry is ignored, never trusted
        return None


_RESULT_FORMAT = 1  # the kept result's layout; a change makes every stored one a miss
_RESULT_FIELDS = ("method", "alpha", "seed", "trusted", "reason", "effect_avg", "ci_avg", "effect_cum", "ci_cum",
                  "effect_rel", "ci_rel", "p_value", "pre_period_fit", "horizon_capped", "n_pre", "n_post", "controls",
                  "model", "diagnostics", "warnings", "inference")
_RESULT_TUPLES = ("ci_avg", "ci_cum", "ci_rel", "controls", "warnings")


def _result_key(frame: pd.DataFrame, metric: str, controls: tuple[str, ...], start: Any, stop: Any, t0: int,
                t_end: int, step: Any, horizon_capped: bool, cfg: TSConfig) -> str:
    """sha256 of everything a single window's structural fit reads (FitCache, D65): the settings,
    the window, the versions, and the dates, metric and controls up to the attributed period's end."""
    import dataclasses

    import scipy
    import statsmodels

    from valuetrack import __version__

    idx = frame.index
    h = hashlib.sha256(json.dumps({
        "result": "structural", "format": _RESULT_FORMAT,
        "versions": [__version__, np.__version__, pd.__version__, scipy.__version__, statsmodels.__version__],
        "config": dataclasses.asdict(cfg), "metric": metric, "controls": list(controls), "window": [str(start), str(stop)],
        "t0": t0, "t_end": t_end, "step": str(step), "capped": bool(horizon_capped), "index": str(idx.dtype)},
        sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(idx[:t_end].asi8).tobytes())
    for column in (metric, *controls):
        h.update(np.ascontiguousarray(frame[column].to_numpy(float)[:t_end]).tobytes())
    return h.hexdigest()


def _plain(value: Any) -> Any:
    """JSON for a kept result's fields (numpy scalars as Python numbers)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not kept")


def _pack_result(key: str, result: TSResult, fits: tuple[str, ...]) -> bytes:
    lo, hi, cum_lo, cum_hi = result._bands
    dates = pd.DatetimeIndex(result.dates)
    meta = {"fields": {k: getattr(result, k) for k in _RESULT_FIELDS},
            "stamps": {k: (getattr(result, k).isoformat(), getattr(result, k).unit) if getattr(result, k) is not None
                       else None for k in ("intervention", "post_start", "post_end")},
            "dates": [str(dates.dtype), dates.freqstr], "fits": list(fits),
            "gaps": [[list(k[0]), g[0], g[1], list(g[2])] for k, g in _path_sums(result).items()]}
    buf = io.BytesIO()
    np.savez(buf, key=np.array(key), meta=np.array(json.dumps(meta, default=_plain)), dates=dates.asi8,
             actual=np.asarray(result.actual, float), counterfactual=np.asarray(result.counterfactual, float),
             lo=lo, hi=hi, cum_lo=cum_lo, cum_hi=cum_hi)
    return buf.getvalue()


def _path_sums(result: TSResult) -> dict:
    """A single window's answers to ``gap_between`` that summed simulated paths (a period without
    an attributed day is answered without them)."""
    return {k: g for k, g in result._gaps.items() if k[0] is not None}


class _KeptPaths:
    """In place of a restored result's paths: :meth:`TSResult._simulated` computes them with ``recompute``."""

    __slots__ = ("recompute",)

    def __init__(self, recompute: Any) -> None:
        self.recompute = recompute


def _unpack_result(payload: bytes | None, key: str, recompute: Any) -> tuple[TSResult, tuple[str, ...]] | None:
    """A kept result (and the fits behind it), or None when it is missing, unreadable or not this key's."""
    if payload is None:
        return None
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            e = {k: z[k] for k in z.files}
        if str(e["key"]) != key:
            return None
        meta = json.loads(str(e["meta"]))
        fields = dict(meta["fields"])
        for k in _RESULT_TUPLES:
            if fields[k] is not None:
                fields[k] = tuple(fields[k])
        stamps = {k: pd.Timestamp(v[0]).as_unit(v[1]) if v is not None else None for k, v in meta["stamps"].items()}
        dtype, freq = meta["dates"]
        dates = pd.DatetimeIndex(e["dates"].astype(np.int64).view(dtype), freq=freq)
        n = len(dates)
        arrays = [e[k] for k in ("actual", "counterfactual", "lo", "hi", "cum_lo", "cum_hi")]
        if any(a.shape != (n,) for a in arrays):
            return None
        result = TSResult(**fields, **stamps, dates=dates, actual=arrays[0], counterfactual=arrays[1],
                          paths=_KeptPaths(recompute))
        result.__dict__["_bands"] = tuple(arrays[2:])
        result.__dict__["_gaps"] = {((int(k[0]), int(k[1])),): (g, se, (lo, hi)) for k, g, se, (lo, hi) in meta["gaps"]}
        return result, tuple(meta["fits"])
    except Exception:  # noqa: BLE001 - a corrupt entry is ignored, never trusted
        return None


def _fit_uc(y: np.ndarray, X: np.ndarray | None, spec: _Spec, cfg: TSConfig, at: Sequence[int],
            cache: FitCache | None = None) -> _Fitted:
    """Fit by averaging over a log-spaced grid of r = σ_level/σ_irregular in [0.001, 3].

    Each r is weighted by its profile likelihood (σ²_irregular concentrated out; under the
    scale-invariant prior on σ²_irregular this is proportional to its marginal likelihood) times a
    half-Cauchy(``level_prior_scale``) prior on r, as a density on log r (the grid's spacing). One
    concentrated Kalman filter pass per grid point; the predicted states at ``at`` are kept.
    With a ``cache`` entry for the same inputs, the stored passes' results are used (see FitCache).
    """
    r, log_prior = _grid(cfg)
    at = tuple(int(t) for t in at)
    key = _fit_key(y, X, spec, cfg) if cache is not None else ""
    if cache is not None:
        cache.asked.append(key)
    entry = _unpack(cache._get(key), key, len(r), len(y)) if cache is not None else None
    if entry is not None:
        llf, scale = entry["llf"], entry["scale"]
        w = _weights(log_prior, llf)
        keep = np.flatnonzero(w >= 1e-4)
        if tuple(entry["at"].tolist()) == at and len(keep) == len(entry["a"]):
            fit = _Fitted(q=r[keep] ** 2, weight=w[keep] / w[keep].sum(), scale=scale[keep], n=int(entry["n"]), at=at,
                          a=entry["a"], P=entry["P"], errors=entry["errors"], T=entry["T"], R=entry["R"])
            cache.used.setdefault(key, None)  # None: the stored entry stands (a new one: kept)
            return fit
        passes = keep  # the likelihoods are known: filter only the ratios that carry weight
    else:
        llf, scale = np.full(len(r), -np.inf), np.ones(len(r))
        passes = np.arange(len(r))
    mod = _build_uc(y, X, spec)
    ssm = mod.ssm
    states, covs, errors = {}, {}, {}
    ssm.filter_concentrated = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k in passes:
                mod.update(np.array([1.0, r[k] * r[k]]))
                fr = ssm.filter()
                s = float(fr.scale)
                if entry is None and np.isfinite(fr.llf) and s > 0:
                    llf[k], scale[k] = float(fr.llf), s
                states[k] = np.array(fr.predicted_state[:, at]).T
                covs[k] = np.moveaxis(np.array(fr.predicted_state_cov[:, :, at]), 2, 0) / (s if s > 0 else 1.0)
                errors[k] = np.asarray(fr.standardized_forecasts_error)[0]
    finally:
        ssm.filter_concentrated = False
    if cache is not None:
        cache.passes += len(passes)
    w = _weights(log_prior, llf)
    keep = np.flatnonzero(w >= 1e-4)
    burn = int(ssm.loglikelihood_burn)
    T = np.array(ssm["transition"])
    R = np.array(ssm["selection"])
    fit = _Fitted(q=r[keep] ** 2, weight=w[keep] / w[keep].sum(), scale=scale[keep],
                  n=max(3, int(np.isfinite(y[burn:]).sum())), at=at, a=np.stack([states[k] for k in keep]),
                  P=np.stack([covs[k] for k in keep]), errors=errors[int(np.argmax(w))],
                  T=T[:, :, 0] if T.ndim == 3 else T, R=(R[:, :, 0] if R.ndim == 3 else R)[:, 0])
    if cache is not None:
        cache._put(key, _pack(key, llf, scale, fit))
    return fit


def _allocate(weight: np.ndarray, n: int) -> np.ndarray:
    """n items split in proportion to ``weight`` (largest remainder: deterministic, sums to n)."""
    raw = weight * n
    per = np.floor(raw).astype(int)
    per[np.argsort(per - raw)[: n - per.sum()]] += 1
    return per


def _simulate(fit: _Fitted, design: np.ndarray, t0: int, horizon: int, n_paths: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Joint paths of the series for t0 .. t0+horizon-1 given observations before t0.

    ``design`` has shape (1, m, ≥ t0+horizon) (the time-varying design, exog included). Each path
    takes a ratio q by its weight, σ²_irregular from its posterior given q (n·ŝ/χ²_n), the state at
    t0 from the filter, then the level's and the observation's noise day by day. Returns
    (paths (n_paths, horizon), mean forecast averaged over the ratios (horizon,)).
    """
    T, R = fit.system()
    m = T.shape[0]
    Z = np.asarray(design)[0, :, t0:t0 + horizon].T  # (horizon, m)
    a, P = fit.state(t0)
    which = np.repeat(np.arange(len(fit.q)), _allocate(fit.weight, n_paths))
    sd = np.sqrt(fit.n * fit.scale[which] / rng.chisquare(fit.n, n_paths))
    chol = _psd_chol(P)
    alpha = a[which] + sd[:, None] * np.einsum("pij,pj->pi", chol[which], rng.standard_normal((n_paths, m)))
    level_sd = sd * np.sqrt(fit.q[which])
    # the level noise enters the states R selects (adding R's zeros elsewhere changes no number)
    moved = np.flatnonzero(R)
    paths = np.empty((n_paths, horizon))
    A, mean_k = a.copy(), np.empty((len(fit.q), horizon))
    for h in range(horizon):
        paths[:, h] = alpha @ Z[h] + sd * rng.standard_normal(n_paths)
        mean_k[:, h] = A @ Z[h]
        if h + 1 < horizon:
            alpha = alpha @ T.T
            step = level_sd * rng.standard_normal(n_paths)
            for j in moved:
                alpha[:, j] += step * R[j]
            A = A @ T.T
    return paths, fit.weight @ mean_k


def _placebo_z(fit: _Fitted, design: np.ndarray, ys: np.ndarray, starts: Sequence[int], length: int) -> np.ndarray:
    """Standardized gap (actual − forecast total) / sd of placebo windows inside the pre-period.

    Exact Gaussian moments of each window's total given the data before its start, per ratio q,
    then mixed over the ratios' weights. With G_h = o_h·Z_h + G_{h+1}·T (o_h: day h observed), the
    total is G_0·α_s + Σ_{h≥1} G_h·R·η + Σ o_h·ε, so its variance is
    σ²·(G_0 P G_0' + q Σ_{h≥1} (G_h R)² + Σ o_h). Windows with less than half their days observed
    are left out (inside an earlier intervention window).
    """
    T, R = fit.system()
    s = np.asarray(starts, int)
    idx = s[:, None] + np.arange(length)[None, :]
    obs = np.isfinite(ys[idx])
    Zw = np.moveaxis(np.asarray(design)[0][:, idx], 0, 2)  # (windows, length, m)
    G, level_sum = np.zeros((len(s), T.shape[0])), np.zeros(len(s))
    for h in range(length - 1, -1, -1):
        G = obs[:, h, None] * Zw[:, h] + G @ T
        if h:
            level_sum += (G @ R) ** 2
    a, P = fit.state(s)  # (K, W, m), (K, W, m, m)
    s2 = fit.n * fit.scale / max(fit.n - 2, 1)  # posterior mean of σ²_irregular given q
    mean_k = np.einsum("kwm,wm->kw", a, G)
    var_k = s2[:, None] * (np.einsum("wi,kwij,wj->kw", G, P, G) + fit.q[:, None] * level_sum + obs.sum(1))
    mean = fit.weight @ mean_k
    var = fit.weight @ (var_k + mean_k**2) - mean**2
    act = np.where(obs, ys[idx], 0.0).sum(1)
    z = (act - mean) / np.sqrt(np.maximum(var, 1e-300))
    return z[obs.sum(1) >= length / 2]


def _day_quantiles(days: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """``np.quantile`` of each row of ``days`` (a day's simulated values), shape (len(q), rows).

    The same numbers as ``np.quantile(days, q, axis=1)``, which depend only on the order statistics:
    each row is sorted first (contiguous, numpy's vectorised sort), so the quantile's partition finds
    them in place; about three times faster than partitioning the unsorted paths day by day.
    """
    s = np.array(days, dtype=float, order="C")  # a copy: sorted in place
    s.sort(axis=1)
    return np.quantile(s, q, axis=1)


def _placebo_starts(t0: int, length: int, first: int) -> list[int]:
    """Starts of back-to-back placebo windows of ``length`` ending at t0, none before ``first``."""
    return list(range(t0 - length, first - 1, -length)) if length >= 1 else []


def _psd_chol(P: np.ndarray) -> np.ndarray:
    """A square root L (L L' = P) of each symmetric PSD matrix of a stack (..., m, m), by eigh."""
    P = (P + np.swapaxes(P, -1, -2)) / 2
    w, V = np.linalg.eigh(P)  # a stack: LAPACK once per matrix, as one matrix at a time
    return V * np.sqrt(np.maximum(w, 0.0))[..., None, :]


def _ljung_box(e: np.ndarray, lags: int) -> tuple[float, float]:
    e = e[np.isfinite(e)]
    n = len(e)
    lags = min(lags, max(1, n // 5))
    if n < 10:
        return float("nan"), float("nan")
    e = e - e.mean()
    den = float(e @ e)
    if den <= 0:
        return float("nan"), float("nan")
    q = 0.0
    for k in range(1, lags + 1):
        rk = float(e[k:] @ e[:-k]) / den
        q += rk * rk / (n - k)
    q *= n * (n + 2)
    return q, float(stats.chi2.sf(q, lags))


def check_leak(control: np.ndarray, t0: int, window: int) -> dict:
    """Did a control series move at the intervention? (treatment leaking into a control).

    Compares the shift of the control's mean across the intervention (``window`` days after vs.
    before) with every shift of the same length inside the pre-period, on a robust scale (median
    and MAD), so random walks, seasonality and occasional breaks in the control are allowed for.

    Returns:
        dict with ``shift``, ``z`` (robust z of the shift; None when it cannot be judged) and ``window``.
    """
    x = np.asarray(control, float)
    pre = x[:t0]
    w = int(window)
    if w < 3 or t0 < 3 * w or t0 + w > len(x):
        return {"shift": None, "z": None, "window": w}
    post_mean = np.nanmean(x[t0:t0 + w])
    pre_mean = np.nanmean(pre[t0 - w:])
    shift = post_mean - pre_mean
    # all same-length shifts within the pre-period (rolling means via cumulative sums)
    p = np.where(np.isfinite(pre), pre, np.nanmean(pre))
    c = np.concatenate([[0.0], np.cumsum(p)])
    means = (c[w:] - c[:-w]) / w  # mean of p[i:i+w] at index i
    ref = means[w:] - means[:-w]  # mean after i+w minus mean before
    med = float(np.median(ref))
    mad = float(np.median(np.abs(ref - med))) * 1.4826
    scale = mad if mad > 0 else float(np.std(ref)) or float("nan")
    z = (shift - med) / scale if scale and np.isfinite(scale) else float("nan")
    return {"shift": float(shift), "z": num(z), "window": w}


def _leak_series(X: np.ndarray, j: int, t0: int) -> np.ndarray:
    """Control j net of the other controls (pre-period OLS with an intercept), so that the common
    movement of all controls (demand, season) does not hide a shift in one of them."""
    x = X[:, j]
    if X.shape[1] < 2:
        return x
    others = np.delete(X, j, axis=1)
    A = np.column_stack([np.ones(len(x)), others])
    beta, *_ = np.linalg.lstsq(A[:t0], x[:t0], rcond=None)
    return x - A @ beta


def _summarise(paths: np.ndarray, actual: np.ndarray, mean_cf: np.ndarray, alpha: float) -> dict:
    obs = np.isfinite(actual)
    act = actual[obs]
    P = paths[:, obs]
    n = int(obs.sum())
    if n == 0:
        return {}
    cf_sum_paths = P.sum(axis=1)
    gap_paths = act.sum() - cf_sum_paths
    cf_sum = float(mean_cf[obs].sum())
    eff_cum = float(act.sum() - cf_sum)
    q = [alpha / 2, 1 - alpha / 2]
    lo, hi = np.quantile(gap_paths, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_paths = gap_paths / cf_sum_paths
    rel_ok = np.all(cf_sum_paths > 0) or np.all(cf_sum_paths < 0)
    rlo, rhi = np.quantile(rel_paths, q) if rel_ok else (np.nan, np.nan)
    n_paths = len(gap_paths)
    upper = (1 + np.sum(cf_sum_paths >= act.sum())) / (n_paths + 1)
    lower = (1 + np.sum(cf_sum_paths <= act.sum())) / (n_paths + 1)
    p = min(1.0, 2 * min(upper, lower))
    return {
        "effect_avg": eff_cum / n, "ci_avg": (lo / n, hi / n),
        "effect_cum": eff_cum, "ci_cum": (float(lo), float(hi)),
        "effect_rel": eff_cum / cf_sum if cf_sum != 0 and rel_ok else None,
        "ci_rel": (float(rlo), float(rhi)) if rel_ok else None,
        "p_value": float(p), "n": n, "sd_cum": float(np.std(gap_paths, ddof=1)),
    }


def _choose_spec(cfg: TSConfig, n_pre: int, daily: bool) -> _Spec:
    weekly = cfg.weekly if cfg.weekly is not None else (daily and n_pre >= 28)
    yearly = cfg.yearly if cfg.yearly is not None else (daily and n_pre >= 730)
    return _Spec(weekly=bool(weekly), yearly=bool(yearly), harmonics=cfg.yearly_harmonics)


def fit_structural(
    data: pd.Series | pd.DataFrame,
    *,
    intervention: Any = None,
    controls: Sequence[str] = (),
    config: TSConfig | None = None,
    metric: str | None = None,
    interventions: Iterable | None = None,
    cache: FitCache | None = None,
) -> TSResult:
    """Estimate the effect of an intervention with a structural counterfactual.

    Args:
        data: a Series, or a DataFrame with the metric and control columns, indexed by date.
        intervention: first day the model was live. Use ``interventions`` for several windows.
        controls: columns of ``data`` used as regressors (unaffected by the model!).
        config: settings; defaults to ``TSConfig()``.
        metric: the column of ``data`` to explain (default: the first column).
        interventions: ``[(start, end_or_None), ...]`` for relaunches. Each window's counterfactual
            is "no model": it is fitted on every day before the window's start that lies outside all
            earlier windows (days inside earlier windows are treated as missing), and a window
            without an end runs until the next window starts (or the data ends).
        cache: the Kalman filter results of earlier fits of the same pre-periods (FitCache): the
            same result, fewer filter passes; the entries used are left in ``cache.used``.

    Returns:
        TSResult; with several windows its top-level figures are the latest window's and
        ``windows`` holds each window's result.
    """
    cfg = config or TSConfig()
    controls = tuple(controls)
    frame, metric = _as_frame(data, metric, controls)
    wins = _windows_from(intervention, interventions, frame.index)
    results = []
    for i, (start, end) in enumerate(wins):
        nxt = wins[i + 1][0] if i + 1 < len(wins) else None
        stop = end if end is not None else (nxt - _DAY if nxt is not None else None)
        masked = [w for w in wins[:i]]
        results.append(_fit_one_window(frame, metric, controls, start, stop, masked, wins[i + 1:], cfg, cache,
                                       keep=len(wins) == 1))
    if len(results) == 1:
        return results[0]
    last = results[-1]
    return replace(last, windows=tuple(results))


def _fit_one_window(frame: pd.DataFrame, metric: str, controls: tuple[str, ...], start: pd.Timestamp,
                    stop: pd.Timestamp | None, earlier: list, later: list, cfg: TSConfig,
                    cache: FitCache | None = None, keep: bool = False) -> TSResult:
    idx = frame.index
    t0 = int(idx.searchsorted(start))
    base = dict(intervention=start, controls=controls)
    if t0 >= len(idx):
        raise ValidationError(f"--intervention: {start.date()} is after the last date of the data ({idx[-1].date()})")
    step = _infer_step(idx)
    daily = step is not None and step == _DAY
    # attributable horizon: the window end, the horizon cap, the data end
    t_end = len(idx) if stop is None else int(idx.searchsorted(stop, side="right"))
    cap_steps = cfg.horizon_cap_days if daily else (
        max(1, int(cfg.horizon_cap_days // max(step / _DAY, 1e-9))) if step is not None else cfg.horizon_cap_days)
    horizon_capped = t_end - t0 > cap_steps
    t_end = min(t_end, t0 + cap_steps)
    horizon = t_end - t0
    kept_key = None
    if cache is not None and keep:  # a single window: its result may be kept whole (FitCache, D65)
        kept_key = _result_key(frame, metric, controls, start, stop, t0, t_end, step, horizon_capped, cfg)
        found = _unpack_result(cache._get(kept_key), kept_key, lambda: _fit_one_window(
            frame, metric, controls, start, stop, earlier, later, cfg, cache))
        if found is not None:
            cache.restored += 1
            cache._results[kept_key] = (found[0], len(_path_sums(found[0])), found[1])
            return found[0]
        asked = len(cache.asked)

    y_all = frame[metric].to_numpy(float).copy()
    X_all = frame[list(controls)].to_numpy(float) if controls else None
    # days inside earlier windows are not "no model" days: missing for the fit
    for s, e in earlier:
        a = int(idx.searchsorted(s))
        b = int(idx.searchsorted(e, side="right")) if e is not None else t0
        y_all[a:min(b, t0)] = np.nan
    y_pre = y_all[:t0]
    n_pre = int(np.isfinite(y_pre).sum())
    actual = frame[metric].to_numpy(float)[t0:t_end]
    warn: list[str] = []
    if horizon_capped:
        warn.append(f"post-period longer than the {cfg.horizon_cap_days}-day horizon cap; days after "
                    f"{idx[t_end - 1].date()} are not attributed; re-validate the model on a new pre-period")
    base.update(post_start=idx[t0], post_end=idx[t_end - 1], horizon_capped=horizon_capped, n_pre=n_pre,
                n_post=int(np.isfinite(actual).sum()))
    if n_pre < cfg.min_pre_periods:
        return _empty_result("structural", cfg, f"pre-period too short: {n_pre} observations, need at least "
                             f"{cfg.min_pre_periods}", warnings=tuple(warn), **base)
    sd_pre = float(np.nanstd(y_pre, ddof=1))
    if not np.isfinite(sd_pre) or sd_pre <= 1e-12 * max(1.0, abs(float(np.nanmean(y_pre)))):
        return _empty_result("structural", cfg, "the pre-period series is constant: no variation to model",
                             warnings=tuple(warn), **base)
    if base["n_post"] == 0:
        return _empty_result("structural", cfg, "no observed values after the intervention", warnings=tuple(warn), **base)
    if X_all is not None:
        bad = [c for j, c in enumerate(controls) if not np.all(np.isfinite(X_all[:t_end, j]))]
        if bad:
            raise ValidationError(f"--controls: column {bad[0]!r} has missing values; controls must be complete")
        flat = [c for j, c in enumerate(controls) if np.nanstd(X_all[:t0, j]) <= 0]
        if flat:
            return _empty_result("structural", cfg, f"control {flat[0]!r} is constant in the pre-period",
                                 warnings=tuple(warn), **base)

    # standardize (numerical stability; the prior is defined relative to the pre-period sd)
    mu = float(np.nanmean(y_pre))
    ys = (y_all[:t_end] - mu) / sd_pre
    ys[t0:] = np.nan
    Xs = None
    if X_all is not None:
        xm, xsd = X_all[:t0].mean(axis=0), X_all[:t0].std(axis=0, ddof=1)
        Xs = (X_all[:t_end] - xm) / xsd
    spec = _choose_spec(cfg, n_pre, daily)
    rng = np.random.default_rng(cfg.seed)

    starts = _placebo_starts(t0, horizon, max(cfg.min_pre_periods, 28))
    fit = _fit_uc(ys[:t0], None if Xs is None else Xs[:t0], spec, cfg, at=[t0, *starts], cache=cache)
    full = _build_uc(ys, Xs, spec)  # only for its design matrices over the post-period
    design = np.asarray(full.ssm["design"])
    if design.ndim == 2:
        design = np.repeat(design[:, :, None], t_end, axis=2)
    paths_s, mean_s = _simulate(fit, design, t0, horizon, cfg.n_paths, rng)
    placebo, widen = _calibrate(fit, design, ys, starts, horizon, n_pre, cfg)
    # paths = (mean_s + widen * (paths_s - mean_s)) * sd_pre + mu, step by step in place (no temporaries)
    paths = np.subtract(paths_s, mean_s, out=paths_s)
    paths *= widen
    paths += mean_s
    paths *= sd_pre
    paths += mu
    mean_cf = mean_s * sd_pre + mu
    summ = _summarise(paths, actual, mean_cf, cfg.alpha)
    s2 = fit.n * fit.scale / max(fit.n - 2, 1)
    model_desc = {
        "components": {"level": "local level", "weekly": spec.weekly, "yearly": spec.yearly,
                       "yearly_harmonics": spec.harmonics if spec.yearly else 0,
                       "regression": list(controls)},
        # posterior means over the ratios, in the units of the series
        "params": {"sigma2.irregular": float(fit.weight @ s2) * sd_pre**2,
                   "sigma2.level": float(fit.weight @ (fit.q * s2)) * sd_pre**2},
        "level_to_noise_sd": float(fit.weight @ np.sqrt(fit.q)),
        "level_prior": {"distribution": "half-Cauchy", "on": "sd_level / sd_irregular",
                        "scale": cfg.level_prior_scale, "grid": [0.001, 3.0, cfg.level_grid]},
        "n_paths": cfg.n_paths, "parameter_uncertainty": True,
    }

    diagnostics: dict = {"placebo": placebo}
    pre_fit = None
    reasons: list[str] = []
    if placebo["status"] == "unchecked":
        warn.append(f"not checked against placebo windows: {placebo['note']}")
    elif placebo["status"] == "untrusted":
        reasons.append(f"placebo interventions in the pre-period missed by {placebo['factor']:.1f}× their "
                       f"interval's spread (more than {cfg.placebo_max_factor:g}×): the model does not "
                       "describe this series")
    if cfg.diagnostics:
        pre_fit, more, why = _diagnose(fit, design, ys, Xs, y_all, X_all, t0, horizon, spec, cfg, rng,
                                       sd_pre, mu, controls, cache)
        diagnostics.update(more)
        reasons += why
    trusted = not reasons
    result = TSResult(
        method="structural", alpha=cfg.alpha, seed=cfg.seed, trusted=trusted,
        reason="; ".join(reasons) if reasons else None,
        effect_avg=summ["effect_avg"], ci_avg=tuple(map(float, summ["ci_avg"])),
        effect_cum=summ["effect_cum"], ci_cum=summ["ci_cum"],
        effect_rel=summ["effect_rel"], ci_rel=summ["ci_rel"], p_value=summ["p_value"],
        pre_period_fit=pre_fit, model=model_desc, diagnostics=diagnostics, warnings=tuple(warn),
        inference="simulation", dates=idx[t0:t_end], actual=actual, counterfactual=mean_cf, paths=paths,
        **base,
    )
    if kept_key is not None:  # packed once the valuation has asked its sums (FitCache.keep)
        cache._results[kept_key] = (result, None, tuple(dict.fromkeys(cache.asked[asked:])))
    return result


def _calibrate(fit: _Fitted, design, ys, starts, horizon: int, n_pre: int, cfg: TSConfig) -> tuple[dict, float]:
    """The placebo check of every fit: (its diagnostics entry, the factor the interval is widened by).

    The factor is the root-mean-square of the placebo windows' standardized gaps (1 when the
    model's intervals are right for this series); the interval is widened by it when above 1.
    """
    z = _placebo_z(fit, design, ys, starts, horizon) if starts else np.empty(0)
    entry: dict = {"windows": int(len(z)), "window_days": int(horizon), "min_windows": cfg.placebo_min_windows,
                   "max_factor": cfg.placebo_max_factor, "z": [round(float(v), 3) for v in z]}
    if horizon > n_pre or len(z) < cfg.placebo_min_windows:
        note = (f"the post-period ({horizon} days) is longer than the pre-period ({n_pre})" if horizon > n_pre
                else f"only {len(z)} placebo window(s) of {horizon} days fit in the pre-period, "
                     f"need {cfg.placebo_min_windows}")
        return {**entry, "status": "unchecked", "factor": None, "widened_by": 1.0, "passed": None,
                "note": note}, 1.0
    factor = float(np.sqrt(np.mean(z**2)))
    status = "untrusted" if factor > cfg.placebo_max_factor else "widened" if factor > 1 else "ok"
    return {**entry, "status": status, "factor": factor, "widened_by": max(1.0, factor),
            "passed": status != "untrusted"}, max(1.0, factor)


def _diagnose(fit: _Fitted, design, ys, Xs, y_all, X_all, t0, horizon, spec, cfg, rng, sd, mu,
              controls, cache: FitCache | None = None) -> tuple[dict | None, dict, list[str]]:
    reasons: list[str] = []
    diag: dict = {}
    # 1. held-out stretch: the last observed pre-period days (days inside an earlier window are masked,
    # so after a recent relaunch the stretch reaches back past them), parameters re-fitted without it
    obs_pre = np.flatnonzero(np.isfinite(ys[:t0]))
    hd = cfg.holdout_days or min(horizon, len(obs_pre) // 4)
    hd = max(0, min(hd, len(obs_pre) // 4))
    pre_fit = None
    if hd >= 7 and len(obs_pre) - hd >= cfg.min_pre_periods:
        h0 = int(obs_pre[-hd])
        span = t0 - h0
        fit_h = _fit_uc(ys[:h0], None if Xs is None else Xs[:h0], spec, cfg, at=[h0], cache=cache)
        p_s, m_s = _simulate(fit_h, design, h0, span, 400, rng)
        act = y_all[h0:t0]
        paths_h, mean_h = p_s * sd + mu, m_s * sd + mu
        ok = np.isfinite(act)
        lo, hi = _day_quantiles(paths_h[:, ok].T, [cfg.alpha / 2, 1 - cfg.alpha / 2])
        cover = float(np.mean((act[ok] >= lo) & (act[ok] <= hi)))
        denom = np.abs(act[ok])
        mape = float(np.mean(np.abs(act[ok] - mean_h[ok]) / denom)) if np.all(denom > 0) else None
        rmse = float(np.sqrt(np.mean((act[ok] - mean_h[ok]) ** 2)))
        p_h = _summarise(paths_h, act, mean_h, cfg.alpha).get("p_value")  # None: no held-out day observed
        pre_fit = {"holdout_days": int(hd), "mape": mape, "coverage": cover, "rmse": rmse, "p_value": p_h}
        passed = cover >= cfg.holdout_min_coverage and (p_h is None or p_h >= cfg.holdout_alpha)
        diag["holdout"] = {**pre_fit, "passed": passed}
        if not passed:
            gap = f", gap p-value {p_h:.3g}" if p_h is not None else ""
            reasons.append(f"held-out pre-period fit failed (interval coverage {cover:.0%}{gap} "
                           f"over the last {hd} observed pre-period days)")
    else:
        diag["holdout"] = {"holdout_days": int(hd), "passed": None, "note": "pre-period too short to hold out"}

    # 2. residual autocorrelation of the one-step-ahead errors in the pre-period
    e = fit.errors[:t0]
    burn = int(fit.T.shape[0])  # the number of states
    q, p_lb = _ljung_box(e[burn:], cfg.ljung_box_lags)
    lb_pass = not (np.isfinite(p_lb) and p_lb < cfg.ljung_box_alpha)
    diag["ljung_box"] = {"statistic": num(q), "p_value": num(p_lb), "lags": cfg.ljung_box_lags, "passed": lb_pass}
    if not lb_pass:
        reasons.append(f"one-step errors are autocorrelated (Ljung–Box p = {p_value(p_lb)}): the model misses structure")

    # 3. treatment leaking into controls
    leaks = {}
    if controls:
        w = max(3, min(cfg.leak_window, horizon, t0 // 4))
        moved = []
        for j, c in enumerate(controls):
            chk = check_leak(_leak_series(X_all, j, t0), t0, w)
            chk["passed"] = chk["z"] is None or abs(chk["z"]) < cfg.leak_z
            leaks[c] = chk
            if not chk["passed"]:
                moved.append(f"{c} (z = {chk['z']:.1f})")
        if moved:
            reasons.append("control series moved at the intervention (treatment may leak into controls): "
                           + ", ".join(moved))
    diag["leak"] = {"controls": leaks, "threshold_z": cfg.leak_z,
                    "passed": all(v["passed"] for v in leaks.values()) if leaks else None}
    return pre_fit, diag, reasons
