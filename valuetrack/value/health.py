"""Health of a deployed model, from the stored aggregates: is the data flowing and is it sane?

:func:`model_health` is pure: frames in (the ones :class:`~valuetrack.store.aggregates.AggregateStore`
returns), a frozen :class:`ModelHealth` out. It never reads the warehouse or the app database and
never raises on degenerate data: a check that cannot be computed says ``"unknown"`` and why.

The checks (docs/methods-health-risk.md gives the reasoning and the sources of the thresholds):

==========================  =====================================================================
``exposure_freshness``      days from the last day with an exposure to ``as_of``: warning above
                            ``EXPOSURE_WARNING_DAYS`` (2), problem above ``EXPOSURE_PROBLEM_DAYS``
                            (7, the same rule as the ``untrustworthy`` flag).
``outcome_freshness``       days from the last day with an outcome (or, for a time-series model,
                            with a KPI series value) to ``as_of``; outcomes may lag, so the limits
                            are ``outcome_lag_days`` + 2 (warning) and + 7 (problem).
``volume``                  mean daily exposures of the last ``recent_days`` days against the
                            model's own baseline (the ``reference_days`` days before): ratio and a
                            robust z (median/MAD). Warning when the ratio leaves [0.5, 2] and
                            |z| ≥ 3; problem when it falls to ≤ 0.1 (near zero) and so few
                            exposures are unlikely under Poisson noise (p < 0.001).
``score_drift``             PSI of the recent window's score histogram against the reference
                            window's, on the frozen bins (NULL scores a bin of their own); the
                            Jensen–Shannon distance beside it. Warning at PSI > 0.1, problem at
                            PSI > 0.25 (the usual rule of thumb), both only when a χ² test says
                            the difference is not sampling noise (p < 0.001).
``srm``                     χ² sample-ratio-mismatch test of the units per arm against
                            ``treatment_share``: problem at p < 0.001.
``outcome_completeness``    A/B: KPI per unit of the last ``recent_days`` *mature* cohorts against
                            the ``reference_days`` mature cohorts before (outcomes that should have
                            landed and did not pull it down): warning when the ratio is < 0.8,
                            problem when < 0.5, both with z ≤ −3. Time series: share of the
                            last ``reference_days`` settled days that have a KPI value: warning
                            below 0.9, problem below 0.5.
==========================  =====================================================================

A model's status is the worst of its checks (problem > warning > ok); ``"unknown"`` checks do not
make a model unhealthy, and the status is ``"unknown"`` only when no check could be computed.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from scipy import special, stats

from valuetrack.attribution.ab import srm_test
from valuetrack.errors import ParameterError
from valuetrack.formatting import p_value
from valuetrack.registry.spec import ModelSpec
from valuetrack.value.flags import SRM_ALPHA, STALE_AFTER_DAYS
from valuetrack.days import day_ordinals

__all__ = [
    "CHECKS", "STATUSES", "HealthCheck", "ModelHealth", "model_health", "psi", "js_distance",
    "drift_status", "worst_status",
]

STATUSES = ("ok", "unknown", "warning", "problem")
"""Check statuses, from best to worst."""
CHECKS = ("exposure_freshness", "outcome_freshness", "volume", "score_drift", "srm", "outcome_completeness")
"""The checks every :class:`ModelHealth` carries, in this order."""

EXPOSURE_WARNING_DAYS = 2
"""Exposure freshness: warning when the last exposure day is more than this many days before as_of."""
EXPOSURE_PROBLEM_DAYS = STALE_AFTER_DAYS
"""Exposure freshness: problem beyond this (7 days: the flags' ``untrustworthy`` staleness rule)."""
OUTCOME_WARNING_GRACE = 2
"""Outcome freshness: warning when older than ``outcome_lag_days`` + this many days."""
OUTCOME_PROBLEM_GRACE = 7
"""Outcome freshness: problem when older than ``outcome_lag_days`` + this many days."""

VOLUME_LOW, VOLUME_HIGH = 0.5, 2.0
"""Volume: warning when recent/baseline leaves [VOLUME_LOW, VOLUME_HIGH] (and |z| ≥ VOLUME_Z)."""
VOLUME_NEAR_ZERO = 0.1
"""Volume: problem when recent/baseline ≤ this (and unlikely under noise): the model stopped serving."""
VOLUME_Z = 3.0
"""Volume: the robust z a change must also reach for a warning, so that small models' noise does not alarm."""
VOLUME_DROP_ALPHA = 0.001
"""Volume: a near-zero week is a problem only when so few exposures are this unlikely under Poisson
noise around the baseline mean (a model that serves 2 units a week may well serve none)."""
MIN_BASELINE_DAYS = 7
"""Volume and completeness: fewer baseline days than this and the check is unknown."""

PSI_WARNING = 0.1
"""Score drift: PSI above this is a warning (moderate shift, rule of thumb)."""
PSI_PROBLEM = 0.25
"""Score drift: PSI above this is a problem (major shift, rule of thumb)."""
PSI_EPSILON = 1e-4
"""Score drift: a bin's share of 0 is replaced by this (then shares renormalised) so PSI is finite."""
DRIFT_MIN_COUNT = 100
"""Score drift: fewer scores than this in either window and the check is unknown."""
DRIFT_ALPHA = 0.001
"""Score drift: PSI alarms only when a χ² homogeneity test rejects at this level."""

COMPLETENESS_WARNING = 0.8
"""Outcome completeness (A/B): warning when recent / baseline KPI per unit is below this."""
COMPLETENESS_PROBLEM = 0.5
"""Outcome completeness (A/B): problem when below this."""
COMPLETENESS_Z = 3.0
"""Outcome completeness (A/B): the drop must also be at least this many standard errors."""
SERIES_COMPLETENESS_WARNING = 0.9
"""Outcome completeness (time series): warning when fewer than this share of days have a value."""
SERIES_COMPLETENESS_PROBLEM = 0.5
"""Outcome completeness (time series): problem below this share."""

_SEVERITY = {s: i for i, s in enumerate(STATUSES)}


@dataclass(frozen=True)
class HealthCheck:
    """One health check of one model.

    Attributes:
        name: one of :data:`CHECKS`.
        status: "ok", "warning", "problem" or "unknown" (could not be computed; ``message`` says why).
        value: the checked number (days, ratio, PSI, p-value, share), or None when unknown.
        threshold: the limit it is compared with (the warning limit where there are two; the
            other is in ``details``), or None.
        message: one plain-language sentence with the numbers.
        details: the other numbers behind the check (e.g. the Jensen–Shannon distance, the
            robust z, the window bounds), JSON-friendly.
    """

    name: str
    status: str
    value: float | None
    threshold: float | None
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "value": self.value, "threshold": self.threshold,
                "message": self.message, "details": dict(self.details)}


