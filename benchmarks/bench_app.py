"""Reading the ledger with 200 models: the portfolio page and the model page (Streamlit AppTest,
no browser), cold (caches cleared, median of 3) and warm (the same session rerun); ``value --json``
and ``flags --json`` as processes (median of 3); and the valuation that fills the ledger
(``valuetrack revalue``). Targets (issue 13): portfolio cold <= 2 s, warm <= 0.3 s; model cold
<= 1.5 s; value and flags <= 1.5 s; at 1,000 models portfolio cold <= 4 s, value <= 3 s.

The models are the demo's, each registered again under new names with their stored aggregates
copied in the app database (no warehouse refresh needed to set up), then valued once.

    python -m benchmarks app [--quick] [--models N]     # --quick: 40 models
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.timing import valuetrack_env

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-06-15"


def _cli(*args: str) -> None:
    from valuetrack.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        assert main(list(args)) == 0, args


def build(folder: Path, n_models: int) -> list[str]:
    """A demo company with ``n_models`` models (clones of the demo's ten, aggregates copied)."""
    import sqlalchemy as sa

    from valuetrack.context import open_context
    from valuetrack.store import schema

    os.chdir(folder)
    _cli("demo", "--scale", "0.1", "--as-of", AS_OF)
    _cli("refresh", "--as-of", AS_OF)
    ctx = open_context()
    originals = ctx.registry.list()
    clones = []
    copies = max(0, -(-n_models // len(originals)) - 1)
    tables = [schema.ab_aggregates, schema.ab_day_totals, schema.ab_crossovers, schema.series_points, schema.health_daily,
              schema.health_histogram, schema.refreshes]
    with ctx.engine.begin() as c:
        rows = {t.name: [dict(r) for r in c.execute(sa.select(t)).mappings()] for t in tables}
    for k in range(1, copies + 1):
        for reg in originals:
            if len(originals) + len(clones) >= n_models:
                break
            name = f"{reg.name[:56]}-c{k}"
            spec = reg.spec.replace(name=name, display_name=f"{reg.spec.display_name} #{k}", team=f"team-{k % 7}")
            ctx.registry.create(spec, ctx.actor)
            clones.append((reg.name, name))
    with ctx.engine.begin() as c:
        for t in tables:
            new = []
            for src, dst in clones:
                for r in rows[t.name]:
                    if r["model_name"] == src:
                        new.append({**{k: v for k, v in r.items() if k != "id"}, "model_name": dst})
            if new:
                c.execute(t.insert(), new)
    return [m.name for m in ctx.registry.list()]


def _process(*args: str) -> float:
    import subprocess
    import sys

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "valuetrack", *args], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - t0


def _render(at: Any) -> float:
    t0 = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - t0
    assert not at.exception, [e.value for e in at.exception]
    return elapsed


def run(quick: bool = False, models: int | None = None) -> dict:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    n = models or (40 if quick else 200)
    out: dict[str, Any] = {"models": n, "as_of": AS_OF, "target_warm_s": 1.0}
    with valuetrack_env(AS_OF):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            names = build(Path(tmp), n)
            out["setup_s"] = round(time.perf_counter() - t0, 1)
            assert len(names) == n
            t0 = time.perf_counter()
            _cli("revalue", "--as-of", AS_OF)  # the clones' aggregates were copied in: value them once
            out["revalue_s"] = round(time.perf_counter() - t0, 2)
            for command in ("value", "flags"):
                out[f"{command}_json_s"] = round(statistics.median(_process(command, "--json") for _ in range(3)), 3)
            import valuetrack.value.portfolio  # noqa: F401  (imports are not the cache's cost)

            for page, query in (("portfolio", {}), ("model", {"model": "homepage-recs"})):
                colds, at = [], None
                for _ in range(3):
                    st.cache_data.clear()
                    st.cache_resource.clear()
                    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=1800)
                    at.switch_page(f"pages/{page}.py")
                    for k, v in query.items():
                        at.query_params[k] = v
                    colds.append(_render(at))
                warm = [_render(at) for _ in range(3 if quick else 5)]
                out[page] = {"cold_s": round(statistics.median(colds), 3), "warm_median_s": round(statistics.median(warm), 3),
                             "warm_max_s": round(max(warm), 3)}
            # the model page for a model not yet opened, with the portfolio already valued (the usual path)
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=1800)
            at.switch_page("pages/model.py")
            at.query_params["model"] = "fraud-screen"
            out["model_first_open_s"] = round(_render(at), 3)
    return out
