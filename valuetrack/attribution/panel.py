"""Panel attribution: difference-in-differences and synthetic control (regions, stores, groups).

Two data shapes, as on the command line:

* a **unit** column (one row per unit × period) and the treated units: DiD is the two-way fixed
  effects regression y_it = α_i + γ_t + δ·D_it; synthetic control is available;
* a **group** column and the treated value (repeated cross-sections: different people each period):
  DiD is y = group effects + period effects + δ·treated×post on the individual rows.

Standard errors: ``classical`` (OLS), ``hc1`` (White with the n/(n−k) correction) or ``cluster``
(by unit, CR1, t with G−1 df). The default depends on the number of treated clusters: cluster-robust
errors need many treated clusters and are wrong with one (Conley & Taber 2011; MacKinnon & Webb
2017), so with fewer than ``MIN_TREATED_CLUSTERS`` treated units the default is HC1 and the result
carries a placebo-in-space p-value and a warning; asking for ``cluster`` with a single treated
cluster is refused. Staggered adoption (treated units starting at different dates) is refused:
two-way fixed effects then compares later-treated units with already-treated ones and is biased
(Goodman-Bacon 2021); estimate each adoption cohort separately against never-treated units.

Synthetic control (Abadie, Diamond & Hainmueller 2010), outcome-only: convex weights (≥ 0, sum 1,
no intercept) on the control units that best reproduce the treated unit's pre-period outcome; the
effect is the post-period gap. No interval: inference is by placebo in space (each control unit in
turn as if treated; p-value = rank of the treated unit's post/pre RMSPE ratio), ``inference:
"placebo"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats

from valuetrack.jsonsafe import clean, effect_fields
from valuetrack.jsonsafe import num as json_num
from valuetrack.errors import ParameterError, ValidationError
from valuetrack.formatting import p_value

__all__ = ["PanelResult", "attribute_did_frame", "fit_did", "synth_weights", "MIN_TREATED_CLUSTERS"]

MIN_TREATED_CLUSTERS = 10


@dataclass(frozen=True)
class PanelResult:
    """The effect of an intervention on treated units of a panel.

    Attributes:
        method: "did" or "synth".
        alpha: 1 − confidence level.
        trusted: whether the checks support the estimate.
        reason: why not (failed checks, "; "-joined), or None.
        effect_avg: average effect per treated unit and post-period (DiD: δ; synth: mean gap).
        ci_avg: interval of ``effect_avg`` (None for synth).
        effect_cum: effect summed over treated unit × post-period cells (DiD: δ × cells; synth: sum of
            the gaps of the treated series over the post-period).
        ci_cum: interval of ``effect_cum`` (None for synth).
        effect_rel: ``effect_cum`` ÷ counterfactual total of the treated post-period.
        ci_rel: interval of ``effect_rel`` (counterfactual total taken as known; None for synth).
        p_value: two-sided p-value (DiD: t test with the chosen errors; synth: placebo in space).
        pre_period_fit: DiD: ``pre_trend_diff`` and ``pre_trend_p_value`` (a linear trend difference
            between treated and controls before the intervention); synth: ``rmspe`` and ``mape``.
        seed: None (nothing is simulated); kept for the shared JSON shape.
        inference: "classical", "hc1", "cluster" or "placebo".
        se: standard error of ``effect_avg`` (None for synth).
        placebo_p_value: placebo-in-space p-value (synth; DiD with few treated units).
        n_treated: treated units (groups for repeated cross-sections).
        n_control: control units (groups).
        n_obs: rows used.
        intervention: first post period, as given.
        weights: synth: control unit → weight (non-zero only); DiD: empty.
        diagnostics: checks and their figures.
        warnings: notes that do not by themselves make the estimate untrusted.
        table: per period: treated mean, counterfactual, effect (for charts).
    """

    method: str
    alpha: float
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
    seed: int | None = None
    inference: str = "classical"
    se: float | None = None
    placebo_p_value: float | None = None
    n_treated: int = 0
    n_control: int = 0
    n_obs: int = 0
    intervention: Any = None
    weights: Mapping[str, float] = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    table: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    placebo_gaps: np.ndarray | None = field(default=None, repr=False, compare=False)
    """synth: each control unit's gap to its own synthetic control, shape (controls, periods)."""

    def to_dict(self) -> dict:
        """JSON-ready dict with the names of DESIGN.md (no NaN)."""
        iv = self.intervention
        return {
            **effect_fields(self),
            "se": json_num(self.se),
            "placebo_p_value": json_num(self.placebo_p_value),
            "n_treated": int(self.n_treated),
            "n_control": int(self.n_control),
            "n_obs": int(self.n_obs),
            "intervention": clean(iv) if not isinstance(iv, (np.generic,)) else iv.item(),
            "weights": {str(k): float(v) for k, v in self.weights.items()},
            "diagnostics": clean(self.diagnostics),
            "warnings": list(self.warnings),
        }

    def to_frame(self) -> pd.DataFrame:
        """Per period: ``time, treated, counterfactual, effect`` (treated = mean of treated units)."""
        if self.table is None:
            return pd.DataFrame({"time": [], "treated": [], "counterfactual": [], "effect": []})
        return self.table.copy()


