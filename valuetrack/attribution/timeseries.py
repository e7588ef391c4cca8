"""Time-series attribution: a structural counterfactual for a model launched without a holdout.

The counterfactual is a structural time-series model (statsmodels ``UnobservedComponents``): a local
level (optionally a local linear trend), weekly seasonality for daily data, yearly seasonality only
with two years of pre-period, and a regression on control series whose coefficients live in the
state vector (so their uncertainty is carried by the Kalman filter). It is fitted on the pre-period
and forecast over the post-period; the gap between the actual series and the forecast is the effect.

Intervals come from joint simulated paths of the post-period counterfactual: each path first draws
the model's variance parameters from the Laplace approximation of their posterior (parameter
uncertainty), then the state at the intervention from the Kalman filter (level, seasonality and
regression-coefficient uncertainty), then the future state and observation noise. Averages, sums
and any sub-period (``gap_between``) are computed path by path, never by adding pointwise bounds.

The level variance has an inverse-gamma prior centred on (0.01 × sd of the pre-period series)² with
32 pseudo-observations, CausalImpact's default; see docs/methods-timeseries.md for why. The model
is only trusted to ``horizon_cap_days`` after the intervention: random-walk intervals widen without
end and the control relationships drift, so beyond the cap the model must be re-validated (re-fitted
on a new pre-period) and days past it are not attributed.

Diagnostics (held-out pre-period fit, placebo interventions, Ljung–Box on the one-step errors, and a
check that no control series moved at the intervention) give a verdict: ``trusted`` and ``reason``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats

from valuetrack.jsonsafe import clean, effect_fields, num
from valuetrack.errors import ParameterError, ValidationError

__all__ = [
    "TSConfig",
    "TSResult",
    "fit_structural",
    "fit_its",
    "attribute_ts_frame",
    "choose_method",
    "check_leak",
]

_DAY = pd.Timedelta(days=1)


# --------------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class TSConfig:
    """Settings of a time-series attribution.

    Attributes:
        alpha: 1 − confidence level of every interval (0.05 → 95 % intervals).
        seed: seed of the random generator of the simulated paths; reported in the result.
        n_paths: number of joint simulated post-period paths behind every interval and p-value.
        n_param_draws: how many parameter draws the paths are spread over (parameter uncertainty);
            each draw costs one Kalman filter pass.
        horizon_cap_days: the attributable horizon: days after the intervention beyond this are not
            attributed and the result asks for the model to be re-validated.
        level_prior_sd_frac: prior guess of the level's daily standard deviation as a fraction of the
            pre-period standard deviation of the series (CausalImpact: 0.01).
        level_prior_sample_size: weight of that guess, in pseudo-observations (CausalImpact: 32).
        trend: add a stochastic slope (local linear trend) to the level.
        weekly: weekly seasonality; None = on for daily data with at least 28 pre-period days.
        yearly: yearly seasonality (trigonometric); None = on only with at least 730 pre-period days.
        yearly_harmonics: number of harmonics of the yearly seasonality.
        min_pre_periods: fewer pre-period observations than this gives an untrusted, empty result.
        diagnostics: run the held-out fit, placebo, Ljung–Box and leak checks (off in simulations
            that only need the intervals).
        holdout_days: length of the held-out stretch at the end of the pre-period; None = the
            post-period length, at most a quarter of the pre-period.
        n_placebos: number of placebo interventions at earlier dates.
        placebo_max_alarms: more placebo windows than this significant at ``alpha`` → untrusted.
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
    n_param_draws: int = 20
    horizon_cap_days: int = 180
    level_prior_sd_frac: float = 0.01
    level_prior_sample_size: float = 32.0
    trend: bool = False
    weekly: bool | None = None
    yearly: bool | None = None
    yearly_harmonics: int = 2
    min_pre_periods: int = 21
    diagnostics: bool = True
    holdout_days: int | None = None
    n_placebos: int = 5
    placebo_max_alarms: int = 1
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
        if not 1 <= self.n_param_draws <= self.n_paths:
            raise ParameterError(f"n_param_draws must be in [1, n_paths]; got {self.n_param_draws}")
        if self.horizon_cap_days < 1:
            raise ParameterError(f"horizon_cap_days must be at least 1; got {self.horizon_cap_days}")
        if self.level_prior_sd_frac <= 0 or self.level_prior_sample_size <= 0:
            raise ParameterError("level_prior_sd_frac and level_prior_sample_size must be > 0")
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
            lo, hi = np.quantile(self.paths, [a / 2, 1 - a / 2], axis=0)
            gaps = np.where(obs, actual, 0.0)[None, :] - np.where(obs[None, :], self.paths, 0.0)
            cum = np.cumsum(gaps, axis=1)
            cum_hi, cum_lo = np.quantile(cum, [1 - a / 2, a / 2], axis=0)
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
        total_point, total_paths, total_var, any_day = 0.0, None, 0.0, False
        for w in self.windows or (self,):
            if w.dates is None or not len(w.dates):
                continue
            sel = (w.dates >= start) & (w.dates <= end) & np.isfinite(np.asarray(w.actual, float))
            if not sel.any():
                continue
            any_day = True
            act = np.asarray(w.actual, float)[sel]
            total_point += float(np.sum(act - np.asarray(w.counterfactual)[sel]))
            if w.paths is not None:
                g = act.sum() - w.paths[:, sel].sum(axis=1)
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
    trend: bool
    weekly: bool
    yearly: bool
    harmonics: int


