"""Kept structural fits (valuetrack.attribution.timeseries.FitCache, D52): a fit of a pre-period seen
before gives the same result, bit for bit, with fewer Kalman filter passes; a change to anything the
fit reads, or an entry that does not match, means a fit from scratch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from valuetrack.attribution.timeseries import FitCache, TSConfig, fit_structural

FAST = TSConfig(n_paths=400)
GRID = FAST.level_grid  # filter passes of one fit from scratch


def series(n_pre: int = 200, n_post: int = 121, seed: int = 0) -> tuple[pd.DataFrame, pd.Timestamp]:
    rng = np.random.default_rng(seed)
    n = n_pre + n_post
    f = np.cumsum(rng.normal(0, 0.3, n))
    x1 = 50 + f + rng.normal(0, 1, n)
    x2 = 20 + 0.7 * f + rng.normal(0, 1, n)
    y = 100 + x1 + 0.5 * x2 + np.array([0, 1, 2, 1, 0, -2, -2])[np.arange(n) % 7] + rng.normal(0, 1, n)
    y[n_pre:] += 2.0
    idx = pd.date_range("2024-01-01", periods=n, freq="D")
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2}, index=idx), idx[n_pre]


def fit(df: pd.DataFrame, start: pd.Timestamp, cache: FitCache | None, config: TSConfig = FAST,
        controls: tuple[str, ...] = ("x1", "x2")):
    return fit_structural(df, intervention=start, controls=list(controls), config=config, cache=cache)


def assert_same(a, b) -> None:
    """Every figure, diagnostic and simulated path equal to the last bit."""
    assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)
    for name in ("paths", "counterfactual", "actual"):
        assert np.array_equal(getattr(a, name), getattr(b, name))


def kept(cache: FitCache) -> FitCache:
    """The next valuation's cache: what the ledger write leaves in the table after ``cache`` was used."""
    return FitCache({k: v if v is not None else cache.stored[k] for k, v in cache.used.items()})


def test_a_kept_fit_gives_the_same_result_and_the_next_day_filters_only_what_changed() -> None:
    df, start = series()
    yesterday, today = df.iloc[:-1], df  # one new post-period day
    first = FitCache()
    assert_same(fit(yesterday, start, first), fit(yesterday, start, None))
    assert first.passes == 2 * GRID  # the pre-period and the held-out refit, from scratch
    assert len(first.used) == 2 and all(first.used.values())

    again = kept(first)
    assert_same(fit(yesterday, start, again), fit(yesterday, start, None))
    assert again.passes == 0 and set(again.used) == set(first.used)
    assert all(v is None for v in again.used.values())  # nothing to write back

    # the next day: the post-period grew by a day, so the placebo windows start elsewhere and the
    # kept states are at other days; the likelihoods are known, so only the ratios with weight are
    # filtered again. The held-out stretch (a quarter of the pre-period) did not move: no pass.
    nxt = kept(first)
    assert_same(fit(today, start, nxt), fit(today, start, None))
    assert 0 < nxt.passes < GRID
    assert set(nxt.used) == set(first.used)
    assert sum(v is not None for v in nxt.used.values()) == 1  # the pre-period's entry, with its new states


def test_past_the_horizon_cap_the_next_day_runs_no_filter_pass() -> None:
    """The usual daily case: a model live longer than its horizon cap (the benchmark's time-series models)."""
    df, start = series()
    capped = TSConfig(n_paths=400, horizon_cap_days=90)
    first = FitCache()
    fit(df.iloc[:-1], start, first, capped)
    nxt = kept(first)
    assert_same(fit(df, start, nxt, capped), fit(df, start, None, capped))
    assert nxt.passes == 0


def test_relaunch_windows_each_keep_their_fits() -> None:
    df, _ = series(n_pre=150, n_post=200)
    windows = [(df.index[150], df.index[219]), (df.index[260], None)]
    first = FitCache()
    ref = fit_structural(df, interventions=windows, controls=["x1", "x2"], config=FAST)
    assert_same(fit_structural(df, interventions=windows, controls=["x1", "x2"], config=FAST, cache=first), ref)
    again = kept(first)
    got = fit_structural(df, interventions=windows, controls=["x1", "x2"], config=FAST, cache=again)
    assert_same(got, ref)
    assert len(ref.windows) == 2 and [w.to_dict() for w in got.windows] == [w.to_dict() for w in ref.windows]
    assert first.passes == 4 * GRID and again.passes == 0