@dataclass(frozen=True)
class ModelHealth:
    """A model's health on a date.

    Attributes:
        model: the model's name.
        as_of: the date the checks refer to (data of days before it).
        status: the worst status of the checks ("unknown" only when every check is unknown).
        checks: one :class:`HealthCheck` per name in :data:`CHECKS`, in that order.
    """

    model: str
    as_of: dt.date
    status: str
    checks: tuple[HealthCheck, ...]

    def check(self, name: str) -> HealthCheck:
        """The check called ``name``."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def problems(self) -> list[str]:
        """Messages of the checks whose status is "problem"."""
        return [c.message for c in self.checks if c.status == "problem"]

    @property
    def warnings(self) -> list[str]:
        """Messages of the checks whose status is "warning"."""
        return [c.message for c in self.checks if c.status == "warning"]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "as_of": self.as_of, "status": self.status,
                "checks": [c.to_dict() for c in self.checks]}

    def to_frame(self) -> pd.DataFrame:
        """One row per check: model, as_of, name, status, value, threshold, message."""
        return pd.DataFrame([{"model": self.model, "as_of": self.as_of, **{k: v for k, v in c.to_dict().items()
                                                                            if k != "details"}}
                             for c in self.checks])


# ------------------------------------------------------------------------------------------------
# distances


def _shares(counts: Any, name: str) -> np.ndarray:
    a = np.asarray(counts, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise ParameterError(f"{name} must be a non-empty 1-d array of counts")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ParameterError(f"{name} must hold finite counts >= 0")
    total = a.sum()
    if total <= 0:
        raise ParameterError(f"{name} sums to 0: no observations")
    return a / total


def psi(reference: Any, recent: Any, *, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of ``recent`` against ``reference`` (counts or shares per bin).

    PSI = Σᵢ (rᵢ − qᵢ) · ln(rᵢ / qᵢ), with qᵢ and rᵢ the reference and recent shares of bin i. It
    is the symmetrised Kullback–Leibler divergence KL(r‖q) + KL(q‖r). A bin empty in one window
    would make it infinite, so shares of 0 are raised to ``epsilon`` and the shares renormalised
    to sum to 1 (bins empty in both windows then contribute 0).

    Raises:
        ParameterError: the arrays differ in length, hold negative counts or sum to 0.
    """
    q, r = _shares(reference, "reference"), _shares(recent, "recent")
    if q.shape != r.shape:
        raise ParameterError(f"reference and recent need the same bins ({q.size} != {r.size})")
    if not 0 < epsilon < 1:
        raise ParameterError(f"epsilon must be in (0, 1), got {epsilon}")
    q, r = np.maximum(q, epsilon), np.maximum(r, epsilon)
    q, r = q / q.sum(), r / r.sum()
    return float(np.sum((r - q) * np.log(r / q)))