# --------------------------------------------------------------------------------------------------
# helpers


def _ols(X: np.ndarray, y: np.ndarray, se: str, clusters: np.ndarray | None = None):
    """OLS with classical, HC1 or CR1 cluster-robust covariance. Returns (beta, cov, df)."""
    n, k = X.shape
    XtX = X.T @ X
    XtX_inv = np.linalg.pinv(XtX, hermitian=True)
    beta = XtX_inv @ (X.T @ y)
    e = y - X @ beta
    # rank of X from the eigenvalues of X'X (its singular values squared), with numpy's tolerance:
    # an SVD of the n × k design costs seconds on a daily panel
    ev = np.clip(np.linalg.eigvalsh(XtX), 0.0, None)
    rank = int(np.sum(np.sqrt(ev) > np.sqrt(ev.max()) * max(n, k) * np.finfo(float).eps)) if ev.size else 0
    dof = n - rank
    if se == "classical" and dof > 0:
        s2 = float(e @ e) / dof
        return beta, XtX_inv * s2, dof
    if dof <= 0:
        return beta, np.full((k, k), np.nan), dof
    if se == "hc1":
        u = X * e[:, None]
        return beta, XtX_inv @ (u.T @ u) @ XtX_inv * n / dof, dof
    # CR1
    codes, uniq = pd.factorize(clusters)
    G = len(uniq)
    S = np.zeros((k, k))
    u = X * e[:, None]
    sums = np.zeros((G, k))
    np.add.at(sums, codes, u)
    S = sums.T @ sums
    c = G / (G - 1) * (n - 1) / dof
    return beta, XtX_inv @ S @ XtX_inv * c, G - 1


def _dummies(codes: np.ndarray, n_levels: int) -> np.ndarray:
    D = np.zeros((len(codes), n_levels))
    D[np.arange(len(codes)), codes] = 1.0
    return D[:, 1:]  # first level is the reference


def synth_weights(y1: np.ndarray, Y0: np.ndarray) -> np.ndarray:
    """Convex weights (≥ 0, sum 1, no intercept) minimising ||y1 − Y0 w||² over the pre-period.

    Args:
        y1: treated outcome, shape (T_pre,).
        Y0: control outcomes, shape (T_pre, J).
    """
    T, J = Y0.shape
    scale = float(np.abs(Y0).mean()) or 1.0
    A, b = Y0 / scale, y1 / scale
    # warm start from NNLS with a heavily weighted sum-to-one row, then polish with SLSQP
    lam = 1e3
    w0, _ = optimize.nnls(np.vstack([A, lam * np.ones(J)]), np.concatenate([b, [lam]]))
    w0 = np.clip(w0, 0, None)
    w0 = w0 / w0.sum() if w0.sum() > 0 else np.full(J, 1 / J)
    AtA, Atb = A.T @ A, A.T @ b
    res = optimize.minimize(
        lambda w: 0.5 * w @ AtA @ w - Atb @ w,
        w0,
        jac=lambda w: AtA @ w - Atb,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * J,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(J)}],
        options={"ftol": 1e-12, "maxiter": 500},
    )
    w = np.clip(res.x if res.success else w0, 0, None)
    return w / w.sum()


