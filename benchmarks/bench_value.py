"""Refresh + value + flags for a portfolio of 200 models over 2 years, from the embedded DuckDB
(issue 13's portfolio: 80 % A/B models, 20 % time-series models).

Builds its own warehouse (same layout as the demo: ``exposures(customer_id, scored_at, model_id, arm,
score, country)``, ``outcomes(customer_id, event_at, event_type, value)``, and ``daily_kpis(day, …)``
with one KPI column per time-series model and three control series) with 200 models over 730 days
(``--quick``: 20 models over 120 days), writes a manifest, registers it with
``valuetrack models register --file``, then times the commands a nightly job runs, each as its own
process (``python -m valuetrack ...``, as a scheduler would run them):

* ``valuetrack refresh`` (full): every model's history; the A/B models share one exposures table,
  so their aggregates come from one query per query kind, grouped by model; then one valuation;
* ``valuetrack refresh`` (incremental): the next day, one new day of data for all 200 models;
* ``valuetrack value --json`` and ``valuetrack flags --json``: read the ledger.

Each refresh runs three times from the same app database (copied back before each run) and the
median is reported, with every run's seconds, the CPU time of the process and of the valuation
workers it forked (D49), and the 1-minute load average: wall times on a shared 2-core machine
move with other jobs, CPU time much less.

With ``--baseline COMMIT`` (``python -m benchmarks value --baseline 04a8d85``) it also runs that
commit's code from a git worktree on the same warehouse and manifest, and alternates ``--pairs``
incremental refreshes of each code: their medians and ratio, written to ``results/value-baseline.json``,
say what a change gained on this machine whatever its speed that hour (a target's seconds are judged
on the machine the baseline's were).

Peak memory is each child's own peak resident set size (VmHWM from /proc, polled), so it includes
DuckDB's native buffers and the interpreter, not just the Python heap; the forked valuation
workers (which share the parent's pages until they write) are not added. (``ru_maxrss`` of a child
is not used on Linux: it includes the parent's RSS at fork, here the generated data.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

AS_OF = dt.date(2026, 6, 1)
SEED = 6


def _generate(path: Path, n_models: int, days: int, units_per_day: float, seed: int = SEED, n_series: int = 0) -> dict:
    """Write the warehouse; return row counts and the per-model settings for the manifest."""
    import duckdb

    rng = np.random.default_rng(seed)
    start = AS_OF - dt.timedelta(days=days)
    # per model: launch in the first third, treatment share, KPI kind, effect, traffic
    launch = rng.integers(0, max(days // 3, 1), n_models)
    share = rng.choice([0.5, 0.8, 0.9], n_models)
    conversion = rng.random(n_models) < 0.3
    effect = rng.choice([0.0, 0.03, 0.10, -0.05], n_models, p=[0.4, 0.3, 0.2, 0.1])
    traffic = units_per_day * rng.uniform(0.5, 1.5, n_models)
    n_units = np.maximum((traffic * (days - launch)).astype(np.int64), 50)

    model = np.repeat(np.arange(n_models), n_units)
    t0 = launch[model] + rng.random(model.size) * (days - launch[model])
    treated = rng.random(model.size) < share[model]
    ids = model.astype(np.int64) * 10_000_000 + np.concatenate([np.arange(k) for k in n_units])
    country = rng.integers(0, 5, model.size)

    # exposures: first at t0, Poisson(1) more within 14 days
    extra = rng.poisson(1.0, model.size)
    rep = np.repeat(np.arange(model.size), extra)
    e_unit = np.concatenate([np.arange(model.size), rep])
    e_t = np.concatenate([t0, t0[rep] + rng.random(rep.size) * 14])
    keep = e_t < days
    e_unit, e_t = e_unit[keep], e_t[keep]

    # outcomes: purchases at a per-unit rate over [t0 - 30, t0 + 24), lifted inside the 14-day window
    # for treated units; conversion models: one sign-up with probability 0.1 (x (1 + effect))
    lam = rng.gamma(0.3, 0.03 / 0.3, model.size)
    pre, win, post = rng.poisson(lam * 30), rng.poisson(lam * 14 * np.where(treated, 1 + effect[model], 1)), rng.poisson(lam * 10)
    conv_unit = conversion[model]
    pre, win, post = (np.where(conv_unit, 0, c) for c in (pre, win, post))
    o_unit = np.concatenate([np.repeat(np.arange(model.size), c) for c in (pre, win, post)])
    o_t = np.concatenate([np.repeat(t0 - 30, pre), np.repeat(t0, win), np.repeat(t0 + 14, post)])
    o_t = o_t + rng.random(o_t.size) * np.concatenate([np.full(pre.sum(), 30.0), np.full(win.sum(), 14.0), np.full(post.sum(), 10.0)])
    o_type = np.zeros(o_t.size, np.int8)
    signed = conv_unit & (rng.random(model.size) < 0.1 * np.where(treated, 1 + effect[model], 1))
    s_unit = np.flatnonzero(signed)
    o_unit = np.concatenate([o_unit, s_unit])
    o_t = np.concatenate([o_t, t0[s_unit] + rng.exponential(3.0, s_unit.size)])
    o_type = np.concatenate([o_type, np.ones(s_unit.size, np.int8)])
    amount = np.where(o_type == 1, 1.0, np.round(np.exp(np.log(40) + 0.7 * rng.standard_normal(o_t.size)), 2))
    landed = (o_t >= 0) & (o_t + rng.random(o_t.size) * 3 < days)
    o_unit, o_t, o_type, amount = o_unit[landed], o_t[landed], o_type[landed], amount[landed]

    base = np.datetime64(start.isoformat(), "s")

    def ts(t: np.ndarray) -> np.ndarray:
        return (base + np.floor(t * 86400).astype("timedelta64[s]")).astype("datetime64[us]")

    names = [f"model-{i:03d}" for i in range(n_models)]
    ts_names = [f"series-{i:03d}" for i in range(n_series)]
    exposures = pd.DataFrame({
        "customer_id": ids[e_unit], "scored_at": ts(e_t),
        "model_id": pd.Categorical.from_codes(model[e_unit], names),
        "arm": pd.Categorical.from_codes(np.where(treated[e_unit], 0, 1), ["model", "holdout"]),
        "score": np.round(rng.random(e_unit.size), 5),
        "country": pd.Categorical.from_codes(country[e_unit], ["US", "GB", "DE", "FR", "BR"]),
    }).sort_values("scored_at", kind="stable")
    outcomes = pd.DataFrame({
        "customer_id": ids[o_unit], "event_at": ts(o_t),
        "event_type": pd.Categorical.from_codes(o_type, ["purchase", "signup"]), "value": amount,
    }).sort_values("event_at", kind="stable")
    con = duckdb.connect(str(path))
    try:
        con.execute("SET enable_progress_bar = false")
        con.register("e", exposures)
        con.register("o", outcomes)
        con.execute("CREATE TABLE exposures AS SELECT customer_id::BIGINT customer_id, scored_at::TIMESTAMP scored_at, "
                    "model_id::VARCHAR model_id, arm::VARCHAR arm, score::DOUBLE score, country::VARCHAR country FROM e")
        con.execute("CREATE TABLE outcomes AS SELECT customer_id::BIGINT customer_id, event_at::TIMESTAMP event_at, "
                    "event_type::VARCHAR event_type, value::DOUBLE value FROM o")
        if n_series:
            con.register("k", _series_table(rng, ts_names, start, days))
            con.execute("CREATE TABLE daily_kpis AS SELECT * FROM k")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    models = [{"name": names[i], "launch": start + dt.timedelta(days=int(launch[i])), "share": float(share[i]),
               "conversion": bool(conversion[i]),
               # costs around the value each model can create, so that every kind of flag appears
               "monthly_cost": float(np.round(traffic[i] * 30 * rng.uniform(0.05, 0.6) * (4.0 if conversion[i] else 1.0), 0))}
              for i in range(n_models)]
    series = [{"name": n, "launch": start + dt.timedelta(days=int(days * 0.6)), "monthly_cost": 500.0} for n in ts_names]
    return {"exposures": int(len(exposures)), "outcomes": int(len(outcomes)), "models": models, "series": series}


def _series_table(rng: np.random.Generator, names: list[str], start: dt.date, days: int) -> pd.DataFrame:
    """Daily KPI series: three controls (a shared trend, weekly cycle and noise) and per model a
    series that follows them, with an effect from 60 % of the history on (0, +3 % or −2 %)."""
    t = np.arange(days)
    common = 1000 + 0.3 * t + 60 * np.sin(2 * np.pi * t / 7) + np.cumsum(rng.normal(0, 4, days))
    frame = {"day": pd.to_datetime([start + dt.timedelta(days=int(d)) for d in t]).date}
    for j in range(3):
        frame[f"control_{j}"] = np.round(common * rng.uniform(0.5, 1.5) + rng.normal(0, 15, days), 1)
    launch = int(days * 0.6)
    for name in names:
        effect = rng.choice([0.0, 0.03, -0.02])
        y = common * rng.uniform(0.3, 2.0) + rng.normal(0, 20, days)
        y[launch:] *= 1 + effect
        frame[name.replace("-", "_")] = np.round(y, 1)
    return pd.DataFrame(frame)


def _header(m: dict) -> str:
    """A bench model's entry up to its KPI: name, owner, cost and launch."""
    return textwrap.dedent(f"""
        [[models]]
        name = "{m['name']}"
        display_name = "Bench {m['name']}"
        owner = "bench@example.com"
        team = "bench"
        status = "active"
        connection = "bench"
        timezone = "UTC"
        monthly_cost = {m['monthly_cost']}

        [[models.interventions]]
        start = {m['launch'].isoformat()}
        label = "launch"
    """)


