"""``method = "auto"``: which attribution a model gets, and why."""

from __future__ import annotations

from valuetrack.errors import ParameterError


def choose_method(has_holdout: bool, n_controls: int, *, n_pre_days: int | None = None,
                  min_pre_days: int = 56, panel: bool = False) -> tuple[str, str]:
    """Pick the attribution method for ``method = "auto"``.

    Order of preference: a randomized holdout (A/B) identifies the effect by design; without one,
    a structural counterfactual needs control series the model cannot touch; with neither, only an
    interrupted time series (a trend extrapolation, the weakest design) is left.

    Args:
        has_holdout: the model logs a holdout arm.
        n_controls: number of control series available (unaffected by the model).
        n_pre_days: days of history before the launch, when known.
        min_pre_days: below this, time-series methods are flagged as weak in the reason.
        panel: the data is a panel of units (regions, stores) with untreated units: DiD is used
            instead of a single-series method when there is no holdout.

    Returns:
        (method, reason): method is "ab", "did", "structural" or "its".
    """
    if n_controls < 0:
        raise ParameterError(f"n_controls must be >= 0; got {n_controls}")
    short = n_pre_days is not None and n_pre_days < min_pre_days
    note = (f"; only {n_pre_days} days of pre-period (fewer than {min_pre_days}): treat the estimate "
            "with care") if short else ""
    if has_holdout:
        return "ab", "a randomized holdout exists: A/B comparison identifies the effect by design"
    if panel:
        return "did", "no holdout, but untreated units of a panel: difference-in-differences" + note
    if n_controls > 0:
        return "structural", (f"no holdout; {n_controls} control series: structural counterfactual "
                              "fitted on the pre-period with the controls as regressors" + note)
    return "its", ("no holdout and no control series: interrupted time series (a trend extrapolation; "
                   "confounded by anything else that changed at the launch)" + note)