def _parse_time(values: pd.Series, intervention: Any, option: str) -> tuple[pd.Series, Any]:
    """Numeric times (years, periods) stay numeric; anything else is parsed as dates."""
    num = pd.to_numeric(values, errors="coerce")
    if num.notna().all():
        try:
            t = float(intervention)
        except (TypeError, ValueError):
            raise ValidationError(f"--intervention: {intervention!r} is not a number, but {option} holds numbers") from None
        return num.astype(float), t
    try:
        dates = pd.to_datetime(values)
    except Exception:
        raise ValidationError(f"{option}: column does not hold dates or numbers") from None
    try:
        t = pd.Timestamp(intervention)
    except Exception:
        raise ValidationError(f"--intervention: {intervention!r} is not a date") from None
    return dates, t


# --------------------------------------------------------------------------------------------------
# the entry point


def attribute_did_frame(
    frame: pd.DataFrame,
    *,
    time_col: str,
    metric: str,
    intervention: Any,
    unit_col: str | None = None,
    treated: Sequence[Any] = (),
    group_col: str | None = None,
    treated_value: Any = None,
    method: str = "did",
    se: str | None = None,
    alpha: float = 0.05,
) -> PanelResult:
    """The ``valuetrack attribute did`` entry point.

    Args:
        frame: rows of unit × period (unit form) or individual rows (group form).
        time_col: the period column (numbers such as years, or dates).
        metric: the outcome column.
        intervention: the first post period; or, in the unit form through the Python API, a mapping
            treated unit → its first post period (different periods = staggered adoption, refused).
        unit_col, treated: the unit column and the treated units (unit form).
        group_col, treated_value: the group column and the treated group's value (group form).
        method: "did" or "synth" (synth needs the unit form).
        se: "classical", "hc1", "cluster" or None for the default (see the module docstring).
        alpha: 1 − confidence level.

    Raises:
        ValidationError: missing/non-numeric columns, unknown treated units, both or neither form,
            staggered adoption, no pre- or post-period, cluster errors with one treated cluster.
        ParameterError: unknown method or se, alpha outside (0, 1).
    """
    from valuetrack.io import numeric_column, require_columns

    if method not in ("did", "synth"):
        raise ParameterError(f"--method must be 'did' or 'synth'; got {method!r}")
    if se not in (None, "classical", "hc1", "cluster"):
        raise ParameterError(f"--se must be classical, hc1 or cluster; got {se!r}")
    if not 0 < alpha < 1:
        raise ParameterError(f"--alpha must be in (0, 1); got {alpha}")
    unit_form = unit_col is not None
    if unit_form == (group_col is not None):
        raise ValidationError("give either --unit-col with --treated, or --group-col with --treated-value")
    require_columns(frame, [("--time-col", time_col), ("--metric", metric), ("--unit-col", unit_col),
                            ("--group-col", group_col)])
    y = numeric_column(frame, "--metric", metric)
    keep = y.notna()
    df = pd.DataFrame({"y": y[keep].to_numpy()})
    if unit_form:
        treated = [t for t in treated if t is not None and str(t) != ""]
        if not treated:
            raise ValidationError("--treated: name at least one treated unit")
        units = frame.loc[keep, unit_col].astype(str).to_numpy()
        tr = [str(t) for t in treated]
        unknown = [t for t in tr if t not in set(units)]
        if unknown:
            sample = ", ".join(sorted(set(units))[:8])
            raise ValidationError(f"--treated: unit {unknown[0]!r} is not in column {unit_col!r} (units include {sample})")
        df["unit"] = units
        df["is_treated"] = df["unit"].isin(tr)
    else:
        if treated_value is None:
            raise ValidationError("--treated-value: give the value of --group-col that marks the treated group")
        g = frame.loc[keep, group_col]
        gs = g.astype(str).to_numpy()
        tv = str(treated_value)
        if tv not in set(gs):
            # numeric columns: "1" should match 1.0
            try:
                num = pd.to_numeric(g, errors="coerce")
                match = (num == float(treated_value)).to_numpy()
            except (TypeError, ValueError):
                match = np.zeros(len(gs), bool)
            if not match.any():
                raise ValidationError(f"--treated-value: {treated_value!r} does not occur in column {group_col!r}")
            df["unit"] = np.where(match, tv, gs)
        else:
            df["unit"] = gs
        df["is_treated"] = df["unit"] == tv
        if method == "synth":
            raise ValidationError("--method synth needs a panel of units (--unit-col), not repeated cross-sections")
    if isinstance(intervention, Mapping):
        starts = {str(k): v for k, v in intervention.items()}
        if len({str(v) for v in starts.values()}) > 1:
            raise ValidationError(
                "--intervention: staggered adoption (treated units start at different times) is refused: "
                "two-way fixed effects is biased when timing differs (Goodman-Bacon 2021); estimate each "
                "adoption cohort separately against never-treated units")
        intervention = next(iter(starts.values()))
    times, t0 = _parse_time(frame.loc[keep, time_col].reset_index(drop=True), intervention, "--time-col")
    df["time"] = times.to_numpy()
    df["post"] = df["time"] >= t0
    if not df["post"].any() or df["post"].all():
        raise ValidationError(f"--intervention: {intervention!r} leaves no pre-period or no post-period in {time_col!r}")
    if df["is_treated"].all():
        raise ValidationError("--treated: every row is treated; there is no control group")
    if method == "synth":
        return _synth(df, intervention, alpha)
    return _did(df, intervention, se, alpha, unit_form)