def js_distance(reference: Any, recent: Any) -> float:
    """Jensen–Shannon distance (base 2, so in [0, 1]) between two histograms (counts or shares).

    JS = sqrt(½ KL(q‖m) + ½ KL(r‖m)) with m = (q + r) / 2: symmetric, finite with empty bins (no
    epsilon needed), 0 for identical shares and 1 for disjoint ones. The same number as
    ``scipy.spatial.distance.jensenshannon(q, r, base=2)``.
    """
    q, r = _shares(reference, "reference"), _shares(recent, "recent")
    if q.shape != r.shape:
        raise ParameterError(f"reference and recent need the same bins ({q.size} != {r.size})")
    m = (q + r) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return float(math.sqrt(max(0.0, 0.5 * kl(q) + 0.5 * kl(r))))


def drift_status(psi_value: float, p_value: float = 0.0) -> str:
    """Status of a PSI: "problem" above PSI_PROBLEM, "warning" above PSI_WARNING, else "ok";
    never worse than "ok" unless the χ² p-value is below DRIFT_ALPHA (the shift is real)."""
    if not math.isfinite(psi_value):
        return "unknown"
    if p_value >= DRIFT_ALPHA:
        return "ok"
    if psi_value > PSI_PROBLEM:
        return "problem"
    if psi_value > PSI_WARNING:
        return "warning"
    return "ok"


def worst_status(statuses: Sequence[str]) -> str:
    """Overall status: problem > warning > ok; "unknown" only when nothing else is known."""
    known = [s for s in statuses if s != "unknown"]
    if not known:
        return "unknown"
    return max(known, key=_SEVERITY.__getitem__)


# ------------------------------------------------------------------------------------------------
# the checks


def model_health(
    spec: ModelSpec,
    *,
    daily_exposures: pd.DataFrame | None,
    score_histogram: pd.DataFrame | None,
    ab: pd.DataFrame | None,
    last_ok: Mapping[str, Any] | None,
    as_of: dt.date,
    bin_edges: Sequence[float] | None = None,
    reference_days: int = 28,
    recent_days: int = 7,
    series: pd.DataFrame | None = None,
) -> ModelHealth:
    """Every health check of one model on ``as_of``, from its stored aggregates.

    Only days before ``as_of`` count (``as_of`` itself is still being written).

    Args:
        spec: the model.
        daily_exposures: ``read_health(model)["daily_exposures"]``: day, arm, n_exposures, n_units.
        score_histogram: ``read_health(model)["score_histogram"]``: day, bin (−1 = NULL score), n.
        ab: ``read_ab(model)``: day, arm, segment, n, sum_y, sum_y2, ... (units per first-exposure
            cohort day; crossovers already out).
        last_ok: ``status(model).last_ok`` (max_exposure_ts, max_outcome_ts, bin_edges, ...), or
            None when the model was never refreshed.
        as_of: the date of the checks.
        bin_edges: the frozen score-histogram edges (default: ``last_ok["bin_edges"]``); only
            reported, since the histogram already holds bin numbers.
        reference_days: length of the baseline/reference windows (volume, drift, completeness).
        recent_days: length of the recent window that is compared with them.
        series: ``read_series(model)`` (day, value, controls) for a time-series model, or None.

    Raises:
        ParameterError: ``reference_days`` or ``recent_days`` below 1.
    """
    if reference_days < 1 or recent_days < 1:
        raise ParameterError(f"reference_days and recent_days must be >= 1 (got {reference_days}, {recent_days})")
    last_ok = dict(last_ok) if last_ok else None
    edges = bin_edges if bin_edges is not None else (last_ok or {}).get("bin_edges")
    daily = _before(daily_exposures, as_of)
    hist = _before(score_histogram, as_of)
    abf = _before(ab, as_of)
    ser = _before(series, as_of)
    a = spec.attribution
    if a.exposures is None:
        checks = (
            _unknown("exposure_freshness", "no exposures: a time-series model has no exposure log"),
            _series_freshness(spec, ser, as_of),
            _unknown("volume", "no exposures: a time-series model has no exposure volume"),
            _unknown("score_drift", "no exposures: a time-series model has no scores"),
            _unknown("srm", "no holdout: a time-series model has no arms to compare"),
            _series_completeness(spec, ser, as_of, reference_days),
        )
    else:
        checks = (
            _exposure_freshness(spec, last_ok, as_of),
            _outcome_freshness(spec, last_ok, as_of),
            _volume(daily, as_of, reference_days, recent_days),
            _drift(spec, hist, edges, as_of, reference_days, recent_days),
            _srm(spec, abf),
            _completeness(spec, abf, as_of, reference_days, recent_days),
        )
    return ModelHealth(spec.name, as_of, worst_status([c.status for c in checks]), checks)


