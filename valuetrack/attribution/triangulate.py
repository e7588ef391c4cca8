"""Two methods that must agree: a holdout and a time series measuring the same launch.

**Shared estimand.** The total effect on the KPI over the same days D, in KPI units:

- the holdout gives it as the per-unit effect × the treated units first exposed in D;
- the time series of the KPI over *all* units (treated and holdout) gives it as the summed gap
  between the actual and the counterfactual over D. The holdout's units are in that series but
  were never treated, so the gap is diluted by them: it estimates effect × treated units, not
  effect × all units. Nothing needs rescaling as long as the series is the whole KPI; a series of
  the treated units only would be compared the same way.

**Agreement.** d = A/B total − time-series total, with standard error √(se_ab² + se_ts²). The two
estimates share the treated units' outcomes, which correlate them positively; leaving the
covariance out overstates the standard error of d, so the check errs toward "agree".

**Decisions under daily looks.** The time series is decided at scheduled looks only (sequential.TS_LOOKS:
30 … 180 days after launch), and so is the comparison: at each look a two-sided z-test at
alpha / len(TS_LOOKS) (Bonferroni over the looks), so a model whose two methods are both valid
raises ``methods_disagree`` with probability at most alpha over its life.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from valuetrack.attribution.sequential import TS_LOOKS


def compare_methods(ab_total: ArrayLike, ab_se: ArrayLike, ts_total: ArrayLike, ts_se: ArrayLike,
                    alpha: float = 0.05) -> dict[str, Any]:
    """Whether the holdout's and the time series' totals over the same days agree.

    Returns ``difference``, ``se``, ``z``, ``p_value`` (two-sided), ``disagree`` (at the per-look
    level ``alpha / len(TS_LOOKS)``) and ``level``.
    """
    a, sa, t, st = (np.asarray(x, dtype=float) for x in (ab_total, ab_se, ts_total, ts_se))
    diff = a - t
    se = np.sqrt(sa**2 + st**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = diff / se
    p = 2 * stats.norm.sf(np.abs(z))
    level = alpha / len(TS_LOOKS)
    return {"difference": diff, "se": se, "z": z, "p_value": p, "disagree": p < level, "level": level}