def fit_did(frame: pd.DataFrame, **kwargs: Any) -> PanelResult:
    """Alias of :func:`attribute_did_frame` with ``method="did"``."""
    return attribute_did_frame(frame, method="did", **kwargs)


def _period_table(df: pd.DataFrame, cf_treated: pd.Series) -> pd.DataFrame:
    tm = df[df.is_treated].groupby("time")["y"].mean()
    out = pd.DataFrame({"time": tm.index, "treated": tm.to_numpy()})
    out["counterfactual"] = cf_treated.reindex(tm.index).to_numpy()
    out["effect"] = out["treated"] - out["counterfactual"]
    return out


def _did(df: pd.DataFrame, intervention, se: str | None, alpha: float, unit_form: bool) -> PanelResult:
    warn: list[str] = []
    reasons: list[str] = []
    n_tr = int(df.loc[df.is_treated, "unit"].nunique())
    n_co = int(df.loc[~df.is_treated, "unit"].nunique())
    # staggered adoption shows up in the data as treated units without a pre- or post-period
    if unit_form:
        cover = df[df.is_treated].groupby("unit")["post"].agg(["min", "max"])
        lacking = cover[(cover["min"]) | (~cover["max"])].index.tolist()
        if lacking:
            raise ValidationError(f"--treated: unit {lacking[0]!r} has no pre-period or no post-period rows; "
                                  "every treated unit needs both (staggered or partial panels are refused)")
    if se is None:
        if not unit_form:
            se = "hc1"
        elif n_tr >= MIN_TREATED_CLUSTERS and n_co >= MIN_TREATED_CLUSTERS:
            se = "cluster"
        else:
            se = "hc1"
            warn.append(f"only {n_tr} treated unit(s): cluster-robust errors need about "
                        f"{MIN_TREATED_CLUSTERS} or more, so HC1 is used; it ignores correlation within a "
                        "unit over time and may be too narrow; see placebo_p_value")
    if se == "cluster" and n_tr < 2:
        raise ValidationError("--se cluster: cluster-robust errors are wrong with a single treated cluster; "
                              "use --se hc1 or classical, or --method synth with placebo inference")
    if se == "cluster" and n_tr < MIN_TREATED_CLUSTERS:
        warn.append(f"cluster-robust errors with only {n_tr} treated clusters over-reject (MacKinnon & Webb 2017)")

    ucodes, uniq = pd.factorize(df["unit"])
    tcodes, tuniq = pd.factorize(df["time"], sort=True)
    D = (df.is_treated & df.post).to_numpy(float)
    if unit_form:
        X = np.column_stack([np.ones(len(df)), D, _dummies(ucodes, len(uniq)), _dummies(tcodes, len(tuniq))])
    else:
        X = np.column_stack([np.ones(len(df)), D, df.is_treated.to_numpy(float), _dummies(tcodes, len(tuniq))])
    yv = df["y"].to_numpy(float)
    beta, V, dof = _ols(X, yv, se, df["unit"].to_numpy() if se == "cluster" else None)
    delta = float(beta[1])
    if dof <= 0 or not np.isfinite(V[1, 1]):
        # e.g. 2 units × 2 periods: the DiD is exact arithmetic, with no residual to estimate noise
        s, tq, p = None, None, None
        reasons.append("no residual degrees of freedom: a point estimate without a standard error")
    else:
        s = math.sqrt(max(V[1, 1], 0.0))
        tq = stats.t.ppf(1 - alpha / 2, dof)
        p = float(2 * stats.t.sf(abs(delta / s), dof)) if s > 0 else None
    cells = int((df.is_treated & df.post).sum())
    treated_post = df.loc[df.is_treated & df.post, "y"]
    cf_total = float(treated_post.sum() - delta * cells)
    # counterfactual path of the treated mean: treated pre-mean + control change
    means = df.groupby(["is_treated", "time"])["y"].mean()
    ctrl = means.loc[False]
    trt = means.loc[True]
    pre_times = [t for t in trt.index if t < df.loc[df.post, "time"].min()]
    offset = float(trt.loc[pre_times].mean() - ctrl.loc[[t for t in pre_times if t in ctrl.index]].mean())
    cf_path = ctrl + offset
    pre_fit, diag = None, {}
    # pre-trend check: a linear trend difference of treated vs controls before the intervention
    pre = df[~df.post]
    n_pre_t = pre["time"].nunique()
    if n_pre_t >= 3:
        tt = pd.factorize(pre["time"], sort=True)[0].astype(float)
        pu, pun = pd.factorize(pre["unit"])
        ptc, ptu = pd.factorize(pre["time"], sort=True)
        fe = _dummies(pu, len(pun)) if unit_form else pre.is_treated.to_numpy(float)[:, None]
        Xp = np.column_stack([np.ones(len(pre)), pre.is_treated.to_numpy(float) * tt, fe, _dummies(ptc, len(ptu))])
        bp, Vp, dfp = _ols(Xp, pre["y"].to_numpy(float), se if se != "cluster" else "cluster",
                           pre["unit"].to_numpy() if se == "cluster" else None)
        sp = math.sqrt(max(Vp[1, 1], 0))
        pp = float(2 * stats.t.sf(abs(bp[1] / sp), dfp)) if sp > 0 else None
        pre_fit = {"pre_trend_diff": float(bp[1]), "pre_trend_p_value": pp, "pre_periods": int(n_pre_t)}
        ok = pp is None or pp >= 0.05
        diag["parallel_trends"] = {**pre_fit, "passed": ok}
        if not ok:
            reasons.append(f"treated and control trends differ before the intervention (p = {p_value(pp)}): "
                           "parallel trends is doubtful")
    else:
        diag["parallel_trends"] = {"passed": None, "note": "fewer than 3 pre-periods: parallel trends cannot be checked"}
        warn.append("fewer than 3 pre-periods: parallel trends cannot be checked")
    placebo_p = None
    if unit_form and n_tr < MIN_TREATED_CLUSTERS and n_co >= 4:
        placebo_p = _did_placebo(df, delta, n_tr)
        diag["placebo_in_space"] = {"p_value": placebo_p, "n": n_co}
    table = _period_table(df, cf_path)
    rel = delta * cells / cf_total if cf_total != 0 else None
    ci = (delta - tq * s, delta + tq * s) if s is not None else None
    return PanelResult(
        method="did", alpha=alpha, trusted=not reasons, reason="; ".join(reasons) or None,
        effect_avg=delta, ci_avg=ci,
        effect_cum=delta * cells, ci_cum=(ci[0] * cells, ci[1] * cells) if ci else None,
        effect_rel=rel, ci_rel=(ci[0] * cells / cf_total, ci[1] * cells / cf_total)
        if rel is not None and ci else None,
        p_value=p, pre_period_fit=pre_fit, inference=se, se=s, placebo_p_value=placebo_p,
        n_treated=n_tr, n_control=n_co, n_obs=len(df), intervention=intervention, diagnostics=diag,
        warnings=tuple(warn), table=table,
    )