def _unknown(name: str, why: str, **details: Any) -> HealthCheck:
    return HealthCheck(name, "unknown", None, None, why[0].upper() + why[1:] + ".", details)


def _before(frame: pd.DataFrame | None, as_of: dt.date) -> pd.DataFrame:
    if frame is None or len(frame) == 0 or "day" not in frame.columns:
        return pd.DataFrame(columns=list(frame.columns) if frame is not None else ["day"])
    values = frame["day"].tolist()
    distinct = set(values)
    if frame["day"].dtype == object and all(type(v) is dt.date for v in distinct) and max(distinct) < as_of:
        # dates already (the store's reads), all before as_of
        index = frame.index
        if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
            return frame
        return frame.reset_index(drop=True)
    known: dict[Any, dt.date | None] = {}  # a day repeats once per arm or bin: convert each once
    days = [known[v] if v in known else known.setdefault(v, _to_date(v)) for v in values]
    out = frame.assign(day=days)
    return out[out["day"].notna() & (out["day"] < as_of)].reset_index(drop=True)


def _ordinals(frame: pd.DataFrame) -> np.ndarray:
    """The ``day`` column of a frame from :func:`_before` (dates) as ordinals, for window masks
    without comparing objects."""
    return day_ordinals(frame["day"].tolist())


def _to_date(v: Any) -> dt.date | None:
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.date()
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        return dt.date.fromisoformat(v[:10])
    return None


def _local_day(ts: Any, tz: str) -> dt.date | None:
    """The local day (model time zone) of a stored UTC-naive timestamp (or a date as is)."""
    if ts is None or ts is pd.NaT or (isinstance(ts, float) and math.isnan(ts)):
        return None
    if isinstance(ts, str):
        ts = dt.datetime.fromisoformat(ts)
    if isinstance(ts, pd.Timestamp):
        ts = ts.to_pydatetime()
    if isinstance(ts, dt.datetime):
        aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=dt.timezone.utc)
        return aware.astimezone(ZoneInfo(tz)).date()
    if isinstance(ts, dt.date):
        return ts
    return None


def _grade_age(name: str, what: str, days: int, warn: int, problem: int, details: dict[str, Any]) -> HealthCheck:
    status = "problem" if days > problem else "warning" if days > warn else "ok"
    when = "yesterday" if days == 1 else "today" if days <= 0 else f"{days} days before as_of"
    msg = f"The last {what} is from {when}"
    msg += (f" (limit {warn} days for a warning, {problem} for a problem)." if status != "ok"
            else f" (within {warn} days).")
    return HealthCheck(name, status, float(days), float(warn), msg, {**details, "problem_after_days": problem})


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _exposure_freshness(spec: ModelSpec, last_ok: dict[str, Any] | None, as_of: dt.date) -> HealthCheck:
    name = "exposure_freshness"
    if last_ok is None:
        return _unknown(name, "never refreshed: no freshness information")
    day = _local_day(last_ok.get("max_exposure_ts"), spec.timezone)
    if day is None:
        return HealthCheck(name, "problem", None, float(EXPOSURE_WARNING_DAYS),
                           f"No exposure of this model was found in {spec.attribution.exposures.table}.",
                           {"last_exposure_day": None})
    days = max(0, (as_of - day).days)
    return _grade_age(name, "exposure", days, EXPOSURE_WARNING_DAYS, EXPOSURE_PROBLEM_DAYS,
                      {"last_exposure_day": day.isoformat()})