def _manifest(models: list[dict], series: list[dict] = ()) -> str:
    parts = []
    for m in series:
        parts.append(_header(m) + textwrap.dedent(f"""
            [models.kpi]
            name = "orders"
            unit = "count"
            value_per_unit = 2.0
            higher_is_better = true
            aggregation = "sum"

            [models.attribution]
            method = "structural"

            [models.attribution.series]
            table = "daily_kpis"
            date = "day"
            value = "{m['name'].replace('-', '_')}"
            controls = ["control_0", "control_1", "control_2"]
        """))
    for m in models:
        conv = m["conversion"]
        parts.append(_header(m) + textwrap.dedent(f"""
            [models.kpi]
            name = "{'signups' if conv else 'purchase_revenue'}"
            unit = "{'count' if conv else 'USD'}"
            value_per_unit = {30.0 if conv else 0.3}
            higher_is_better = true
            aggregation = "{'conversion' if conv else 'sum'}"

            [models.attribution]
            method = "ab"
            window_days = 14
            outcome_lag_days = 3
            covariate_days = {0 if conv else 30}
            treatment_share = {m['share']}

            [models.attribution.exposures]
            table = "exposures"
            unit = "customer_id"
            timestamp = "scored_at"
            model = "model_id"
            arm = "arm"
            treatment = "model"
            control = "holdout"
            score = "score"
            segment = "country"

            [models.attribution.outcomes]
            table = "outcomes"
            unit = "customer_id"
            timestamp = "event_at"
            value = "value"
            where = "event_type = '{'signup' if conv else 'purchase'}'"

            [models.thresholds]
            min_roi = 0.0
            unproven_after_days = 90
        """))
    return "".join(parts)


