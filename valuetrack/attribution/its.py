"""Interrupted time series: segmented OLS with a level and a slope change, Newey–West errors.

    y_t = a + b·t + c·D_t + d·(t − t0)·D_t [+ day-of-week effects for daily data] + e_t

with D_t = 1 from the intervention on. The counterfactual is the pre-period line (a + b·t + weekday
effects); the effect on day t is c + d·(t − t0). Standard errors are Newey–West (HAC) with the
Newey–West (1994) plug-in lag 4·(n/100)^(2/9), so autocorrelated errors do not shrink them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from valuetrack.errors import ValidationError
from valuetrack.formatting import p_value

__all__ = ["fit_its"]


def _design(n: int, t0: int, daily: bool, dow: np.ndarray | None) -> tuple[np.ndarray, list[str]]:
    t = np.arange(n, dtype=float)
    D = (t >= t0).astype(float)
    cols = [np.ones(n), t - t0, D, (t - t0) * D]
    names = ["intercept", "slope", "level_change", "slope_change"]
    if daily and dow is not None:
        for k in range(1, 7):
            cols.append((dow == k).astype(float))
            names.append(f"dow{k}")
    return np.column_stack(cols), names


def _ols_hac(X: np.ndarray, y: np.ndarray, lags: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    e = y - X @ beta
    XtX_inv = np.linalg.pinv(X.T @ X)
    u = X * e[:, None]
    S = u.T @ u
    for L in range(1, lags + 1):
        w = 1 - L / (lags + 1)
        G = u[L:].T @ u[:-L]
        S += w * (G + G.T)
    n, k = X.shape
    V = XtX_inv @ S @ XtX_inv * n / max(n - k, 1)
    return beta, V, e


def fit_its(data: pd.Series | pd.DataFrame, *, intervention: Any, metric: str | None = None,
            alpha: float = 0.05, horizon_cap_days: int = 180, min_pre_periods: int = 12,
            weekday_effects: bool | None = None):
    """Interrupted time series on one series (no controls).

    Args:
        data: Series, or DataFrame with a ``metric`` column, indexed by date.
        intervention: first day of the intervention.
        metric: the column to use when ``data`` is a DataFrame (default: the first).
        alpha: 1 − confidence level.
        horizon_cap_days: days after the intervention that are attributed (a straight line is not
            extrapolated for ever).
        min_pre_periods: fewer pre-period observations gives an untrusted, empty result.
        weekday_effects: day-of-week dummies; None = on for daily data with ≥ 28 pre-period days.

    Returns:
        TSResult with ``method="its"``, ``inference="newey-west"`` and ``seed=None``.
    """
    from valuetrack.jsonsafe import num as _num
    from valuetrack.attribution.timeseries import TSConfig, TSResult, _as_frame, _empty_result, _infer_step

    frame, metric = _as_frame(data, metric, ())
    cfg = TSConfig(alpha=alpha, horizon_cap_days=horizon_cap_days)
    idx = frame.index
    start = pd.Timestamp(intervention)
    t0 = int(idx.searchsorted(start))
    if t0 >= len(idx):
        raise ValidationError(f"--intervention: {start.date()} is after the last date of the data ({idx[-1].date()})")
    step = _infer_step(idx)
    daily = step is not None and step == pd.Timedelta(days=1)
    cap = horizon_cap_days if daily or step is None else max(1, int(horizon_cap_days // (step / pd.Timedelta(days=1))))
    capped = len(idx) - t0 > cap
    n = min(len(idx), t0 + cap)
    y = frame[metric].to_numpy(float)[:n]
    ok = np.isfinite(y)
    n_pre = int(ok[:t0].sum())
    n_post = int(ok[t0:].sum())
    warn = []
    if capped:
        warn.append(f"post-period longer than the {horizon_cap_days}-day horizon cap; days after "
                    f"{idx[n - 1].date()} are not attributed; re-validate")
    base = dict(intervention=start, post_start=idx[t0], post_end=idx[n - 1], horizon_capped=capped,
                n_pre=n_pre, n_post=n_post)
    if n_pre < min_pre_periods:
        return _empty_result("its", cfg, f"pre-period too short: {n_pre} observations, need at least {min_pre_periods}",
                             warnings=tuple(warn), **base)
    if n_post < 2:
        return _empty_result("its", cfg, "fewer than 2 observed values after the intervention", warnings=tuple(warn), **base)
    if np.nanstd(y[:t0]) <= 0:
        return _empty_result("its", cfg, "the pre-period series is constant", warnings=tuple(warn), **base)
    use_dow = weekday_effects if weekday_effects is not None else (daily and n_pre >= 28)
    dow = np.asarray(idx[:n].day_of_week) if use_dow else None
    X, names = _design(n, t0, use_dow, dow)
    Xo, yo = X[ok], y[ok]
    lags = int(math.floor(4 * (len(yo) / 100) ** (2 / 9)))
    beta, V, resid = _ols_hac(Xo, yo, lags)
    z = stats.norm.ppf(1 - alpha / 2)

    tau = np.arange(t0, n, dtype=float) - t0
    G = np.column_stack([np.ones(n - t0), tau])
    Vcd = V[2:4, 2:4]
    eff_pt = G @ beta[2:4]
    gap_cov = G @ Vcd @ G.T
    post_ok = ok[t0:]
    w = post_ok.astype(float)
    eff_cum = float(w @ eff_pt)
    se_cum = math.sqrt(max(float(w @ gap_cov @ w), 0.0))
    n_eff = post_ok.sum()
    X0 = X[t0:].copy()
    X0[:, 2:4] = 0.0  # no level or slope change: the counterfactual
    cf = X0 @ beta
    s2 = float(resid @ resid) / max(len(yo) - X.shape[1], 1)
    cf_sd = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", X0, V, X0), 0) + s2)
    cum_var = np.cumsum(w)  # prefix sums of the effect variance
    Gw = G * w[:, None]
    pref = np.cumsum(Gw, axis=0)
    cum_sd = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", pref, Vcd, pref), 0))
    del cum_var
    cf_sum = float(w @ cf)
    eff_rel = eff_cum / cf_sum if cf_sum != 0 else None
    ci_rel = None
    if eff_rel is not None:
        grad = np.zeros(len(beta))
        grad[2:4] = (w @ G) / cf_sum
        grad -= (eff_cum / cf_sum**2) * (w @ X0)
        se_rel = math.sqrt(max(float(grad @ V @ grad), 0.0))
        ci_rel = (eff_rel - z * se_rel, eff_rel + z * se_rel)
    p = float(2 * stats.norm.sf(abs(eff_cum / se_cum))) if se_cum > 0 else None

    # pre-period checks: a placebo break at the middle of the pre-period, and a held-out last quarter
    reasons = []
    diag: dict = {}
    pre_fit = None
    tp = t0 // 2
    if n_pre >= 2 * min_pre_periods:
        Xp, _ = _design(t0, tp, use_dow, dow[:t0] if dow is not None else None)
        okp = ok[:t0]
        bp, Vp, _ = _ols_hac(Xp[okp], y[:t0][okp], lags)
        gp = np.array([1.0 * (t0 - tp), float(np.sum(np.arange(t0 - tp)))])
        se_p = math.sqrt(max(float(gp @ Vp[2:4, 2:4] @ gp), 0.0))
        p_pl = float(2 * stats.norm.sf(abs(gp @ bp[2:4]) / se_p)) if se_p > 0 else 1.0
        passed = p_pl >= 0.01
        diag["placebo"] = {"n": 1, "p_value": p_pl, "passed": passed, "date": idx[tp].date().isoformat()}
        if not passed:
            reasons.append(f"the pre-period is not one straight line (placebo break at {idx[tp].date()}, p = {p_value(p_pl)})")
        hd = max(3, t0 // 4)
        h0 = t0 - hd
        Xh, _ = _design(h0, h0, use_dow, dow[:h0] if dow is not None else None)
        Xh = Xh[:, [0, 1] + list(range(4, Xh.shape[1]))]
        okh = ok[:h0]
        bh, Vh, eh = _ols_hac(Xh[okh], y[:h0][okh], lags)
        Xf, _ = _design(t0, h0, use_dow, dow[:t0] if dow is not None else None)
        Xf = Xf[h0:][:, [0, 1] + list(range(4, Xf.shape[1]))]
        pred = Xf @ bh
        s2h = float(eh @ eh) / max(okh.sum() - Xh.shape[1], 1)
        sdp = np.sqrt(np.einsum("ij,jk,ik->i", Xf, Vh, Xf) + s2h)
        act = y[h0:t0]
        m = np.isfinite(act)
        cover = float(np.mean(np.abs(act[m] - pred[m]) <= z * sdp[m]))
        mape = float(np.mean(np.abs(act[m] - pred[m]) / np.abs(act[m]))) if np.all(act[m] != 0) else None
        pre_fit = {"holdout_days": int(hd), "mape": mape, "coverage": cover,
                   "rmse": float(np.sqrt(np.mean((act[m] - pred[m]) ** 2)))}
        hp = cover >= 0.5
        diag["holdout"] = {**pre_fit, "passed": hp}
        if not hp:
            reasons.append(f"held-out pre-period fit failed (interval coverage {cover:.0%})")
    else:
        diag["placebo"] = {"n": 0, "passed": None, "note": "pre-period too short for a placebo break"}
    warn.append("ITS has no control series: anything else that changed at the intervention is attributed to it")
    model = {"design": names, "params": {k: float(v) for k, v in zip(names, beta)},
             "newey_west_lags": lags, "residual_sd": math.sqrt(s2)}
    return TSResult(
        method="its", alpha=alpha, seed=None, trusted=not reasons, reason="; ".join(reasons) or None,
        effect_avg=eff_cum / n_eff, ci_avg=((eff_cum - z * se_cum) / n_eff, (eff_cum + z * se_cum) / n_eff),
        effect_cum=eff_cum, ci_cum=(eff_cum - z * se_cum, eff_cum + z * se_cum),
        effect_rel=_num(eff_rel), ci_rel=ci_rel, p_value=p, pre_period_fit=pre_fit, model=model,
        diagnostics=diag, warnings=tuple(warn), inference="newey-west", dates=idx[t0:n],
        actual=y[t0:n], counterfactual=cf, paths=None, cf_sd=cf_sd, cum_sd=cum_sd, gap_cov=gap_cov, **base,
    )