def _outcome_freshness(spec: ModelSpec, last_ok: dict[str, Any] | None, as_of: dt.date) -> HealthCheck:
    name = "outcome_freshness"
    out = spec.attribution.outcomes
    if out is None:
        return _unknown(name, "no outcome table is configured")
    if last_ok is None:
        return _unknown(name, "never refreshed: no freshness information")
    lag = spec.attribution.outcome_lag_days
    day = _local_day(last_ok.get("max_outcome_ts"), spec.timezone)
    if day is None:
        return HealthCheck(name, "problem", None, float(lag + OUTCOME_WARNING_GRACE),
                           f"No outcome event was found in {out.table}" + (" (with its filter)." if out.where else "."),
                           {"last_outcome_day": None, "outcome_lag_days": lag})
    days = max(0, (as_of - day).days)
    return _grade_age(name, f"outcome event (outcomes may lag {_days(lag)})", days, lag + OUTCOME_WARNING_GRACE,
                      lag + OUTCOME_PROBLEM_GRACE, {"last_outcome_day": day.isoformat(), "outcome_lag_days": lag})


def _series_freshness(spec: ModelSpec, series: pd.DataFrame, as_of: dt.date) -> HealthCheck:
    name = "outcome_freshness"
    if spec.attribution.series is None:
        return _unknown(name, "neither exposures nor a KPI series are configured")
    if len(series) == 0 or "value" not in series.columns:
        return _unknown(name, "no KPI series is stored yet (never refreshed?)")
    have = series[pd.to_numeric(series["value"], errors="coerce").notna()]
    lag = spec.attribution.outcome_lag_days
    if len(have) == 0:
        return HealthCheck(name, "problem", None, float(lag + OUTCOME_WARNING_GRACE),
                           "The KPI series holds no value at all.", {"last_series_day": None})
    day = max(have["day"])
    days = max(0, (as_of - day).days)
    return _grade_age(name, f"day of the KPI series (it may lag {_days(lag)})", days, lag + OUTCOME_WARNING_GRACE,
                      lag + OUTCOME_PROBLEM_GRACE, {"last_series_day": day.isoformat(), "outcome_lag_days": lag})


def _series_completeness(spec: ModelSpec, series: pd.DataFrame, as_of: dt.date, reference_days: int) -> HealthCheck:
    name = "outcome_completeness"
    if spec.attribution.series is None or len(series) == 0 or "value" not in series.columns:
        return _unknown(name, "no KPI series is stored")
    lag = spec.attribution.outcome_lag_days
    last = as_of - dt.timedelta(days=lag + 1)
    first = max(last - dt.timedelta(days=reference_days - 1), min(series["day"]))
    if first > last:
        return _unknown(name, "the KPI series does not reach a settled day yet")
    expected = (last - first).days + 1
    vals = pd.to_numeric(series["value"], errors="coerce")
    inside = (series["day"] >= first) & (series["day"] <= last) & vals.notna()
    have = int(series.loc[inside, "day"].nunique())
    share = have / expected
    status = ("problem" if share < SERIES_COMPLETENESS_PROBLEM else
              "warning" if share < SERIES_COMPLETENESS_WARNING else "ok")
    return HealthCheck(name, status, share, SERIES_COMPLETENESS_WARNING,
                       f"{have} of the {expected} settled days from {first} to {last} have a KPI value ({share:.0%}).",
                       {"days_with_value": have, "days_expected": expected, "first_day": first.isoformat(),
                        "last_day": last.isoformat(), "problem_below": SERIES_COMPLETENESS_PROBLEM})


def _windows(as_of: dt.date, reference_days: int, recent_days: int) -> tuple[dt.date, dt.date, dt.date, dt.date]:
    rec_hi = as_of - dt.timedelta(days=1)
    rec_lo = as_of - dt.timedelta(days=recent_days)
    base_hi = rec_lo - dt.timedelta(days=1)
    base_lo = rec_lo - dt.timedelta(days=reference_days)
    return base_lo, base_hi, rec_lo, rec_hi