def _hwm_mb(pid: int) -> float | None:
    """The process's own peak resident set (VmHWM, reset at exec), or None once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _run_measured(args: list[str], env: dict, cwd: Path) -> dict:
    """Run ``python -m valuetrack ARGS`` as a child: wall time, peak RSS, stdout.

    Peak RSS: the child's VmHWM, polled every 50 ms (Linux), else its ``ru_maxrss`` from wait4. The
    latter alone is not used on Linux because a child's ru_maxrss includes the RSS of the parent it
    was forked from (before exec), which here holds the generated data.
    """
    import resource

    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        proc = subprocess.Popen([sys.executable, "-m", "valuetrack", *args], cwd=cwd, env=env, stdout=out_f, stderr=err_f)
        peak = None
        while proc.poll() is None:
            hwm = _hwm_mb(proc.pid)
            if hwm is not None:
                peak = max(peak or 0.0, hwm)
            time.sleep(0.05)
        seconds = time.perf_counter() - t0
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read().decode(), err_f.read().decode()
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"valuetrack {' '.join(args)} failed ({proc.returncode}): {err[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child and the workers it waited for
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if peak is None:  # not Linux: the rusage of all waited-for children (an upper bound)
        peak = after.ru_maxrss / 1024
    return {"seconds": round(seconds, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(peak, 1),
            "load_avg_1m": round(os.getloadavg()[0], 2), "stdout": out}


def _median_of(runs: list[dict]) -> dict:
    """The run of median wall time, with every run's seconds beside it."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return {**ordered[len(ordered) // 2], "runs_s": [r["seconds"] for r in runs]}