def _changed_data(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.iloc[10, 0] += 0.5  # one pre-period day, corrected
    return df


@pytest.mark.parametrize("change", ["pre-period value", "control value", "controls", "prior", "grid", "version"])
def test_a_change_to_anything_the_fit_reads_is_a_fit_from_scratch(change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    df, start = series()
    first = FitCache()
    fit(df, start, first)
    config, controls = FAST, ("x1", "x2")
    if change == "pre-period value":
        df = _changed_data(df)
    elif change == "control value":
        df = df.copy()
        df.iloc[5, 2] += 0.1
    elif change == "controls":
        controls = ("x1",)
    elif change == "prior":
        config = TSConfig(n_paths=400, level_prior_scale=0.2)
    elif change == "grid":
        config = TSConfig(n_paths=400, level_grid=21)
    else:
        import valuetrack

        monkeypatch.setattr(valuetrack, "__version__", valuetrack.__version__ + ".post1")
    nxt = kept(first)
    assert_same(fit(df, start, nxt, config, controls), fit(df, start, None, config, controls))
    assert nxt.passes == 2 * config.level_grid
    assert not set(nxt.used) & set(first.used)  # the stale entries are not kept: the write drops them


@pytest.mark.parametrize("damage", ["truncated", "another key's entry", "not an entry"])
def test_a_damaged_or_foreign_entry_is_ignored(damage: str) -> None:
    df, start = series()
    first = FitCache()
    fit(df, start, first)
    (k1, p1), (k2, p2) = first.used.items()
    stored = {"truncated": {k1: p1[: len(p1) // 2], k2: p2[:40]},
              "another key's entry": {k1: p2, k2: p1},
              "not an entry": {k1: b"\x00" * 64, k2: b"PK\x03\x04"}}[damage]
    nxt = FitCache(stored)
    assert_same(fit(df, start, nxt), fit(df, start, None))
    assert nxt.passes == 2 * GRID
    assert nxt.used == {k1: p1, k2: p2}  # rewritten whole


def test_a_young_model_keeps_its_likelihoods_but_not_its_many_placebo_states() -> None:
    """Three days after the launch a placebo window starts every third day of the pre-period: those
    states are too many to keep (and move the next day); the likelihoods are kept."""
    df, start = series(n_pre=400, n_post=3)
    first = FitCache()
    fit(df, start, first)
    assert max(len(p) for p in first.used.values()) < 64 * 1024
    again = kept(first)
    assert_same(fit(df, start, again), fit(df, start, None))
    assert 0 < again.passes < GRID  # only the ratios with weight (no held-out refit: too short)


# ---- kept results (D65): a model past its horizon cap attributes the same days every day ---------

CAPPED = TSConfig(n_paths=400, horizon_cap_days=90)


def asked(result) -> list:
    """What a valuation asks of a result: sums over periods (months, to date, a month without an
    attributed day) and the daily frame."""
    d = result.dates
    periods = [(d[0], d[-1]), (d[0], d[30]), (d[31], d[60]), (d[61] - pd.Timedelta(days=400), d[-1] + pd.Timedelta(days=9)),
               (d[-1] + pd.Timedelta(days=5), d[-1] + pd.Timedelta(days=30))]
    return [result.gap_between(a, b) for a, b in periods] + [result.to_frame()]


def assert_asked_same(got: list, ref: list) -> None:
    assert got[:-1] == ref[:-1]  # every sum and interval to the last bit
    pd.testing.assert_frame_equal(got[-1], ref[-1], check_exact=True)


def kept_after(cache: FitCache) -> FitCache:
    """The next valuation's cache once this one's valuation asked its sums and kept its results."""
    cache.keep()
    return kept(cache)


def test_past_the_horizon_cap_the_next_day_restores_the_whole_result() -> None:
    df, start = series()
    first = FitCache()
    asked(fit(df.iloc[:-1], start, first, CAPPED))
    assert len(first.used) == 2  # the fits; the result waits until its sums are asked
    nxt = kept_after(first)
    assert len(first.used) == 3 and all(first.used.values())
    got, ref = fit(df, start, nxt, CAPPED), fit(df, start, None, CAPPED)  # the next day
    assert nxt.restored == 1 and nxt.passes == 0
    assert json.dumps(got.to_dict(), sort_keys=True) == json.dumps(ref.to_dict(), sort_keys=True)
    assert_asked_same(asked(got), asked(ref))
    assert not isinstance(got.paths, np.ndarray)  # answered from what was kept: no path simulated
    nxt.keep()
    assert set(nxt.used) == set(first.used) and all(v is None for v in nxt.used.values())  # nothing to write


def test_a_sum_the_kept_result_lacks_is_answered_from_the_fit_done_again() -> None:
    df, start = series()
    first = FitCache()
    asked(fit(df, start, first, CAPPED))
    nxt = kept_after(first)
    got, ref = fit(df, start, nxt, CAPPED), fit(df, start, None, CAPPED)
    d = ref.dates
    assert got.gap_between(d[3], d[17]) == ref.gap_between(d[3], d[17])  # not asked before
    assert np.array_equal(got.paths, ref.paths)
    assert_asked_same(asked(got), asked(ref))
    nxt.keep()
    result_key = next(k for k in nxt.used if k not in nxt.asked)
    assert nxt.used[result_key] is not None  # kept again, with the new sum


@pytest.mark.parametrize("change", ["before the cap", "post-period value", "pre-period value", "control value",
                                    "controls", "seed", "n_paths", "alpha", "horizon cap", "version"])
def test_a_change_to_anything_the_result_reads_is_a_new_result(change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    df, start = series()
    config, controls = CAPPED, ("x1", "x2")
    first = FitCache()
    asked(fit(df.iloc[:-1], start, first, CAPPED))
    if change == "before the cap":  # the attributed period grows by the new day
        config = FAST
        first = FitCache()
        asked(fit(df.iloc[:-1], start, first, config))
    elif change == "post-period value":
        df = df.copy()
        df.iloc[230, 0] += 0.5
    elif change == "pre-period value":
        df = _changed_data(df)
    elif change == "control value":
        df = df.copy()
        df.iloc[250, 2] += 0.1
    elif change == "controls":
        controls = ("x1",)
    elif change in ("seed", "n_paths", "alpha", "horizon cap"):
        field, value = {"seed": ("seed", 1), "n_paths": ("n_paths", 500), "alpha": ("alpha", 0.1),
                        "horizon cap": ("horizon_cap_days", 91)}[change]
        config = TSConfig(**{"n_paths": 400, "horizon_cap_days": 90, field: value})
    else:
        import valuetrack

        monkeypatch.setattr(valuetrack, "__version__", valuetrack.__version__ + ".post1")
    nxt = kept_after(first)
    got, ref = fit(df, start, nxt, config, controls), fit(df, start, None, config, controls)
    assert nxt.restored == 0
    assert json.dumps(got.to_dict(), sort_keys=True) == json.dumps(ref.to_dict(), sort_keys=True)
    assert_asked_same(asked(got), asked(ref))


def test_relaunch_windows_keep_their_fits_but_no_result() -> None:
    df, _ = series(n_pre=150, n_post=200)
    windows = [(df.index[150], df.index[219]), (df.index[260], None)]
    first = FitCache()
    asked(fit_structural(df, interventions=windows, controls=["x1", "x2"], config=CAPPED, cache=first))
    nxt = kept_after(first)
    assert len(first.used) == 4  # two fits per window
    got = fit_structural(df, interventions=windows, controls=["x1", "x2"], config=CAPPED, cache=nxt)
    assert nxt.restored == 0 and nxt.passes == 0
    assert_asked_same(asked(got), asked(fit_structural(df, interventions=windows, controls=["x1", "x2"], config=CAPPED)))


def _result_entry(cache: FitCache) -> tuple[str, bytes]:
    return next((k, p) for k, p in cache.used.items() if k not in cache.asked)


@pytest.mark.parametrize("damage", ["truncated", "a fit's entry", "not an entry"])
def test_a_damaged_kept_result_is_ignored(damage: str) -> None:
    df, start = series()
    first = FitCache()
    asked(fit(df, start, first, CAPPED))
    first.keep()
    key, payload = _result_entry(first)
    fit_payload = next(p for k, p in first.used.items() if k != key)
    stored = {**first.used, key: {"truncated": payload[: len(payload) // 2], "a fit's entry": fit_payload,
                                  "not an entry": b"PK\x03\x04" + b"\x00" * 60}[damage]}
    nxt = FitCache(stored)
    got, ref = fit(df, start, nxt, CAPPED), fit(df, start, None, CAPPED)
    assert nxt.restored == 0 and nxt.passes == 0  # the fits still serve
    assert_asked_same(asked(got), asked(ref))


def test_a_kept_result_that_a_fit_again_contradicts_is_an_error_not_a_figure() -> None:
    """The safety net behind the key: should a restored result disagree with its inputs, the first
    sum it lacks (which fits again) says so instead of mixing the two."""
    import io

    df, start = series()
    first = FitCache()
    asked(fit(df, start, first, CAPPED))
    first.keep()
    key, payload = _result_entry(first)
    with np.load(io.BytesIO(payload), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    meta["fields"]["effect_cum"] += 1.0
    arrays["meta"] = np.array(json.dumps(meta))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    nxt = FitCache({**first.used, key: buf.getvalue()})
    got = fit(df, start, nxt, CAPPED)
    assert nxt.restored == 1
    with pytest.raises(RuntimeError, match="kept time-series result differs"):
        got.gap_between(got.dates[3], got.dates[17])


def test_a_result_that_cannot_be_packed_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from valuetrack.attribution import timeseries

    df, start = series()
    first = FitCache()
    asked(fit(df, start, first, CAPPED))

    def refuse(*args: object) -> bytes:
        raise TypeError("ndarray is not kept")

    monkeypatch.setattr(timeseries, "_pack_result", refuse)
    first.keep()  # the valuation goes on
    assert set(first.used) == set(first.asked)  # the fits only