def _volume(daily: pd.DataFrame, as_of: dt.date, reference_days: int, recent_days: int) -> HealthCheck:
    name = "volume"
    if len(daily) == 0 or "n_exposures" not in daily.columns:
        return _unknown(name, "no daily exposure counts are stored")
    counts = daily["n_exposures"].to_numpy()
    if counts.dtype.kind in "iu":  # whole counts (the store's reads): summed per day exactly, by bincount
        distinct, where = np.unique(_ordinals(daily), return_inverse=True)
        sums = np.bincount(where, weights=counts, minlength=len(distinct))
        per_day = dict(zip(map(dt.date.fromordinal, distinct.tolist()), sums.tolist()))
    else:
        per_day = daily.groupby("day")["n_exposures"].sum().to_dict()
    first_seen = min(per_day)
    base_lo, base_hi, rec_lo, rec_hi = _windows(as_of, reference_days, recent_days)
    base_lo = max(base_lo, first_seen)  # before its first stored day the model was not live (or not read)
    n_base = (base_hi - base_lo).days + 1
    if n_base < MIN_BASELINE_DAYS:
        return _unknown(name, f"not enough history for a baseline ({max(n_base, 0)} days, "
                              f"{MIN_BASELINE_DAYS} needed)")

    def window(lo: dt.date, hi: dt.date) -> np.ndarray:
        days = [lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)]
        return np.array([float(per_day.get(d, 0.0)) for d in days])

    base, recent = window(base_lo, base_hi), window(rec_lo, rec_hi)
    mean_base, mean_recent = float(base.mean()), float(recent.mean())
    if mean_base <= 0:
        return _unknown(name, f"the baseline ({base_lo} to {base_hi}) has no exposures to compare with")
    ratio = mean_recent / mean_base
    med = float(np.median(base))
    # robust scale of one day; floored at Poisson noise so a flat baseline does not divide by 0
    scale = max(1.4826 * float(np.median(np.abs(base - med))), math.sqrt(max(med, 1.0)))
    z = (mean_recent - med) / (scale / math.sqrt(recent.size))
    # near zero: judged against Poisson noise around the baseline, since a baseline that already
    # holds the collapse has a wide MAD and would hide it from the robust z
    # the Poisson cdf as scipy.stats.poisson.cdf computes it for a whole k ≥ 0 and a mean > 0 (pdtr),
    # without its per-call argument handling
    p_drop = float(special.pdtr(round(float(recent.sum())), mean_base * recent.size))
    if ratio <= VOLUME_NEAR_ZERO and p_drop < VOLUME_DROP_ALPHA:
        status = "problem"
    elif (ratio < VOLUME_LOW or ratio > VOLUME_HIGH) and abs(z) >= VOLUME_Z:
        status = "warning"
    else:
        status = "ok"
    msg = (f"{mean_recent:,.1f} exposures a day over the last {recent.size} days against {mean_base:,.1f} "
           f"in the {base.size} days before (ratio {ratio:.2f}, robust z {z:+.1f}).")
    return HealthCheck(name, status, ratio, VOLUME_LOW, msg, {
        "recent_mean": mean_recent, "baseline_mean": mean_base, "baseline_median": med, "robust_z": z, "poisson_p_drop": p_drop,
        "recent_window": [rec_lo.isoformat(), rec_hi.isoformat()],
        "baseline_window": [base_lo.isoformat(), base_hi.isoformat()],
        "warning_outside": [VOLUME_LOW, VOLUME_HIGH], "problem_at_or_below": VOLUME_NEAR_ZERO, "z_needed": VOLUME_Z,
        "drop_alpha": VOLUME_DROP_ALPHA})