def _did_placebo(df: pd.DataFrame, delta: float, n_tr: int) -> float:
    """Placebo in space for DiD: each control unit (alone, or n_tr of them in turn) as if treated."""
    ctrl = df[~df.is_treated]
    piv = ctrl.pivot_table(index="time", columns="unit", values="y", aggfunc="mean")
    post = piv.index >= df.loc[df.post, "time"].min()
    diffs = piv[post].mean() - piv[~post].mean()
    # DiD of unit j against the other controls (balanced-panel formula)
    total = diffs.sum()
    J = len(diffs)
    plac = diffs - (total - diffs) / (J - 1)
    return float((1 + np.sum(np.abs(plac.to_numpy()) >= abs(delta))) / (1 + J))


def _synth(df: pd.DataFrame, intervention, alpha: float) -> PanelResult:
    piv = df.pivot_table(index="time", columns="unit", values="y", aggfunc="mean").sort_index()
    tr_units = sorted(df.loc[df.is_treated, "unit"].unique())
    co_units = [u for u in piv.columns if u not in tr_units]
    if piv[co_units].isna().any().any() or piv[tr_units].isna().any().any():
        raise ValidationError("--method synth needs a balanced panel: every unit needs a value in every period")
    post = piv.index >= df.loc[df.post, "time"].min()
    if (~post).sum() < 2:
        raise ValidationError("--method synth needs at least 2 pre-periods")
    y1 = piv[tr_units].mean(axis=1).to_numpy()
    Y0 = piv[co_units].to_numpy()
    w = synth_weights(y1[~post], Y0[~post])
    synth = Y0 @ w
    gap = y1 - synth
    rmspe_pre = float(np.sqrt(np.mean(gap[~post] ** 2)))
    rmspe_post = float(np.sqrt(np.mean(gap[post] ** 2)))
    mape = float(np.mean(np.abs(gap[~post] / y1[~post]))) if np.all(y1[~post] != 0) else None
    ratio = rmspe_post / rmspe_pre if rmspe_pre > 0 else float("inf")
    # placebo in space: every control as if treated, synthesised from the other controls
    ratios = []
    pre_fit_j = []
    placebo_gaps = np.empty_like(Y0.T)
    for j in range(len(co_units)):
        others = np.delete(Y0, j, axis=1)
        wj = synth_weights(Y0[~post, j], others[~post])
        gj = placebo_gaps[j] = Y0[:, j] - others @ wj
        rp = float(np.sqrt(np.mean(gj[~post] ** 2)))
        pre_fit_j.append(rp)
        ratios.append(float(np.sqrt(np.mean(gj[post] ** 2))) / rp if rp > 0 else float("inf"))
    p = (1 + sum(r >= ratio for r in ratios)) / (1 + len(ratios))
    reasons, warn = [], []
    scale = float(np.std(y1[~post], ddof=1)) if (~post).sum() > 2 else float("nan")
    if np.isfinite(scale) and scale > 0 and rmspe_pre > 0.5 * scale:
        reasons.append(f"poor pre-period fit: RMSPE {rmspe_pre:.3g} is over half the treated series' pre-period sd")
    if np.median(pre_fit_j) > 0 and rmspe_pre > 5 * np.median(pre_fit_j):
        warn.append("the treated unit is fitted much worse than the placebo units (outside the controls' hull?)")
    n_post = int(post.sum())
    cum = float(gap[post].sum())
    cf_total = float(synth[post].sum())
    table = pd.DataFrame({"time": piv.index, "treated": y1, "counterfactual": synth, "effect": gap})
    weights = {str(u): float(v) for u, v in zip(co_units, w) if v > 1e-6}
    return PanelResult(
        method="synth", alpha=alpha, trusted=not reasons, reason="; ".join(reasons) or None,
        effect_avg=cum / n_post, ci_avg=None, effect_cum=cum, ci_cum=None,
        effect_rel=cum / cf_total if cf_total != 0 else None, ci_rel=None, p_value=float(p),
        pre_period_fit={"rmspe": rmspe_pre, "mape": mape, "post_rmspe": rmspe_post, "ratio": json_num(ratio)},
        inference="placebo", placebo_p_value=float(p), n_treated=len(tr_units), n_control=len(co_units),
        n_obs=len(df), intervention=intervention, weights=dict(sorted(weights.items(), key=lambda kv: -kv[1])),
        diagnostics={"placebo_in_space": {"p_value": float(p), "n": len(ratios), "treated_ratio": json_num(ratio)}},
        warnings=tuple(warn), table=table, placebo_gaps=placebo_gaps,
    )