def _refresh_runs(args: list[str], env: dict, root: Path, start: Path, repeat: int) -> dict:
    """``refresh ARGS`` ``repeat`` times, each from the same app database (copied from ``start``)."""
    runs = []
    for _ in range(repeat):
        shutil.copyfile(start, root / "valuetrack.db")
        runs.append(_run_measured(args, env, root))
    return _median_of(runs)


def _schema(database: Path) -> str | None:
    """The Alembic revision an app database was migrated to (which code created it)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(database)) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def _baseline(ref: str, root: Path, env: dict, pairs: int, first_as_of: str, as_of: str) -> dict:
    """The refreshes of another commit's code on the same warehouse and manifest, for ratios measured
    in one session (machines differ, and one machine's speed drifts by tens of percent within an
    hour): that code is checked out in a git worktree and run from it (``PYTHONPATH``), on its own
    app database (an older code cannot open a newer schema); it registers and refreshes in full
    once, then ``pairs`` incremental refreshes of each code alternate, each from its own copy of
    its refreshed database. Returns both codes' runs, their medians and the ratios (this code ÷ the
    baseline)."""
    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                                check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"--baseline {ref}: not a commit of {repo} ({exc}); give a commit, tag or branch") from None
    code, base = root / "baseline-code", root / "baseline"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(code), commit],
                   check=True, capture_output=True, text=True)
    try:
        base.mkdir()
        (base / "valuetrack.toml").write_text((root / "valuetrack.toml").read_text()
                                              .replace("duckdb:///warehouse.duckdb", "duckdb:///../warehouse.duckdb"))
        shutil.copyfile(root / "models.toml", base / "models.toml")
        benv = {**env, "VALUETRACK_CONFIG": str(base / "valuetrack.toml"), "PYTHONPATH": str(code)}
        _run_measured(["models", "register", "--file", "models.toml"], benv, base)
        full = _run_measured(["refresh", "--as-of", first_as_of, "--json"], benv, base)
        shutil.copyfile(base / "valuetrack.db", base / "refreshed.db")
        schemas = [_schema(folder / "refreshed.db") for folder in (root, base)]  # each code's own migrations ran
        runs: dict[str, list[dict]] = {"this": [], "baseline": []}
        for _ in range(pairs):
            for who, folder, run_env in (("this", root, env), ("baseline", base, benv)):
                shutil.copyfile(folder / "refreshed.db", folder / "valuetrack.db")
                result = _run_measured(["refresh", "--as-of", as_of, "--json"], run_env, folder)
                result.pop("stdout")
                runs[who].append(result)
    finally:
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(code)], capture_output=True)

    def median(who: str, key: str) -> float:
        return float(np.median([r[key] for r in runs[who]]))

    return {"ref": ref, "commit": commit, "pairs": pairs, "schema": schemas[0], "baseline_schema": schemas[1],
            "baseline_refresh_full_s": full["seconds"],
            "incremental_s": [r["seconds"] for r in runs["this"]],
            "baseline_incremental_s": [r["seconds"] for r in runs["baseline"]],
            "incremental_cpu_s": [r["cpu_s"] for r in runs["this"]],
            "baseline_incremental_cpu_s": [r["cpu_s"] for r in runs["baseline"]],
            "median_s": median("this", "seconds"), "baseline_median_s": median("baseline", "seconds"),
            "ratio": round(median("this", "seconds") / median("baseline", "seconds"), 3),
            "cpu_ratio": round(median("this", "cpu_s") / median("baseline", "cpu_s"), 3)}


def run(quick: bool = False, baseline: str | None = None, pairs: int = 5) -> dict:
    n_models, days, per_day = (20, 120, 40.0) if quick else (200, 730, 25.0)
    n_series = n_models // 5
    first_as_of = (AS_OF - dt.timedelta(days=1)).isoformat()  # the full refresh; the incremental one reads AS_OF
    with tempfile.TemporaryDirectory(prefix="bench_value_") as tmp:
        root = Path(tmp)
        (root / "valuetrack.toml").write_text(textwrap.dedent("""
            [store]
            url = "sqlite:///valuetrack.db"
            currency = "USD"

            [connections.bench]
            url = "duckdb:///warehouse.duckdb"
        """))
        t0 = time.perf_counter()
        built = _generate(root / "warehouse.duckdb", n_models - n_series, days, per_day, n_series=n_series)
        generate_s = time.perf_counter() - t0
        (root / "models.toml").write_text(_manifest(built["models"], built["series"]))
        env = {**os.environ, "VALUETRACK_CONFIG": str(root / "valuetrack.toml"), "VALUETRACK_USER": "bench@example.com"}
        as_of = AS_OF.isoformat()
        register = _run_measured(["models", "register", "--file", "models.toml"], env, root)
        shutil.copyfile(root / "valuetrack.db", root / "registered.db")
        # each refresh median of 3 (of 1 with --quick), each from the same database
        repeat = 1 if quick else 3
        refresh = _refresh_runs(["refresh", "--as-of", first_as_of, "--json"], env, root, root / "registered.db", repeat)
        shutil.copyfile(root / "valuetrack.db", root / "refreshed.db")
        incremental = _refresh_runs(["refresh", "--as-of", as_of, "--json"], env, root, root / "refreshed.db", repeat)
        incremental_refreshed = json.loads(incremental.pop("stdout"))["refreshed"]
        value = _run_measured(["value", "--as-of", as_of, "--json"], env, root)
        flags = _run_measured(["flags", "--as-of", as_of, "--json"], env, root)
        refreshed = json.loads(refresh.pop("stdout"))["refreshed"]
        valued = json.loads(value.pop("stdout"))
        flagged = json.loads(flags.pop("stdout"))
        register.pop("stdout")
        by_type: dict[str, int] = {}
        for f in flagged["flags"]:
            by_type[f["type"]] = by_type.get(f["type"], 0) + 1
        warehouse_mb = round((root / "warehouse.duckdb").stat().st_size / 2**20, 1)
        app_db_mb = round((root / "valuetrack.db").stat().st_size / 2**20, 1)
        compared = _baseline(baseline, root, env, pairs, first_as_of, as_of) if baseline else None
    return {
        "models": n_models, "days": days, "rows_exposures": built["exposures"], "rows_outcomes": built["outcomes"],
        "warehouse_mb": warehouse_mb, "app_db_mb": app_db_mb, "generate_s": round(generate_s, 1),
        "models_ab": n_models - n_series, "models_time_series": n_series,
        "register": register, "refresh": refresh, "refresh_incremental": incremental,
        "incremental_ok": sum(r["status"] == "ok" for r in incremental_refreshed),
        "targets_s": {"refresh": 20.0, "refresh_incremental": 5.0, "value": 1.5, "flags": 1.5},
        "value": value, "flags": flags,
        "total_refresh_value_flags_s": round(refresh["seconds"] + value["seconds"] + flags["seconds"], 2),
        "refresh_ok": sum(r["status"] == "ok" for r in refreshed), "models_valued": len(valued["models"]),
        "flags_by_type": by_type,
        **({"baseline": compared} if compared else {}),
    }