def _drift(spec: ModelSpec, hist: pd.DataFrame, edges: Sequence[float] | None, as_of: dt.date,
           reference_days: int, recent_days: int) -> HealthCheck:
    name = "score_drift"
    if spec.attribution.exposures.score is None:
        return _unknown(name, "the manifest names no score column")
    if len(hist) == 0 or not {"bin", "n"} <= set(hist.columns):
        return _unknown(name, "no score histogram is stored (no reference window with scores yet?)")
    # reference: the first reference_days stored days; they follow the window whose quantiles froze
    # the bins, and they never move, since stored health rows of final days are kept.
    days = _ordinals(hist)
    ref_lo = dt.date.fromordinal(int(days.min()))
    ref_hi = ref_lo + dt.timedelta(days=reference_days - 1)
    rec_lo, rec_hi = as_of - dt.timedelta(days=recent_days), as_of - dt.timedelta(days=1)
    if rec_lo <= ref_hi:
        return _unknown(name, f"not enough history: the recent window ({rec_lo} to {rec_hi}) overlaps the "
                              f"reference window ({ref_lo} to {ref_hi})")
    if hist["bin"].dtype.kind not in "iu":  # the store's reads hold whole bins already (NULL stored as −1)
        hist = hist.assign(bin=pd.to_numeric(hist["bin"], errors="coerce").fillna(-1).astype(int))  # NULL → −1
    bins = sorted(int(b) for b in hist["bin"].unique())
    in_ref = (days >= ref_lo.toordinal()) & (days <= ref_hi.toordinal())
    in_rec = (days >= rec_lo.toordinal()) & (days <= rec_hi.toordinal())
    n = hist["n"].to_numpy()
    if n.dtype.kind in "iu":  # whole counts: summed per bin exactly, without a group-by per window
        where = np.searchsorted(np.array(bins), hist["bin"].to_numpy())
        q, r = (np.bincount(where[m], weights=n[m], minlength=len(bins)).astype(float) for m in (in_ref, in_rec))
    else:
        ref = hist[in_ref].groupby("bin")["n"].sum()
        rec = hist[in_rec].groupby("bin")["n"].sum()
        q = np.array([float(ref.get(b, 0)) for b in bins])
        r = np.array([float(rec.get(b, 0)) for b in bins])
    details = {"reference_window": [ref_lo.isoformat(), ref_hi.isoformat()],
               "recent_window": [rec_lo.isoformat(), rec_hi.isoformat()],
               "n_reference": int(q.sum()), "n_recent": int(r.sum()), "bins": bins,
               "reference_counts": [int(v) for v in q], "recent_counts": [int(v) for v in r],
               "bin_edges": [float(e) for e in edges] if edges is not None else None,
               "problem_above": PSI_PROBLEM, "epsilon": PSI_EPSILON}
    if q.sum() < DRIFT_MIN_COUNT or r.sum() < DRIFT_MIN_COUNT:
        return HealthCheck(name, "unknown", None, PSI_WARNING,
                           f"Too few scores to judge drift ({int(r.sum())} recent, {int(q.sum())} in the reference "
                           f"window; {DRIFT_MIN_COUNT} needed in each).", details)
    value, js = psi(q, r), js_distance(q, r)
    keep = (q + r) > 0
    table = np.vstack([q[keep], r[keep]])
    p = float(stats.chi2_contingency(table, correction=False)[1]) if keep.sum() > 1 else 1.0
    status = drift_status(value, p)
    null_share = float(r[bins.index(-1)] / r.sum()) if -1 in bins else 0.0
    msg = (f"PSI {value:.3f} and Jensen–Shannon distance {js:.3f} between the scores of {rec_lo} to {rec_hi} and "
           f"the reference window {ref_lo} to {ref_hi} (χ² p = {p_value(p)}).")
    if value > PSI_WARNING and status == "ok":
        msg += " Above the rule of thumb, but within sampling noise."
    return HealthCheck(name, status, value, PSI_WARNING, msg,
                       {**details, "js_distance": js, "chi2_p_value": p, "recent_null_share": null_share})


def _srm(spec: ModelSpec, ab: pd.DataFrame) -> HealthCheck:
    name = "srm"
    ex = spec.attribution.exposures
    if len(ab) == 0 or "n" not in ab.columns:
        return _unknown(name, "no A/B cohorts are stored")
    from valuetrack.attribution.methods.ab import two_arm_share

    n = ab["n"].to_numpy()
    if n.dtype.kind in "iu":  # whole counts: each arm's sum is exact in any order
        arm = (ab["arm"] if ab["arm"].dtype == "str" else ab["arm"].astype(str)).to_numpy()
        nt, nc = float(n[arm == ex.treatment].sum()), float(n[arm == ex.control].sum())
    else:
        per_arm = ab.groupby(ab["arm"].astype(str))["n"].sum()
        nt, nc = float(per_arm.get(ex.treatment, 0)), float(per_arm.get(ex.control, 0))
    share = two_arm_share(spec)
    if spec.attribution.allocation:  # a ramp: the share the schedule implies for these cohorts
        from valuetrack.attribution.ramp import period_index

        two = ab[ab["arm"].astype(str).isin([ex.treatment, ex.control])]
        steps = spec.attribution.allocation
        k = np.maximum(period_index(pd.to_datetime(two["day"]).dt.date.tolist(), list(steps)), 0)
        planned = np.array([a.treatment_share for a in steps])[k]
        n = two["n"].to_numpy(dtype=float)
        share = float((n * planned).sum() / n.sum()) if n.sum() else share
    if nt + nc == 0:
        return _unknown(name, "no units in either arm")
    p = float(srm_test(nc, nt, share))
    observed = nt / (nt + nc)
    status = "problem" if p < SRM_ALPHA else "ok"
    msg = (f"{observed:.1%} of {int(nt + nc):,} units in the treatment arm against a planned {share:.1%} "
           f"(SRM χ² p = {p_value(p)}; alarm below {SRM_ALPHA}).")
    return HealthCheck(name, status, p, SRM_ALPHA, msg,
                       {"n_treatment": int(nt), "n_control": int(nc), "observed_share": observed, "planned_share": share})