def _build_uc(y: np.ndarray, X: np.ndarray | None, spec: _Spec):
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    kwargs: dict[str, Any] = {"level": "lltrend" if spec.trend else "llevel"}
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


class _Fitted:
    """A fitted structural model on standardized data: MAP parameters and their Laplace covariance."""

    def __init__(self, mod, u_hat: np.ndarray, u_cov: np.ndarray | None, level_idx: int, prior: tuple[float, float]):
        self.mod = mod
        self.u_hat = u_hat
        self.u_cov = u_cov
        self.level_idx = level_idx
        self.prior = prior


def _log_posterior(mod, u: np.ndarray, level_idx: int, prior: tuple[float, float]) -> float:
    params = np.exp(u)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ll = mod.loglike(params)
    if not np.isfinite(ll):
        return -1e300
    a, b = prior
    # inverse-gamma(a, b) on the level variance, as a density on its log (hence −a, not −(a+1))
    ul = u[level_idx]
    return float(ll - a * ul - b * math.exp(-ul))


def _concentrated(mod, y: np.ndarray, q: float) -> tuple[float, float, int]:
    """Log-likelihood at the profiled irregular variance for level/irregular ratio ``q``.

    Returns (llf at ŝ, ŝ, n) where ŝ is the irregular variance maximising the likelihood given q
    and n the number of observations it is estimated from (after the filter's burn-in).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod.update(np.array([1.0, q]))
        ssm = mod.ssm
        ssm.filter_concentrated = True
        try:
            burn = int(ssm.loglikelihood_burn)
            n = int(np.isfinite(y[burn:]).sum())
            try:
                llf = float(ssm.loglike())
                scale = float(np.asarray(ssm._kalman_filter.scale)[burn:].sum()) / n
            except AttributeError:  # statsmodels internals moved: the public (slower) route
                fr = ssm.filter()
                llf, scale = float(fr.llf), float(fr.scale)
        finally:
            ssm.filter_concentrated = False
    return llf, scale, n


def _profile_map(mod, y: np.ndarray, prior: tuple[float, float], lo: float, hi: float) -> np.ndarray:
    """MAP of (log σ²_irregular, log σ²_level) by a 1-D search over log(σ²_level/σ²_irregular).

    For a fixed ratio q the likelihood is concentrated in σ² = σ²_irregular, and the inverse-gamma
    prior on qσ² keeps a closed-form optimum: σ² = (n·ŝ/2 + b/q) / (n/2 + a).
    """
    a, b = prior

    def neg(v: float) -> tuple[float, float]:
        q = math.exp(v)
        llf_c, s_hat, n = _concentrated(mod, y, q)
        if not (np.isfinite(llf_c) and s_hat > 0):
            return 1e300, 1.0
        s2 = (n * s_hat / 2 + b / q) / (n / 2 + a)
        ll = llf_c - n / 2 * math.log(s2 / s_hat) - n * s_hat / (2 * s2) + n / 2
        lp = ll - a * math.log(q * s2) - b / (q * s2)
        return -lp, s2

    v_lo, v_hi = lo - math.log(10.0) + math.log(1e-3), math.log(100.0)
    grid = np.linspace(max(v_lo, math.log(1e-8)), v_hi, 7)
    vals = [neg(v)[0] for v in grid]
    i = int(np.argmin(vals))
    left, right = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(lambda v: neg(v)[0], bounds=(left, right), method="bounded",
                                   options={"xatol": 1e-3})
    v = float(res.x) if res.fun <= vals[i] else float(grid[i])
    s2 = neg(v)[1]
    u = np.array([math.log(s2), math.log(s2) + v])
    return np.clip(u, lo, hi)


def _fit_uc(y: np.ndarray, X: np.ndarray | None, spec: _Spec, cfg: TSConfig) -> _Fitted:
    mod = _build_uc(y, X, spec)
    names = list(mod.param_names)
    level_idx = names.index("sigma2.level")
    obs = y[np.isfinite(y)]
    sd = float(np.std(obs, ddof=1)) if len(obs) > 1 else 1.0
    guess = cfg.level_prior_sd_frac * sd
    a = cfg.level_prior_sample_size / 2.0
    b = cfg.level_prior_sample_size * guess**2 / 2.0
    prior = (a, b)
    var = max(sd**2, 1e-12)
    lo, hi = math.log(var * 1e-9), math.log(var * 10)
    obj = lambda u: -_log_posterior(mod, u, level_idx, prior)  # noqa: E731
    if names == ["sigma2.irregular", "sigma2.level"]:
        u_hat = _profile_map(mod, y, prior, lo, hi)
    else:
        start = np.log(np.maximum(np.asarray(mod.start_params, float), var * 1e-6))
        start[level_idx] = math.log(max(guess**2, var * 1e-8))
        start = np.clip(start, lo + 1e-3, hi - 1e-3)
        res = optimize.minimize(obj, start, method="L-BFGS-B", bounds=[(lo, hi)] * len(start),
                                options={"maxiter": 200, "ftol": 1e-8, "gtol": 1e-4})
        u_hat = res.x
    u_cov = _laplace_cov(obj, u_hat, lo, hi)
    return _Fitted(mod, u_hat, u_cov, level_idx, prior)


def _laplace_cov(obj, u: np.ndarray, lo: float, hi: float) -> np.ndarray | None:
    """Inverse of a central-difference Hessian of the negative log posterior (None if not PD)."""
    k, h = len(u), 0.05
    f0 = obj(u)
    H = np.empty((k, k))
    E = np.eye(k) * h
    fp = [obj(u + E[i]) for i in range(k)]
    fm = [obj(u - E[i]) for i in range(k)]
    for i in range(k):
        H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h**2
        for j in range(i + 1, k):
            fpp = obj(u + E[i] + E[j])
            fmm = obj(u - E[i] - E[j])
            H[i, j] = H[j, i] = (fpp - fp[i] - fp[j] + 2 * f0 - fm[i] - fm[j] + fmm) / (2 * h**2)
    try:
        w, V = np.linalg.eigh(H)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(w)):
        return None
    # flat directions (a variance pinned at its bound) get a modest spread instead of infinity
    w = np.maximum(w, 1.0)
    return (V / w) @ V.T


def _simulate(fit: _Fitted, design: np.ndarray, t0: int, horizon: int, n_paths: int, n_draws: int,
              rng: np.random.Generator, param_uncertainty: bool = True) -> tuple[np.ndarray, np.ndarray, Any]:
    """Joint paths of the series for t0 .. t0+horizon-1 given observations before t0.

    ``design`` has shape (1, m, ≥ t0+horizon) (the time-varying design, exog included). Returns
    (paths (n_paths, horizon), mean forecast at the MAP parameters (horizon,), filter results at MAP).
    """
    mod = fit.mod
    T = np.asarray(mod.ssm["transition"])[:, :, 0] if mod.ssm["transition"].ndim == 3 else np.asarray(mod.ssm["transition"])
    R = np.asarray(mod.ssm["selection"])
    R = R[:, :, 0] if R.ndim == 3 else R
    m = T.shape[0]
    Z = np.asarray(design)[0, :, t0:t0 + horizon].T  # (horizon, m)
    if n_draws > 1 and param_uncertainty and fit.u_cov is not None:
        draws = rng.multivariate_normal(fit.u_hat, fit.u_cov, size=n_draws, method="eigh")
    else:
        draws = np.repeat(fit.u_hat[None, :], max(1, n_draws), axis=0)
    (a_hat, P_hat), fr_hat = _state_at(mod, np.exp(fit.u_hat), t0)
    mean = _propagate_mean(a_hat, T, Z)
    per = np.full(len(draws), n_paths // len(draws))
    per[: n_paths - per.sum()] += 1
    alphas, q_sd, h_sd = [], [], []
    for u, k in zip(draws, per):
        params = np.exp(u)
        if np.allclose(u, fit.u_hat):
            a0, P0 = a_hat, P_hat
        else:
            (a0, P0), _ = _state_at(mod, params, t0)
        L = _psd_chol(P0)
        alphas.append(a0[None, :] + rng.standard_normal((k, m)) @ L.T)
        Q = np.asarray(mod.ssm["state_cov"])
        Q = Q[:, :, 0] if Q.ndim == 3 else Q
        Hh = float(np.asarray(mod.ssm["obs_cov"]).ravel()[0])
        q_sd.append(np.repeat(np.sqrt(np.maximum(np.diag(Q), 0))[None, :], k, axis=0))
        h_sd.append(np.full(k, math.sqrt(max(Hh, 0.0))))
    # restore the MAP parameters on the model (callers read its filter output)
    mod.update(np.exp(fit.u_hat))
    alpha = np.vstack(alphas)
    qs = np.vstack(q_sd)
    hs = np.concatenate(h_sd)
    r = qs.shape[1]
    paths = np.empty((alpha.shape[0], horizon))
    for h in range(horizon):
        paths[:, h] = alpha @ Z[h] + hs * rng.standard_normal(alpha.shape[0])
        if h + 1 < horizon:
            alpha = alpha @ T.T + (qs * rng.standard_normal((alpha.shape[0], r))) @ R.T
    return paths, mean, fr_hat


def _state_at(mod, params, t0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod.update(params)
        fr = mod.ssm.filter()
    return (np.array(fr.predicted_state[:, t0]), np.array(fr.predicted_state_cov[:, :, t0])), fr


def _propagate_mean(a0: np.ndarray, T: np.ndarray, Z: np.ndarray) -> np.ndarray:
    out = np.empty(Z.shape[0])
    a = a0.copy()
    for h in range(Z.shape[0]):
        out[h] = Z[h] @ a
        a = T @ a
    return out


def _psd_chol(P: np.ndarray) -> np.ndarray:
    P = (P + P.T) / 2
    w, V = np.linalg.eigh(P)
    return V * np.sqrt(np.maximum(w, 0.0))


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
    return _Spec(trend=cfg.trend, weekly=bool(weekly), yearly=bool(yearly), harmonics=cfg.yearly_harmonics)


def fit_structural(
    data: pd.Series | pd.DataFrame,
    *,
    intervention: Any = None,
    controls: Sequence[str] = (),
    config: TSConfig | None = None,
    metric: str | None = None,
    interventions: Iterable | None = None,
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
        results.append(_fit_one_window(frame, metric, controls, start, stop, masked, wins[i + 1:], cfg))
    if len(results) == 1:
        return results[0]
    last = results[-1]
    return replace(last, windows=tuple(results))


def _fit_one_window(frame: pd.DataFrame, metric: str, controls: tuple[str, ...], start: pd.Timestamp,
                    stop: pd.Timestamp | None, earlier: list, later: list, cfg: TSConfig) -> TSResult:
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

    fit = _fit_uc(ys[:t0], None if Xs is None else Xs[:t0], spec, cfg)
    full = _build_uc(ys, Xs, spec)  # only for its design matrices over the post-period
    design = np.asarray(full.ssm["design"])
    if design.ndim == 2:
        design = np.repeat(design[:, :, None], t_end, axis=2)
    paths_s, mean_s, fr = _simulate(fit, design, t0, horizon, cfg.n_paths, cfg.n_param_draws, rng)
    paths = paths_s * sd_pre + mu
    mean_cf = mean_s * sd_pre + mu
    summ = _summarise(paths, actual, mean_cf, cfg.alpha)
    params = np.exp(fit.u_hat)
    model_desc = {
        "components": {"level": "local linear trend" if spec.trend else "local level",
                       "weekly": spec.weekly, "yearly": spec.yearly,
                       "yearly_harmonics": spec.harmonics if spec.yearly else 0,
                       "regression": list(controls)},
        "params": {n: float(v) * sd_pre**2 for n, v in zip(fit.mod.param_names, params)},
        "level_prior": {"distribution": "inverse-gamma", "sd_guess": cfg.level_prior_sd_frac * sd_pre,
                        "sd_frac": cfg.level_prior_sd_frac, "sample_size": cfg.level_prior_sample_size},
        "n_paths": cfg.n_paths, "n_param_draws": cfg.n_param_draws,
        "parameter_uncertainty": fit.u_cov is not None,
    }
    if fit.u_cov is None:
        warn.append("parameter covariance unavailable; intervals carry state uncertainty only")

    diagnostics: dict = {}
    pre_fit = None
    reasons: list[str] = []
    if cfg.diagnostics:
        pre_fit, diagnostics, reasons = _diagnose(fit, fr, design, ys, Xs, y_all, X_all, t0, horizon, spec, cfg,
                                                  rng, sd_pre, mu, controls, summ)
    trusted = not reasons
    return TSResult(
        method="structural", alpha=cfg.alpha, seed=cfg.seed, trusted=trusted,
        reason="; ".join(reasons) if reasons else None,
        effect_avg=summ["effect_avg"], ci_avg=tuple(map(float, summ["ci_avg"])),
        effect_cum=summ["effect_cum"], ci_cum=summ["ci_cum"],
        effect_rel=summ["effect_rel"], ci_rel=summ["ci_rel"], p_value=summ["p_value"],
        pre_period_fit=pre_fit, model=model_desc, diagnostics=diagnostics, warnings=tuple(warn),
        inference="simulation", dates=idx[t0:t_end], actual=actual, counterfactual=mean_cf, paths=paths,
        **base,
    )


def _diagnose(fit: _Fitted, fr, design, ys, Xs, y_all, X_all, t0, horizon, spec, cfg, rng, sd, mu,
              controls, summ) -> tuple[dict | None, dict, list[str]]:
    reasons: list[str] = []
    diag: dict = {}
    n_obs_pre = int(np.isfinite(ys[:t0]).sum())
    # 1. held-out stretch: the last observed pre-period days (days inside an earlier window are masked,
    # so after a recent relaunch the stretch reaches back past them), parameters re-fitted without it
    obs_pre = np.flatnonzero(np.isfinite(ys[:t0]))
    hd = cfg.holdout_days or min(horizon, len(obs_pre) // 4)
    hd = max(0, min(hd, len(obs_pre) // 4))
    pre_fit = None
    if hd >= 7 and len(obs_pre) - hd >= cfg.min_pre_periods:
        h0 = int(obs_pre[-hd])
        span = t0 - h0
        fit_h = _fit_uc(ys[:h0], None if Xs is None else Xs[:h0], spec, cfg)
        p_s, m_s, _ = _simulate(fit_h, design, h0, span, 400, max(1, cfg.n_param_draws // 2), rng)
        act = y_all[h0:t0]
        paths_h, mean_h = p_s * sd + mu, m_s * sd + mu
        ok = np.isfinite(act)
        lo, hi = np.quantile(paths_h[:, ok], [cfg.alpha / 2, 1 - cfg.alpha / 2], axis=0)
        cover = float(np.mean((act[ok] >= lo) & (act[ok] <= hi)))
        denom = np.abs(act[ok])
        mape = float(np.mean(np.abs(act[ok] - mean_h[ok]) / denom)) if np.all(denom > 0) else None
        rmse = float(np.sqrt(np.mean((act[ok] - mean_h[ok]) ** 2)))
        p_h = _summarise(paths_h, act, mean_h, cfg.alpha)["p_value"]
        pre_fit = {"holdout_days": int(hd), "mape": mape, "coverage": cover, "rmse": rmse, "p_value": p_h}
        passed = cover >= cfg.holdout_min_coverage and p_h >= cfg.holdout_alpha
        diag["holdout"] = {**pre_fit, "passed": passed}
        if not passed:
            reasons.append(f"held-out pre-period fit failed (interval coverage {cover:.0%}, "
                           f"gap p-value {p_h:.3g} over the last {hd} observed pre-period days)")
    else:
        diag["holdout"] = {"holdout_days": int(hd), "passed": None, "note": "pre-period too short to hold out"}

    # 2. placebo interventions at earlier dates, at the fitted parameters (one filter pass)
    L = max(7, min(horizon, t0 // 4))
    starts = []
    s = t0 - L
    min_hist = max(cfg.min_pre_periods, t0 // 3)
    while len(starts) < cfg.n_placebos and s >= min_hist:
        starts.append(s)
        s -= L
    if starts:
        z_real = summ["effect_cum"] / summ["sd_cum"] if summ.get("sd_cum") else float("nan")
        zs, ps = [], []
        for s0 in starts:
            p_s, m_s, _ = _simulate(fit, design, s0, L, 300, 1, rng, param_uncertainty=False)
            act = y_all[s0:s0 + L]
            sm = _summarise(p_s * sd + mu, act, m_s * sd + mu, cfg.alpha)
            if not sm:
                continue
            zs.append(sm["effect_cum"] / sm["sd_cum"] if sm["sd_cum"] > 0 else 0.0)
            ps.append(sm["p_value"])
        alarms = int(sum(p < cfg.alpha for p in ps))
        placebo_p = (1 + sum(abs(z) >= abs(z_real) for z in zs)) / (1 + len(zs)) if zs else None
        passed = alarms <= cfg.placebo_max_alarms
        diag["placebo"] = {"n": len(zs), "window": int(L), "significant": alarms, "p_value": placebo_p,
                           "passed": passed}
        if not passed:
            reasons.append(f"{alarms} of {len(zs)} placebo interventions at earlier dates were significant")
    else:
        diag["placebo"] = {"n": 0, "passed": None, "note": "pre-period too short for placebo dates"}

    # 3. residual autocorrelation of the one-step-ahead errors in the pre-period
    e = np.asarray(fr.standardized_forecasts_error)[0, :t0]
    burn = int(fit.mod.k_states)
    q, p_lb = _ljung_box(e[burn:], cfg.ljung_box_lags)
    lb_pass = not (np.isfinite(p_lb) and p_lb < cfg.ljung_box_alpha)
    diag["ljung_box"] = {"statistic": num(q), "p_value": num(p_lb), "lags": cfg.ljung_box_lags, "passed": lb_pass}
    if not lb_pass:
        reasons.append(f"one-step errors are autocorrelated (Ljung–Box p = {p_lb:.2g}): the model misses structure")

    # 4. treatment leaking into controls
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


# --------------------------------------------------------------------------------------------------
# interrupted time series (kept in its own module, re-exported here)

from valuetrack.attribution.its import fit_its  # noqa: E402
from valuetrack.attribution.choose import choose_method  # noqa: E402


def attribute_ts_frame(
    frame: pd.DataFrame,
    *,
    date_col: str,
    metric: str,
    intervention: Any,
    controls: Sequence[str] = (),
    method: str = "structural",
    alpha: float = 0.05,
    seed: int = 0,
) -> TSResult:
    """The ``valuetrack attribute ts`` entry point: a table with a date column → TSResult.

    Raises:
        ValidationError: a named column is missing or not numeric, dates do not parse, or the
            intervention is outside the data.
        ParameterError: unknown method or alpha outside (0, 1).
    """
    from valuetrack.io import numeric_column, require_columns

    if method not in ("structural", "its"):
        raise ParameterError(f"--method must be 'structural' or 'its'; got {method!r}")
    if not 0 < alpha < 1:
        raise ParameterError(f"--alpha must be in (0, 1); got {alpha}")
    controls = tuple(c for c in controls if c)
    require_columns(frame, [("--date-col", date_col), ("--metric", metric)] + [("--controls", c) for c in controls])
    if metric in controls:
        raise ValidationError(f"--controls: {metric!r} is the metric itself")
    try:
        dates = pd.to_datetime(frame[date_col])
    except Exception:
        raise ValidationError(f"--date-col: column {date_col!r} does not hold dates") from None
    if dates.isna().any():
        row = int(dates.isna().to_numpy().nonzero()[0][0])
        raise ValidationError(f"--date-col: row {row + 1} of {date_col!r} is not a date")
    data = pd.DataFrame({metric: numeric_column(frame, "--metric", metric)})
    for c in controls:
        data[c] = numeric_column(frame, "--controls", c)
    data.index = pd.DatetimeIndex(dates)
    try:
        start = pd.Timestamp(intervention)
    except Exception:
        raise ValidationError(f"--intervention: {intervention!r} is not a date") from None
    if method == "its":
        return fit_its(data, intervention=start, metric=metric, alpha=alpha)
    return fit_structural(data, intervention=start, controls=controls, metric=metric,
                          config=TSConfig(alpha=alpha, seed=seed))