def _completeness(spec: ModelSpec, ab: pd.DataFrame, as_of: dt.date, reference_days: int,
                  recent_days: int) -> HealthCheck:
    name = "outcome_completeness"
    if spec.attribution.outcomes is None:
        return _unknown(name, "no outcome table is configured")
    if len(ab) == 0 or not {"n", "sum_y", "sum_y2"} <= set(ab.columns):
        return _unknown(name, "no A/B cohorts are stored")
    a = spec.attribution
    mature_through = as_of - dt.timedelta(days=a.window_days + a.outcome_lag_days)
    rec_hi = mature_through
    rec_lo = rec_hi - dt.timedelta(days=recent_days - 1)
    base_hi = rec_lo - dt.timedelta(days=1)
    days = _ordinals(ab)
    base_lo = max(base_hi - dt.timedelta(days=reference_days - 1), dt.date.fromordinal(int(days.min())))
    if (base_hi - base_lo).days + 1 < MIN_BASELINE_DAYS:
        return _unknown(name, "not enough mature cohorts for a baseline")

    # the columns once; each window's sums of the selected values (as the frame's own sums add them)
    units = ab["n"].to_numpy()
    if units.dtype.kind not in "iu":  # missing counts add nothing, as in a frame's sum
        units = np.nan_to_num(pd.to_numeric(ab["n"], errors="coerce").to_numpy(dtype=float), nan=0.0,
                              posinf=np.inf, neginf=-np.inf)
    sums = [np.nan_to_num(pd.to_numeric(ab[k], errors="coerce").to_numpy(dtype=float), nan=0.0, posinf=np.inf,
                          neginf=-np.inf) for k in ("sum_y", "sum_y2")]

    def pooled(lo: dt.date, hi: dt.date) -> tuple[float, float, float]:
        rows = (days >= lo.toordinal()) & (days <= hi.toordinal())
        n = float(units[rows].sum())
        sy, sy2 = (float(v[rows].sum()) for v in sums)
        if n < 2:
            return n, math.nan, math.nan
        mean = sy / n
        return n, mean, max(0.0, (sy2 - n * mean * mean) / (n - 1))

    n_b, m_b, v_b = pooled(base_lo, base_hi)
    n_r, m_r, v_r = pooled(rec_lo, rec_hi)
    details = {"recent_cohorts": [rec_lo.isoformat(), rec_hi.isoformat()],
               "baseline_cohorts": [base_lo.isoformat(), base_hi.isoformat()], "n_recent": int(n_r),
               "n_baseline": int(n_b), "problem_below": COMPLETENESS_PROBLEM, "z_needed": COMPLETENESS_Z}
    if n_r < 2:
        return _unknown(name, f"fewer than 2 units in the latest mature cohorts ({rec_lo} to {rec_hi})", **details)
    if not n_b >= 2 or not m_b > 0:
        return _unknown(name, "the baseline cohorts have no positive KPI per unit to compare with", **details)
    ratio = m_r / m_b
    se = math.sqrt(v_r / n_r + v_b / n_b)
    z = (m_r - m_b) / se if se > 0 else (0.0 if m_r == m_b else math.copysign(math.inf, m_r - m_b))
    if ratio < COMPLETENESS_PROBLEM and z <= -COMPLETENESS_Z:
        status = "problem"
    elif ratio < COMPLETENESS_WARNING and z <= -COMPLETENESS_Z:
        status = "warning"
    else:
        status = "ok"
    msg = (f"KPI per unit of the latest mature cohorts ({rec_lo} to {rec_hi}) is {ratio:.0%} of the "
           f"{(base_hi - base_lo).days + 1} cohorts before (z {z:+.1f}).")
    return HealthCheck(name, status, ratio, COMPLETENESS_WARNING, msg,
                       {**details, "recent_mean": m_r, "baseline_mean": m_b, "z": z})
